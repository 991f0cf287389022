"""Guideline condensation in the store: runs, directions, near-duplicates, staff edits, export.

A run (:class:`~service.models.GuidelineRun`) condenses the needs of a collection round (the
``round`` attribute, 征集批次) and/or a date range (``created_at``) with
:func:`matcher.guideline.condense` over the need vectors of the current index build. Each
direction gets the in-region universities and institutes the recommender ranks best for the
direction's text (label + representative needs). Near-duplicate pairs
(:func:`matcher.dedup.find_duplicates`) are stored for staff; merging one keeps both needs
and links the second to the first (``duplicate_of_id``), and a linked need is folded into
its primary in later runs (its enterprise is listed among the direction's sources).

Staff edit directions (merge, split, rename, drop, restore) with optimistic versions; every
edit is audited; :func:`guideline_workbook` writes the draft 指南建议 table.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.constraints import CAPABILITY_ORG_KINDS, CorporateGroups
from matcher.dedup import DupCandidate, find_duplicates
from matcher.encoding import need_key
from matcher.errors import InvalidParameter, MatcherError
from matcher.guideline import NeedItem, condense, relabel, split_labels
from service.formats import neutralise_cell
from service.models import (
    AuditLog,
    DuplicatePair,
    GuidelineDirection,
    GuidelineRun,
    Need,
    Organisation,
)
from service.snapshot import CLOSED_NEED_STATUSES, load_snapshot

log = logging.getLogger(__name__)

STATUS_LABELS = {"active": "保留", "dropped": "已删除", "merged": "已合并", "split": "已拆分"}


class StaleDirection(MatcherError):
    """The direction changed since the page was loaded (version mismatch)."""


def select_needs(
    session: Session, *, round_name: str | None, date_from: date | None, date_to: date | None
) -> list[Need]:
    """Open needs of ``round_name`` and/or created in [date_from, date_to], oldest first."""
    if round_name is None and date_from is None and date_to is None:
        raise InvalidParameter("give a round or a date range")
    stmt = select(Need).where(Need.status.not_in(list(CLOSED_NEED_STATUSES)))
    if round_name is not None:
        stmt = stmt.where(Need.round == round_name)
    if date_from is not None:
        stmt = stmt.where(Need.created_at >= datetime.combine(date_from, time.min, tzinfo=UTC))
    if date_to is not None:
        stmt = stmt.where(Need.created_at <= datetime.combine(date_to, time.max, tzinfo=UTC))
    return list(session.scalars(stmt.order_by(Need.id)))


def _relation(groups: CorporateGroups, city: dict[str, str | None], kind: dict[str, str]) -> Any:
    def relation(a: str, b: str) -> str | None:
        if a == b:
            return "same_org"
        if groups.same_group(a, b):
            return "same_group"
        ka, kb = kind.get(a), kind.get(b)
        if {ka, kb} & {"other"} and city.get(a) and city.get(a) == city.get(b):
            return "forwarded"  # a public body of the enterprise's city sent it on
        return None

    return relation


def _institutes(rec: Any, d: Any, titles: dict[str, str], k: int) -> list[dict[str, Any]]:
    """In-region universities/institutes for a direction, from the existing ranking: the
    mean score over the direction's representative needs (an institute missing from a
    need's top list counts 0 there); free text (label + titles) when no need is indexed."""
    if rec is None or k <= 0:
        return []
    reps = [need_key(n) for n in d.representatives if need_key(n) in rec.documents]
    totals: dict[str, float] = {}
    try:
        if reps:
            for key in reps:
                for sg in rec.suggest_for_need(key, k=3 * k, require_in_region=True):
                    totals[sg.org_id] = totals.get(sg.org_id, 0.0) + sg.score / len(reps)
        else:
            text = d.label + "。" + "；".join(titles[n] for n in d.representatives)
            for sg in rec.suggest_for_text(
                text,
                k=k,
                field=d.field,
                keywords=d.keywords,
                kinds=CAPABILITY_ORG_KINDS,
                require_in_region=True,
            ):
                totals[sg.org_id] = sg.score  # fmt: skip
    except MatcherError as exc:
        log.warning("no institutes for direction %s: %s", d.label, exc)
        return []
    best = sorted(totals.items(), key=lambda p: (-p[1], p[0]))[:k]
    names = {o: info.name for o, info in rec.orgs.items()}
    return [{"org": o, "name": names.get(o, o), "score": round(v, 4)} for o, v in best]


