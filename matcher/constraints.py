"""Eligibility: who may be suggested to whom, each exclusion with a reason code.

Rules (reason codes in :data:`matcher.types.REASON_LABELS`):

* ``SAME_ORG`` 同一单位 / ``SAME_GROUP`` 同一集团(上下级): a candidate is never suggested to
  its own organisation or corporate group. **Group = the connected tree of ``parent_id``
  links**: ancestors, descendants *and* siblings/cousins under a common ancestor are one
  group (a subsidiary and its parent, or two subsidiaries of one holding, are the same
  corporate group: pairing them would be an internal transaction, not 产学研对接). A
  ``parent_id`` that points outside the known organisations still links the children.
* Tackle bounty (技术攻关类): respondents may be universities, institutes, companies,
  enterprises or consortia, from any region; never in the poster's group (nor the group of
  the need's owner when the bounty is attached to a need).
* Transfer bounty (成果转化类): respondents must be in-region enterprises (``NOT_IN_REGION``,
  ``WRONG_KIND``), or consortia led by one; never in the achievement holder's group (the
  poster and the owner of ``capability_id``).
* A consortium is eligible only if every member passes the group/active/block rules; the
  conflicting member is reported in ``Exclusion.member_id``. Kind and region rules apply to
  the lead only.
* ``INACTIVE`` 已关闭/失效: closed organisations, documents or bounties. ``STAFF_BLOCK``
  人工屏蔽: explicit staff blocks. ``CONFIDENTIAL`` 保密需求: a confidential document is
  visible to its own organisation only.

Two interfaces: per-pair checks returning :class:`~matcher.types.Exclusion` lists (for
explanations and staff screens) and vectorised boolean conflict masks (for the solvers).
Both go through the same group codes, and tests check that they agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.encoding import label_array
from matcher.errors import UnknownEntity
from matcher.types import (
    REASON_CODES,
    REASON_LABELS,
    BountyInfo,
    Document,
    Exclusion,
    OrgInfo,
    OrgKind,
    ReasonCode,
)

__all__ = [
    "REASON_CODES",
    "REASON_LABELS",
    "TACKLE_KINDS",
    "TRANSFER_KINDS",
    "CAPABILITY_ORG_KINDS",
    "CorporateGroups",
    "EligibilityPolicy",
]

TACKLE_KINDS: tuple[OrgKind, ...] = ("university", "institute", "company", "enterprise")
"""Who may respond to a tackle bounty (技术攻关类)."""
TRANSFER_KINDS: tuple[OrgKind, ...] = ("enterprise", "company")
"""Who may respond to (or lead a consortium for) a transfer bounty (成果转化类)."""
CAPABILITY_ORG_KINDS: tuple[OrgKind, ...] = ("university", "institute")
"""Default kinds suggested for a need (高校、科研院所)."""

Relation = Literal["same_org", "ancestor", "descendant", "related"]
RELATION_LABELS: dict[Relation, str] = {
    "same_org": "同一单位",
    "ancestor": "上级单位",
    "descendant": "下级单位",
    "related": "同集团关联单位",
}


class CorporateGroups:
    """Corporate groups as the connected components of the ``parent_id`` forest.

    Parameters
    ----------
    orgs : mapping org_id -> OrgInfo

    Notes
    -----
    The group label of an organisation is the smallest id of its component (deterministic
    and independent of insertion order). Cycles in ``parent_id`` are tolerated.
    """

    def __init__(self, orgs: Mapping[str, OrgInfo]) -> None:
        self._orgs = orgs
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            root = x
            while parent.setdefault(root, root) != root:
                root = parent[root]
            while parent[x] != root:  # path compression
                parent[x], x = root, parent[x]
            return root

        for oid, org in orgs.items():
            find(oid)
            if org.parent_id is not None and org.parent_id != oid:
                a, b = find(oid), find(org.parent_id)
                if a != b:
                    # the smaller id becomes the root, so the label is the component minimum
                    lo, hi = (a, b) if a < b else (b, a)
                    parent[hi] = lo
        self._label = {x: find(x) for x in list(parent)}

    def group(self, org_id: str) -> str:
        """The group label of ``org_id`` (an unknown id is its own singleton group)."""
        return self._label.get(org_id, org_id)

    @property
    def labels(self) -> dict[str, str]:
        """org_id -> group label for every organisation seen (including unknown parents)."""
        return dict(self._label)

    def same_group(self, a: str, b: str) -> bool:
        """True if ``a`` and ``b`` are the same organisation or in the same group."""
        return a == b or self.group(a) == self.group(b)

    def ancestors(self, org_id: str) -> list[str]:
        """Parent, grandparent, ... of ``org_id`` (stops at a cycle or an unknown parent)."""
        out: list[str] = []
        seen = {org_id}
        cur = self._orgs.get(org_id)
        while cur is not None and cur.parent_id is not None and cur.parent_id not in seen:
            out.append(cur.parent_id)
            seen.add(cur.parent_id)
            cur = self._orgs.get(cur.parent_id)
        return out

    def relation(self, a: str, b: str) -> Relation | None:
        """How ``b`` relates to ``a``: same_org, ancestor (b above a), descendant, related
        (same group through a common ancestor), or None (different groups)."""
        if a == b:
            return "same_org"
        if not self.same_group(a, b):
            return None
        if b in self.ancestors(a):
            return "ancestor"
        if a in self.ancestors(b):
            return "descendant"
        return "related"


class _Screen(NamedTuple):
    """What :meth:`EligibilityPolicy.may_exclude` reads of each organisation, as arrays in
    ``pos`` order: active, its corporate group and kind (as codes of ``group_code`` and
    ``kind_code``) and in_region."""

    pos: dict[str, int]
    active: NDArray[np.bool_]
    group: NDArray[np.int64]
    group_code: dict[str, int]
    kind: NDArray[np.int64]
    kind_code: dict[str, int]
    in_region: NDArray[np.bool_]


class EligibilityPolicy:
    """Eligibility rules over a fixed set of organisations.

    Parameters
    ----------
    orgs : mapping org_id -> OrgInfo
    blocks : iterable of (key, org_id)
        Staff blocks (人工屏蔽): ``org_id`` is never suggested for ``key``, where key is a
        query id (need, capability or bounty id) or an organisation id. Org–org blocks are
        symmetric.
    tackle_kinds, transfer_kinds : organisation kinds allowed to respond to each bounty kind.
    """

    def __init__(
        self,
        orgs: Mapping[str, OrgInfo],
        *,
        blocks: Iterable[tuple[str, str]] = (),
        tackle_kinds: Sequence[OrgKind] = TACKLE_KINDS,
        transfer_kinds: Sequence[OrgKind] = TRANSFER_KINDS,
    ) -> None:
        self.orgs = orgs
        self.blocks = frozenset((str(k), str(o)) for k, o in blocks)
        self.tackle_kinds = tuple(tackle_kinds)
        self.transfer_kinds = tuple(transfer_kinds)
        self.groups = CorporateGroups(orgs)

    # ------------------------------------------------------------------ per-pair checks
    def _org(self, org_id: str) -> OrgInfo:
        try:
            return self.orgs[org_id]
        except KeyError:
            raise UnknownEntity(f"unknown organisation {org_id!r}") from None

    def is_blocked(self, keys: Iterable[str], org_id: str) -> bool:
        """True if staff blocked ``org_id`` for any of ``keys`` (query ids or org ids)."""
        return any((k, org_id) in self.blocks or (org_id, k) in self.blocks for k in keys)

    def _member_codes(
        self, sources: Sequence[str], org_id: str, keys: Sequence[str]
    ) -> list[tuple[ReasonCode, str]]:
        org = self._org(org_id)
        out: list[tuple[ReasonCode, str]] = []
        if not org.active:
            out.append(("INACTIVE", f"{org.name} 已关闭"))
        for s in sources:
            if s == org_id:
                out.append(("SAME_ORG", f"与 {s} 为同一单位"))
                break
            rel = self.groups.relation(s, org_id)
            if rel is not None:
                out.append(("SAME_GROUP", f"{org_id} 是 {s} 的{RELATION_LABELS[rel]}"))
                break
        if self.is_blocked([*keys, *sources], org_id):
            out.append(("STAFF_BLOCK", ""))
        return out

    def check(
        self,
        source_org_ids: str | Sequence[str],
        candidate_org_id: str,
        *,
        members: Sequence[str] = (),
        keys: Sequence[str] = (),
        kinds: Sequence[OrgKind] | None = None,
        require_in_region: bool = False,
    ) -> list[Exclusion]:
        """Every reason why ``candidate_org_id`` (optionally leading a consortium of
        ``members``) may not be suggested to ``source_org_ids``.

        Parameters
        ----------
        source_org_ids : the requesting side (need owner, bounty poster, achievement holder).
        candidate_org_id : the candidate, or the lead of a consortium.
        members : further consortium members (the lead need not be repeated).
        keys : query ids the staff blocks may refer to (need/bounty id).
        kinds : allowed kinds of the candidate (lead); None = any.
        require_in_region : the candidate (lead) must be in region.

        Returns
        -------
        list of Exclusion
            Empty iff eligible. Member conflicts carry ``member_id``.
        """
        sources = [source_org_ids] if isinstance(source_org_ids, str) else list(source_org_ids)
        lead = self._org(candidate_org_id)
        out = [
            Exclusion(candidate_org_id, code, detail=detail)
            for code, detail in self._member_codes(sources, candidate_org_id, keys)
        ]
        if kinds is not None and lead.kind not in kinds:
            out.append(
                Exclusion(candidate_org_id, "WRONG_KIND", detail=f"{lead.kind} ∉ {list(kinds)}")
            )
        if require_in_region and not lead.in_region:
            out.append(Exclusion(candidate_org_id, "NOT_IN_REGION", detail=lead.name))
        for m in members:
            if m == candidate_org_id:
                continue
            out.extend(
                Exclusion(candidate_org_id, code, member_id=m, detail=detail)
                for code, detail in self._member_codes(sources, m, keys)
            )
        return out

    def may_exclude(
        self,
        source_org_ids: Sequence[str],
        candidate_org_ids: Sequence[str],
        *,
        keys: Sequence[str] = (),
        kinds: Sequence[OrgKind] | None = None,
        require_in_region: bool = False,
    ) -> NDArray[np.bool_]:
        """For many candidates at once, whether :meth:`check` (without consortium members)
        reports any exclusion: True exactly where ``check(source_org_ids, candidate, keys=keys,
        kinds=kinds, require_in_region=require_in_region)`` is non-empty.

        Returns
        -------
        ndarray of bool, shape (len(candidate_org_ids),)
        """
        sc = self._screen()
        found = list(map(sc.pos.get, candidate_org_ids))
        if None in found:
            raise UnknownEntity(f"unknown organisation {candidate_org_ids[found.index(None)]!r}")
        rows = np.array(found, dtype=np.int64)
        out = ~sc.active[rows]
        group = sc.group[rows]
        for s in dict.fromkeys(source_org_ids):
            if (code := sc.group_code.get(self.groups.group(s))) is not None:
                out |= group == code
        if self.blocks:
            ks = {*keys, *source_org_ids}
            blocked = {b for a, b in self.blocks if a in ks} | {
                a for a, b in self.blocks if b in ks
            }
            out |= np.isin(rows, [sc.pos[b] for b in blocked if b in sc.pos])
        if kinds is not None:
            allowed = np.zeros(len(rows), dtype=bool)
            for kind in set(kinds):
                allowed |= sc.kind[rows] == sc.kind_code.get(kind, -1)
            out |= ~allowed
        if require_in_region:
            out |= ~sc.in_region[rows]
        return out

    def _screen(self) -> _Screen:
        # derived from the organisations once (like the groups), a race only repeats it
        sc: _Screen | None = getattr(self, "screen_", None)
        if sc is None or len(sc.pos) != len(self.orgs):
            ids = list(self.orgs)
            orgs = [self.orgs[o] for o in ids]
            group_code: dict[str, int] = {}
            kind_code: dict[str, int] = {}
            sc = _Screen(
                {o: i for i, o in enumerate(ids)},
                np.array([org.active for org in orgs], dtype=bool),
                np.array(
                    [group_code.setdefault(self.groups.group(o), len(group_code)) for o in ids],
                    dtype=np.int64,
                ),
                group_code,
                np.array(
                    [kind_code.setdefault(org.kind, len(kind_code)) for org in orgs],
                    dtype=np.int64,
                ),
                kind_code,
                np.array([org.in_region for org in orgs], dtype=bool),
            )
            self.screen_ = sc
        return sc

    def bounty_sources(
        self, bounty: BountyInfo, documents: Mapping[str, Document] | None = None
    ) -> list[str]:
        """Organisations whose group may not respond to ``bounty``: the poster, plus the owner
        of the attached need (tackle) or achievement (transfer) when it is known."""
        sources = [bounty.poster_org_id]
        attached = bounty.need_id if bounty.kind == "tackle" else bounty.capability_id
        if documents is not None and attached is not None and attached in documents:
            owner = documents[attached].org_id
            if owner not in sources:
                sources.append(owner)
        return sources

    @staticmethod
    def bounty_keys(bounty: BountyInfo) -> list[str]:
        """Ids a staff block may use for a bounty: its own id and its attached need or
        achievement (a block on a need carries over to the need's bounty)."""
        return [k for k in (bounty.id, bounty.need_id, bounty.capability_id) if k is not None]

    def check_bounty(
        self,
        bounty: BountyInfo,
        respondent_org_id: str,
        *,
        members: Sequence[str] = (),
        documents: Mapping[str, Document] | None = None,
    ) -> list[Exclusion]:
        """Every reason why ``respondent_org_id`` (with consortium ``members``) may not
        respond to ``bounty``; empty iff eligible (see the module docstring for the rules)."""
        if bounty.kind not in ("tackle", "transfer"):
            raise ValueError(f"bounty kind must be 'tackle' or 'transfer'; got {bounty.kind!r}")
        sources = self.bounty_sources(bounty, documents)
        if bounty.kind == "tackle":
            out = self.check(
                sources,
                respondent_org_id,
                members=members,
                keys=self.bounty_keys(bounty),
                kinds=self.tackle_kinds,
            )
        else:
            out = self.check(
                sources,
                respondent_org_id,
                members=members,
                keys=self.bounty_keys(bounty),
                kinds=self.transfer_kinds,
                require_in_region=True,
            )
        if not bounty.active:
            out.insert(
                0, Exclusion(respondent_org_id, "INACTIVE", detail=f"榜单 {bounty.id} 已关闭")
            )
        return out

    def visible(self, doc: Document, viewer_org_id: str | None) -> bool:
        """True iff :meth:`document_reasons` is empty (without building the list)."""
        return doc.active and (not doc.confidential or viewer_org_id == doc.org_id)

    def document_reasons(self, doc: Document, viewer_org_id: str | None) -> list[ReasonCode]:
        """Why ``doc`` may not be shown to ``viewer_org_id`` (None = anonymous/other).

        A confidential document is visible to its own organisation only (not to the rest of
        its group: confidentiality is a per-unit decision).
        """
        out: list[ReasonCode] = []
        if not doc.active:
            out.append("INACTIVE")
        if doc.confidential and viewer_org_id != doc.org_id:
            out.append("CONFIDENTIAL")
        return out

    # ------------------------------------------------------------------ vectorised masks
    def group_codes(self, org_ids: Sequence[str]) -> NDArray[np.int64]:
        """Integer group code per organisation, shape (n,): equal codes = same group."""
        return label_array(list(org_ids), self.groups.labels)

    def conflict_mask(
        self,
        source_org_ids: Sequence[str],
        target_org_ids: Sequence[str],
        *,
        source_keys: Sequence[str] | None = None,
        target_members: Mapping[str, Sequence[str]] | None = None,
    ) -> NDArray[np.bool_]:
        """Boolean conflict matrix for the solvers: True = the pair must not be assigned.

        Parameters
        ----------
        source_org_ids : length n, the owner of each row (e.g. the need's organisation).
        target_org_ids : length m, the candidate of each column (consortium lead).
        source_keys : optional length n, the row's query id for staff blocks.
        target_members : optional lead id -> further consortium members.

        Returns
        -------
        ndarray of bool, shape (n, m)
            True where same organisation/group (of the lead or any member), an inactive
            target or member, or a staff block. Kind/region rules are not included (filter the
            columns, or use :meth:`check_bounty`).
        """
        sources = list(source_org_ids)
        targets = list(target_org_ids)
        if source_keys is not None and len(source_keys) != len(sources):
            raise ValueError(f"source_keys has length {len(source_keys)}, expected {len(sources)}")
        members = target_members or {}
        cols = [[t, *[x for x in members.get(t, ()) if x != t]] for t in targets]
        width = max((len(c) for c in cols), default=1)
        every = sorted({*sources, *(x for c in cols for x in c)})
        code = dict(zip(every, self.group_codes(every).tolist(), strict=True))
        src = np.array([code[s] for s in sources], dtype=np.int64).reshape(len(sources))
        tgt = np.full((len(targets), width), -1, dtype=np.int64)  # -1 pads short consortia
        inactive = np.zeros(len(targets), dtype=bool)
        for j, c in enumerate(cols):
            tgt[j, : len(c)] = [code[x] for x in c]
            inactive[j] = any(not self._org(x).active for x in c)
        mask = (src[:, None, None] == tgt[None, :, :]).any(axis=2)
        mask |= inactive[None, :]
        if self.blocks:
            keys = source_keys if source_keys is not None else [None] * len(sources)
            for i, (s, k) in enumerate(zip(sources, keys, strict=True)):
                row_keys = [s] if k is None else [s, k]
                for j, c in enumerate(cols):
                    if not mask[i, j] and any(self.is_blocked(row_keys, x) for x in c):
                        mask[i, j] = True
        return np.asarray(mask, dtype=bool)
