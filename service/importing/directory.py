"""External ids that references are resolved against: the store plus the rows validated
earlier in the same run (not written yet), so a whole file can be validated before any write.
"""

from __future__ import annotations

import copy
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import Bounty, Capability, Need, Organisation
from service.validation import FieldError, normalise_code


@dataclass
class OrgEntry:
    id: int | None  # None: validated in this run, not written yet
    kind: str
    in_region: bool
    parent: str | None  # external id
    name: str = ""


def name_key(name: str) -> str:
    """Organisation names compared without width, case, spaces or bracket style."""
    text = unicodedata.normalize("NFKC", name).lower()
    return "".join(ch for ch in text if not ch.isspace())


class Directory:
    """External id lookups: loaded from the store, extended by validated rows."""

    def __init__(self) -> None:
        self.orgs: dict[str, OrgEntry] = {}
        self.org_by_code: dict[str, str] = {}
        self.org_by_name: dict[str, list[str]] = {}
        self.needs: dict[str, int | None] = {}
        self.capabilities: dict[str, int | None] = {}
        self.bounties: dict[str, tuple[int | None, str]] = {}

    def load(self, session: Session, *kinds: str) -> None:
        """(Re)load ``kinds`` from the store; rows added by :meth:`add` are dropped."""
        if "organisations" in kinds:
            rows = session.execute(
                select(
                    Organisation.id,
                    Organisation.external_id,
                    Organisation.kind,
                    Organisation.in_region,
                    Organisation.parent_id,
                    Organisation.credit_code,
                    Organisation.name,
                )
            ).all()
            ext_by_id = {r.id: r.external_id for r in rows}
            self.orgs, self.org_by_code, self.org_by_name = {}, {}, {}
            for r in rows:
                entry = OrgEntry(r.id, r.kind, r.in_region, ext_by_id.get(r.parent_id), r.name)
                self._add_org(r.external_id, entry, r.credit_code)
        if "needs" in kinds:
            self.needs = dict(session.execute(select(Need.external_id, Need.id)).all())
        if "capabilities" in kinds:
            self.capabilities = dict(
                session.execute(select(Capability.external_id, Capability.id)).all()
            )
        if "bounties" in kinds:
            self.bounties = {
                ext: (i, k)
                for i, ext, k in session.execute(select(Bounty.id, Bounty.external_id, Bounty.kind))
            }

    def _add_org(self, ext: str, entry: OrgEntry, code: str | None) -> None:
        old = self.orgs.get(ext)
        if old is not None and old.name:
            names = self.org_by_name.get(name_key(old.name), [])
            if ext in names:
                names.remove(ext)
        self.orgs[ext] = entry
        if code:
            self.org_by_code[code] = ext
        if entry.name:
            self.org_by_name.setdefault(name_key(entry.name), []).append(ext)

    def add(self, kind: str, values: dict[str, Any]) -> None:
        """Make a validated row visible to the tables validated after it."""
        ext = values["external_id"]
        if kind == "organisations":
            old = self.orgs.get(ext)
            entry = OrgEntry(
                old.id if old else None,
                values.get("kind", old.kind if old else "other"),
                values.get("in_region", old.in_region if old else False),
                values.get("parent", old.parent if old else None),
                values.get("name", old.name if old else ""),
            )
            self._add_org(ext, entry, values.get("credit_code"))
        elif kind == "needs":
            self.needs.setdefault(ext, None)
        elif kind == "capabilities":
            self.capabilities.setdefault(ext, None)
        elif kind == "bounties":
            old_id = self.bounties.get(ext, (None, ""))[0]
            self.bounties[ext] = (old_id, values.get("kind") or self.bounties.get(ext, ("", ""))[1])

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.__dict__)

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.__dict__.update(snapshot)

    def resolve_org(self, ref: str, what: str) -> str:
        """An organisation's external id from its external id, credit code or name.

        Raises
        ------
        FieldError
            When nothing matches, or a name matches several organisations (the candidates
            are listed).
        """
        if ref in self.orgs:
            return ref
        code = normalise_code(ref).upper()
        if code in self.org_by_code:
            return self.org_by_code[code]
        names = self.org_by_name.get(name_key(ref), [])
        if len(names) == 1:
            return names[0]
        if names:
            shown = "、".join(names[:10]) + ("……" if len(names) > 10 else "")
            raise FieldError(
                f"{what}「{ref}」对应多个同名单位（{len(names)} 个，单位编号：{shown}），"
                "请改填单位编号或统一社会信用代码"
            )
        raise FieldError(f"{what}「{ref}」不存在（请先导入单位，或检查编号）")


__all__ = ["Directory", "OrgEntry", "name_key"]