def run_guideline(
    session: Session,
    vectors: dict[str, NDArray[np.float32]],
    *,
    name: str,
    round_name: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    threshold: float | None = None,
    recommender: Any | None = None,
    n_institutes: int = 5,
    dedup: bool = True,
) -> GuidelineRun:
    """Condense, store and return a new run (``vectors``: need key -> document vector).

    Needs without a vector (not indexed yet) are left out and counted in the summary.
    """
    if session.scalar(select(GuidelineRun.id).where(GuidelineRun.name == name)) is not None:
        raise InvalidParameter(f"凝练批次 {name!r} 已存在（请换一个名称）")
    needs = select_needs(session, round_name=round_name, date_from=date_from, date_to=date_to)
    orgs = {o.id: o for o in session.scalars(select(Organisation))}
    ext = {o.id: o.external_id for o in orgs.values()}
    primaries = [n for n in needs if n.duplicate_of_id is None]
    folded: dict[int, list[Need]] = {}
    for n in needs:
        if n.duplicate_of_id is not None:
            folded.setdefault(n.duplicate_of_id, []).append(n)
    usable = [n for n in primaries if need_key(n.external_id) in vectors]
    missing = len(primaries) - len(usable)
    items = [
        NeedItem(n.external_id, ext[n.org_id], n.field, n.title, n.description or "",
                 tuple(n.keywords or ()))
        for n in usable
    ]  # fmt: skip
    x = (
        np.stack([vectors[need_key(n.external_id)] for n in usable])
        if usable
        else np.zeros((0, 1), np.float32)
    )
    result = condense(items, x, threshold=threshold) if usable else None
    run = GuidelineRun(name=name, round=round_name, date_from=date_from, date_to=date_to,
                       params={"threshold": threshold, "n_institutes": n_institutes})  # fmt: skip
    session.add(run)
    session.flush()
    titles = {n.external_id: n.title for n in needs}
    by_ext = {n.external_id: n for n in needs}
    for pos, d in enumerate(result.directions if result else ()):
        sources = list(d.org_ids)
        for nid in d.need_ids:
            for dup in folded.get(by_ext[nid].id, []):
                if ext[dup.org_id] not in sources:
                    sources.append(ext[dup.org_id])
        session.add(
            GuidelineDirection(
                run_id=run.id, position=pos, field=d.field, label=d.label,
                keywords=list(d.keywords), need_ids=list(d.need_ids),
                representatives=list(d.representatives), org_ids=sources,
                institutes=_institutes(recommender, d, titles, n_institutes),
                cohesion=round(d.cohesion, 4),
            )
        )  # fmt: skip
    n_dups = _store_duplicates(session, run, usable, vectors, orgs) if dedup and usable else 0
    run.summary = {
        "needs": len(needs), "condensed": len(usable), "not_indexed": missing,
        "folded_duplicates": sum(len(v) for v in folded.values()),
        "directions": len(result.directions) if result else 0,
        "fields": len(result.by_field()) if result else 0, "duplicate_pairs": n_dups,
    }  # fmt: skip
    session.flush()
    return run


def _store_duplicates(
    session: Session,
    run: GuidelineRun,
    run_needs: Sequence[Need],
    vectors: dict[str, NDArray[np.float32]],
    orgs: dict[int, Organisation],
) -> int:
    """Near-duplicate pairs with at least one need of the run; the other may be any open,
    indexed, not yet merged need (a need re-sent in a later round is caught)."""
    mine = {n.id for n in run_needs}
    others = session.scalars(
        select(Need).where(
            Need.status.not_in(list(CLOSED_NEED_STATUSES)), Need.duplicate_of_id.is_(None)
        )
    )
    needs = [
        *run_needs,
        *(n for n in others if n.id not in mine and need_key(n.external_id) in vectors),
    ]
    x = np.stack([vectors[need_key(n.external_id)] for n in needs])
    groups = CorporateGroups(load_snapshot(session).orgs)
    city = {o.external_id: o.city for o in orgs.values()}
    kind = {o.external_id: o.kind for o in orgs.values()}
    cands = [
        DupCandidate(n.external_id, orgs[n.org_id].external_id, f"{n.title}。{n.description}")
        for n in needs
    ]
    pairs = find_duplicates(cands, x, relation=_relation(groups, city, kind))
    pk = {n.external_id: n.id for n in needs}
    pairs = [p for p in pairs if pk[p.a] in mine or pk[p.b] in mine]
    for p in pairs:
        session.add(
            DuplicatePair(
                run_id=run.id,
                need_a_id=pk[p.a],
                need_b_id=pk[p.b],
                score=p.score,
                reasons=list(p.reasons),
            )  # fmt: skip
        )
    return len(pairs)


