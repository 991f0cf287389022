"""Row parsing: raw cells of one table → clean values for the model, references resolved.

:class:`Directory` holds the external ids of the store (and of rows validated earlier in the
same run) that references are resolved against; :class:`RowParser` applies the value rules of
:mod:`service.validation` column by column and collects every problem of a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.formats import (
    COLUMNS,
    MAX_ID_CHARS,
    MAX_LIST_ITEMS,
    MAX_NAME_CHARS,
    MAX_SHORT_CHARS,
    MAX_TITLE_CHARS,
)
from service.importing.readers import RawRow, is_blank
from service.models import Bounty, Capability, Need, Organisation
from service.validation import (
    BOUNTY_KIND_ALIASES,
    BOUNTY_STATUS_ALIASES,
    CAPABILITY_KIND_ALIASES,
    CAPABILITY_STATUS_ALIASES,
    NEED_STATUS_ALIASES,
    ORG_KIND_ALIASES,
    ORG_STATUS_ALIASES,
    SCALE_ALIASES,
    FieldError,
    check_length,
    in_home_region,
    normalise_code,
    normalise_text,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_enum,
    parse_int,
    parse_number,
    province_from_city,
    province_from_credit_code,
    split_list,
    validate_credit_code,
)


@dataclass
class OrgEntry:
    id: int | None
    kind: str
    in_region: bool
    parent: str | None  # external id


class Directory:
    """External id lookups against the store, refreshed after each table is written."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.orgs: dict[str, OrgEntry] = {}
        self.org_by_code: dict[str, str] = {}
        self.org_by_name: dict[str, str | None] = {}
        self.needs: dict[str, int] = {}
        self.capabilities: dict[str, int] = {}
        self.bounties: dict[str, tuple[int, str]] = {}
        self.loaded: set[str] = set()

    def load(self, *kinds: str) -> None:
        s = self.session
        if "organisations" in kinds:
            rows = s.execute(
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
            self.orgs = {
                r.external_id: OrgEntry(r.id, r.kind, r.in_region, ext_by_id.get(r.parent_id))
                for r in rows
            }
            self.org_by_code = {r.credit_code: r.external_id for r in rows if r.credit_code}
            self.org_by_name = {}
            for r in rows:
                self.org_by_name[r.name] = None if r.name in self.org_by_name else r.external_id
        if "needs" in kinds:
            self.needs = dict(s.execute(select(Need.external_id, Need.id)).all())
        if "capabilities" in kinds:
            self.capabilities = dict(s.execute(select(Capability.external_id, Capability.id)).all())
        if "bounties" in kinds:
            self.bounties = {
                ext: (i, k)
                for i, ext, k in s.execute(select(Bounty.id, Bounty.external_id, Bounty.kind))
            }
        self.loaded.update(kinds)

    def resolve_org(self, ref: str) -> str | None:
        """An organisation's external id from its external id, credit code or unique name."""
        if ref in self.orgs:
            return ref
        code = normalise_code(ref).upper()
        if code in self.org_by_code:
            return self.org_by_code[code]
        return self.org_by_name.get(ref)


class RowErrors(Exception):
    """Collected ``(column label, reason)`` pairs of one row."""

    def __init__(self, errors: list[tuple[str | None, str]]) -> None:
        super().__init__("; ".join(r for _, r in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int
    max_title_chars: int = MAX_TITLE_CHARS


class RowParser:
    """Turns raw rows of one table into clean value dicts for the model's attributes.

    ``header_of`` maps canonical keys to the original header (for messages); keys absent
    from the table are absent from the result, so they never overwrite stored values.
    """

    def __init__(
        self,
        kind: str,
        header_of: dict[str, str],
        directory: Directory,
        limits: Limits,
        home_region: str,
    ) -> None:
        self.kind = kind
        self.header_of = header_of
        self.directory = directory
        self.limits = limits
        self.home_region = home_region

    def parse(self, raw: RawRow) -> dict[str, Any]:
        """Clean values keyed by model attribute; raises :class:`RowErrors`."""
        if "__error__" in raw:
            raise RowErrors([(None, str(raw["__error__"]))])
        errors: list[tuple[str | None, str]] = []
        values: dict[str, Any] = {}
        if "__extra__" in raw:
            errors.append((None, "该行的列数多于表头（可能有未加引号的逗号）"))
        getter = getattr(self, f"_{self.kind}")
        for key in self.header_of:
            value = raw.get(self.header_of[key])
            try:
                getter(key, value, values)
            except FieldError as exc:
                errors.append((self.header_of[key], str(exc)))
        for col in COLUMNS[self.kind]:
            if col.required and col.key in self.header_of and col.key not in values:
                if not any(c == self.header_of[col.key] for c, _ in errors):
                    errors.append((self.header_of[col.key], f"必填项「{col.label}」为空"))
        if not errors:
            try:
                self._cross_fields(values)
            except FieldError as exc:
                errors.append((None, str(exc)))
        if errors:
            raise RowErrors(errors)
        return values

    # -- shared pieces
    def _text(self, value: Any, limit: int, what: str) -> str:
        return check_length(normalise_text(value), limit, what)

    def _id(self, value: Any, what: str) -> str | None:
        text = normalise_code(value)
        if not text:
            return None
        return check_length(text, MAX_ID_CHARS, what)

    def _org_ref(self, value: Any, what: str) -> str | None:
        ref = normalise_text(value)
        if not ref:
            return None
        ext = self.directory.resolve_org(ref)
        if ext is None:
            if ref in self.directory.org_by_name:
                raise FieldError(
                    f"{what}「{ref}」对应多个同名单位，请改填单位编号或统一社会信用代码"
                )
            raise FieldError(f"{what}「{ref}」不存在（请先导入单位，或检查编号）")
        return ext

    def _common(self, key: str, value: Any, out: dict[str, Any], table: dict[str, str]) -> bool:
        lim = self.limits
        if key == "external_id":
            if (ext := self._id(value, "编号")) is not None:
                out["external_id"] = ext
        elif key == "title":
            text = self._text(value, lim.max_title_chars, "标题")
            if text:
                out["title"] = text
        elif key in ("description", "proposal"):
            out[key] = self._text(value, lim.max_text_chars, "描述")
        elif key == "field":
            out["field"] = self._text(value, MAX_SHORT_CHARS, "领域") or None
        elif key == "keywords":
            items = split_list(value)
            if len(items) > MAX_LIST_ITEMS:
                raise FieldError(f"关键词过多：{len(items)}个，上限{MAX_LIST_ITEMS}个")
            out["keywords"] = [check_length(k, MAX_SHORT_CHARS, "关键词") for k in items]
        elif key == "budget":
            out["budget"] = None if is_blank(value) else parse_number(value, "预算")
        elif key == "deadline":
            out["deadline"] = None if is_blank(value) else parse_date(value, "截止日期")
        elif key == "status":
            if not is_blank(value):
                out["status"] = parse_enum(value, table, "状态")
        else:
            return False
        return True

    # -- per kind
    def _organisations(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, ORG_STATUS_ALIASES):
            return
        if key == "name":
            if text := self._text(value, MAX_NAME_CHARS, "单位名称"):
                out["name"] = text
        elif key == "kind":
            if not is_blank(value):
                out["kind"] = parse_enum(value, ORG_KIND_ALIASES, "单位类型")
        elif key == "credit_code":
            out["credit_code"] = None if is_blank(value) else validate_credit_code(str(value))
        elif key in ("province", "city"):
            out[key] = self._text(value, 32, "省份" if key == "province" else "城市") or None
        elif key == "parent":
            out["parent"] = self._id(value, "上级单位")
        elif key == "fields":
            out["fields"] = [check_length(f, MAX_SHORT_CHARS, "领域") for f in split_list(value)]
        elif key == "scale":
            out["scale"] = None if is_blank(value) else parse_enum(value, SCALE_ALIASES, "企业规模")

    def _needs(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, NEED_STATUS_ALIASES):
            return
        if key == "org":
            if (ext := self._org_ref(value, "需求单位")) is not None:
                out["org"] = ext
        elif key == "confidential":
            out["confidential"] = parse_bool(value)
        elif key == "round":
            out["round"] = self._text(value, 64, "征集批次") or None

    def _capabilities(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, CAPABILITY_STATUS_ALIASES):
            return
        if key == "org":
            if (ext := self._org_ref(value, "成果单位")) is not None:
                out["org"] = ext
        elif key == "kind":
            out["kind"] = (
                "achievement"
                if is_blank(value)
                else parse_enum(value, CAPABILITY_KIND_ALIASES, "成果类型")
            )
        elif key == "trl":
            out["trl"] = (
                None if is_blank(value) else parse_int(value, "技术成熟度", minimum=1, maximum=9)
            )
        elif key == "year":
            out["year"] = (
                None if is_blank(value) else parse_int(value, "年份", minimum=1900, maximum=2100)
            )

    def _bounties(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, BOUNTY_STATUS_ALIASES):
            return
        if key == "kind":
            if not is_blank(value):
                out["kind"] = parse_enum(value, BOUNTY_KIND_ALIASES, "榜单类型")
        elif key == "poster":
            if (ext := self._org_ref(value, "发榜单位")) is not None:
                out["poster"] = ext
        elif key == "need":
            ref = self._id(value, "关联需求")
            if ref is not None and ref not in self.directory.needs:
                raise FieldError(f"关联需求「{ref}」不存在")
            out["need"] = ref
        elif key == "capability":
            ref = self._id(value, "关联成果")
            if ref is not None and ref not in self.directory.capabilities:
                raise FieldError(f"关联成果「{ref}」不存在")
            out["capability"] = ref

    def _bids(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if key in ("external_id", "proposal"):
            self._common(key, value, out, {})
        elif key == "bounty":
            ref = self._id(value, "榜单编号")
            if ref is not None:
                if ref not in self.directory.bounties:
                    raise FieldError(f"榜单「{ref}」不存在")
                out["bounty"] = ref
        elif key == "respondent":
            if (ext := self._org_ref(value, "揭榜单位")) is not None:
                out["respondent"] = ext
        elif key == "members":
            members = []
            for ref in split_list(value):
                ext = self.directory.resolve_org(ref)
                if ext is None:
                    raise FieldError(f"联合体成员「{ref}」不存在")
                if ext not in members:
                    members.append(ext)
            out["members"] = members
        elif key == "price":
            if not is_blank(value):
                out["price"] = parse_number(value, "报价")
        elif key == "submitted_at" and not is_blank(value):
            out["submitted_at"] = parse_datetime(value, "申报时间")
        elif key in ("funding_enterprise", "funding_academic"):
            what = "企业方财政经费" if key == "funding_enterprise" else "高校院所财政经费"
            out[key] = None if is_blank(value) else parse_number(value, what)

    def _cross_fields(self, values: dict[str, Any]) -> None:
        if self.kind == "organisations":
            # A missing province is derived from the credit code, else from a known city.
            if values.get("province") is None:
                derived = None
                if values.get("credit_code"):
                    derived = province_from_credit_code(values["credit_code"])
                derived = derived or province_from_city(values.get("city"))
                if derived or "province" in values:
                    values["province"] = derived
            if "province" in values:
                values["in_region"] = in_home_region(values["province"], self.home_region)
            if values.get("parent") is not None and values["parent"] == values.get("external_id"):
                raise FieldError("上级单位不能是本单位")
        elif self.kind == "bounties":
            poster = self.directory.orgs.get(values.get("poster", ""))
            if values.get("kind") == "tackle" and poster is not None:
                if poster.kind not in ("enterprise", "company") or not poster.in_region:
                    raise FieldError(
                        f"技术攻关类榜单的发榜单位必须是区内企业（{values['poster']} 为"
                        f"{'区内' if poster.in_region else '区外'}{poster.kind}）"
                    )
        elif self.kind == "bids":
            respondent = values.get("respondent")
            if respondent and respondent in values.get("members", []):
                values["members"] = [m for m in values["members"] if m != respondent]


__all__ = ["Directory", "Limits", "OrgEntry", "RowErrors", "RowParser"]