# --------------------------------------------------------------------------- staff edits


def _audit(
    session: Session, user_id: int | None, action: str, d: Any, detail: dict[str, Any]
) -> None:
    session.add(AuditLog(user_id=user_id, action=action, entity="guideline_direction",
                         entity_id=str(d.id), detail=detail))  # fmt: skip


def _check(d: GuidelineDirection, version: int | None) -> None:
    if version is not None and d.version != version:
        raise StaleDirection(f"方向「{d.label}」已被他人修改，请刷新后重试")


def rename_direction(session: Session, d: GuidelineDirection, label: str, *, version: int | None,
                     user_id: int | None) -> None:  # fmt: skip
    """Give a direction a staff label (the keywords stay)."""
    _check(d, version)
    label = label.strip()
    if not label:
        raise InvalidParameter("方向名称不能为空")
    _audit(session, user_id, "guideline.rename", d, {"from": d.label, "to": label[:200]})
    d.label, d.version = label[:200], d.version + 1


def set_status(session: Session, d: GuidelineDirection, status: str, *, version: int | None,
               user_id: int | None) -> None:  # fmt: skip
    """Drop (``dropped``) or restore (``active``) a direction."""
    if status not in ("active", "dropped"):
        raise InvalidParameter(f"unknown status {status!r}")
    _check(d, version)
    _audit(session, user_id, f"guideline.{'restore' if status == 'active' else 'drop'}", d, {})
    d.status, d.version = status, d.version + 1


def _need_items(session: Session, need_ids: Sequence[str]) -> list[NeedItem]:
    rows = session.execute(
        select(Need, Organisation.external_id)
        .join(Organisation, Organisation.id == Need.org_id)
        .where(Need.external_id.in_(list(need_ids)))
    ).all()
    by = {n.external_id: NeedItem(n.external_id, o, n.field, n.title, n.description or "",
                                  tuple(n.keywords or ())) for n, o in rows}  # fmt: skip
    return [by[i] for i in need_ids if i in by]


def merge_directions(session: Session, ds: Sequence[GuidelineDirection], *, user_id: int | None,
                     label: str | None = None) -> GuidelineDirection:  # fmt: skip
    """Merge two or more active directions of one run into a new one (the old are kept,
    marked ``merged``). Keywords are recomputed from the merged needs."""
    ds = [d for d in ds if d.status == "active"]
    if len(ds) < 2 or len({d.run_id for d in ds}) != 1:
        raise InvalidParameter("请选择同一批次中至少两个保留的方向")
    need_ids = [n for d in ds for n in d.need_ids]
    items = _need_items(session, need_ids)
    kws = relabel(items, [need_ids])[0]
    from matcher.guideline import make_label

    fields = list(dict.fromkeys(d.field for d in ds))
    merged = GuidelineDirection(
        run_id=ds[0].run_id, position=min(d.position for d in ds), field="、".join(fields),
        label=label or make_label(kws, fields[0]), keywords=list(kws), need_ids=need_ids,
        representatives=[r for d in ds for r in d.representatives][:3],
        org_ids=list(dict.fromkeys(o for d in ds for o in d.org_ids)),
        institutes=_merge_institutes([d.institutes for d in ds]),
        cohesion=min(d.cohesion for d in ds),
    )  # fmt: skip
    session.add(merged)
    session.flush()
    for d in ds:
        d.status, d.version = "merged", d.version + 1
        _audit(session, user_id, "guideline.merge", d, {"into": merged.id})
    return merged


def _merge_institutes(
    lists: Sequence[Sequence[dict[str, Any]]], k: int = 5
) -> list[dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for lst in lists:
        for inst in lst:
            if inst["org"] not in best or inst["score"] > best[inst["org"]]["score"]:
                best[inst["org"]] = dict(inst)
    return sorted(best.values(), key=lambda i: -float(i["score"]))[:k]


def split_direction(session: Session, d: GuidelineDirection, vectors: dict[str, NDArray[np.float32]],
                    *, version: int | None, user_id: int | None) -> list[GuidelineDirection]:  # fmt: skip
    """Split a direction in two by its need vectors (Ward, two clusters)."""
    _check(d, version)
    ids = [n for n in d.need_ids if need_key(n) in vectors]
    if len(ids) < 2:
        raise InvalidParameter("至少需要两项已建立索引的需求才能拆分")
    labels = split_labels(np.stack([vectors[need_key(n)] for n in ids]))
    groups = [[n for n, lab in zip(ids, labels.tolist(), strict=True) if lab == g] for g in (0, 1)]
    items = _need_items(session, ids)
    org_of = {it.id: it.org_id for it in items}
    kws = relabel(items, groups)
    from matcher.guideline import make_label

    out = []
    for g, kw in zip(groups, kws, strict=True):
        part = GuidelineDirection(
            run_id=d.run_id, position=d.position, field=d.field, label=make_label(kw, d.field),
            keywords=list(kw), need_ids=g, representatives=g[:3],
            org_ids=list(dict.fromkeys(org_of[n] for n in g)), institutes=list(d.institutes),
            cohesion=d.cohesion,
        )  # fmt: skip
        session.add(part)
        out.append(part)
    d.status, d.version = "split", d.version + 1
    session.flush()
    _audit(session, user_id, "guideline.split", d, {"into": [p.id for p in out]})
    return out


def merge_duplicate(session: Session, pair: DuplicatePair, *, user_id: int | None) -> None:
    """Keep both needs; the second points at the first (its source stays on record)."""
    if pair.status != "pending":
        raise InvalidParameter("该疑似重复已处理")
    pair.need_b.duplicate_of_id = pair.need_a_id
    pair.status, pair.decided_by, pair.decided_at = "merged", user_id, datetime.now(UTC)
    session.add(AuditLog(user_id=user_id, action="duplicate.merge", entity="need",
                         entity_id=pair.need_b.external_id,
                         detail={"into": pair.need_a.external_id, "score": pair.score}))  # fmt: skip


def dismiss_duplicate(session: Session, pair: DuplicatePair, *, user_id: int | None) -> None:
    """Not a duplicate: both needs stay independent."""
    if pair.status != "pending":
        raise InvalidParameter("该疑似重复已处理")
    pair.status, pair.decided_by, pair.decided_at = "dismissed", user_id, datetime.now(UTC)


# --------------------------------------------------------------------------- export


def directions_of(session: Session, run_id: int) -> list[GuidelineDirection]:
    """The directions of a run in display order (edits add rows: always query them)."""
    return list(
        session.scalars(
            select(GuidelineDirection)
            .where(GuidelineDirection.run_id == run_id)
            .order_by(GuidelineDirection.position, GuidelineDirection.id)
        )
    )


HEADERS = ("序号", "领域", "指南方向(建议)", "关键词", "需求数", "代表性需求", "提出需求的企业",
           "可承担的区内高校院所", "备注")  # fmt: skip


def guideline_workbook(session: Session, run: GuidelineRun) -> bytes:
    """The draft 指南建议 table of a run's active directions as XLSX bytes."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    names = dict(session.execute(select(Organisation.external_id, Organisation.name)).all())
    titles = dict(session.execute(select(Need.external_id, Need.title)).all())
    wb = Workbook()
    ws = wb.active
    ws.title = "指南建议"
    ws.append([neutralise_cell(f"{run.name} 指南方向建议（草稿）")])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(list(HEADERS))
    for c in ws[2]:
        c.font = Font(bold=True)
    active = [d for d in directions_of(session, run.id) if d.status == "active"]
    for n, d in enumerate(active, start=1):
        row = [
            n, d.field, d.label, "、".join(d.keywords), d.size,
            "\n".join(titles.get(r, r) for r in d.representatives),
            "、".join(names.get(o, o) for o in d.org_ids),
            "、".join(i["name"] for i in d.institutes), d.note,
        ]  # fmt: skip
        ws.append([neutralise_cell(v) for v in row])
    for col, width in zip("ABCDEFGHI", (6, 14, 36, 30, 8, 50, 40, 40, 20), strict=True):
        ws.column_dimensions[col].width = width
    for r in ws.iter_rows(min_row=3):
        for c in r:
            c.alignment = Alignment(wrap_text=True, vertical="top")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
