"""Guideline pages (指南凝练): condense a round, edit its directions, review near-duplicates.

* ``GET /staff/guideline``: the runs, and a form that condenses a collection round;
* ``GET /staff/guideline/{run}``: directions by field (merge by ticking several, split,
  rename, drop/restore; each form quotes the direction's version, a stale one is a 409), the
  near-duplicate pairs with 合并 (both needs kept, the later linked to the earlier) and
  不是重复;
* ``GET /staff/guideline/{run}/export.xlsx``: the draft 指南建议 table.

The work is :mod:`service.guideline`; pages only parse forms and redirect (POST → 303 → GET).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.errors import IndexNotReady, InvalidParameter, MatcherError
from service import auth
from service import guideline as gl
from service.api.deps import SessionDep
from service.models import DuplicatePair, GuidelineDirection, GuidelineRun, Need, Organisation
from service.web.common import (
    FormStr,
    IdPath,
    StaffFormUserDep,
    StaffUserDep,
    error_page,
    page_router,
    render,
)

log = logging.getLogger(__name__)
router = page_router("/staff")

_MESSAGES = {
    "run": "凝练完成。",
    "rename": "方向已重命名。",
    "split": "方向已拆分为两个。",
    "merge": "所选方向已合并。",
    "drop": "方向已删除（可恢复）。",
    "restore": "方向已恢复。",
    "dup_merge": "已合并为同一需求，两条来源均保留。",
    "dup_dismiss": "已标记为不是重复。",
}


def _vectors(request: Request) -> dict[str, Any]:
    from service.recommender import need_vectors_by_key

    return dict(need_vectors_by_key(request.app.state.settings))


def _recommender(request: Request) -> Any | None:
    handle = getattr(request.app.state, "recommender", None)
    if handle is None:
        return None
    try:
        return handle.get()
    except (IndexNotReady, MatcherError):
        return None


@router.get("/guideline", name="staff_guideline_runs", response_class=HTMLResponse)
def staff_guideline_runs(request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    """凝练批次: stored runs and the collection rounds that can be condensed."""
    runs = db.scalars(select(GuidelineRun).order_by(GuidelineRun.created_at.desc())).all()
    rounds = db.execute(
        select(Need.round, func.count()).where(Need.round.is_not(None)).group_by(Need.round)
    ).all()
    return render(
        request, "staff/guideline_runs.html",
        {"runs": runs, "rounds": [(str(r), int(n)) for r, n in rounds]}, user=user,
    )  # fmt: skip


@router.post("/guideline", name="staff_guideline_create")
def staff_guideline_create(
    request: Request, db: SessionDep, user: StaffFormUserDep, round: FormStr = "",
    name: FormStr = "",
) -> Response:  # fmt: skip
    """Condense one collection round now and open the result."""
    round_name, run_name = round.strip()[:64], (name.strip() or round.strip())[:100]
    if not round_name:
        return error_page(request, 422, "请求无效", "请选择征集批次。", user=user)
    try:
        vectors = _vectors(request)
    except Exception:  # no index build yet
        return error_page(request, 409, "索引未就绪", "尚未建立检索索引，请先运行 duijie reindex。", user=user)  # fmt: skip
    try:
        run = gl.run_guideline(
            db, vectors, name=run_name, round_name=round_name, recommender=_recommender(request)
        )
    except InvalidParameter as exc:
        db.rollback()
        return error_page(request, 409, "无法凝练", str(exc), user=user)
    db.commit()
    return _back(request, run.id, "run")


def _back(request: Request, run_id: int, done: str, anchor: str = "") -> RedirectResponse:
    url = request.url_for("staff_guideline", run_id=run_id).path
    return RedirectResponse(f"{url}?done={done}{anchor}", status_code=303)


def _context(db: Session, run: GuidelineRun) -> dict[str, Any]:
    names = dict(db.execute(select(Organisation.external_id, Organisation.name)).all())
    titles = dict(db.execute(select(Need.external_id, Need.title)).all())
    fields: dict[str, list[GuidelineDirection]] = {}
    directions = gl.directions_of(db, run.id)
    for d in directions:
        fields.setdefault(d.field, []).append(d)
    pairs = db.scalars(
        select(DuplicatePair).where(DuplicatePair.run_id == run.id).order_by(DuplicatePair.score.desc())
    ).all()  # fmt: skip
    return {
        "run": run, "fields": fields, "names": names, "titles": titles, "pairs": pairs,
        "status_labels": gl.STATUS_LABELS,
        "active": sum(d.status == "active" for d in directions),
    }  # fmt: skip


@router.get("/guideline/{run_id}", name="staff_guideline", response_class=HTMLResponse)
def staff_guideline(
    run_id: IdPath, request: Request, db: SessionDep, user: StaffUserDep
) -> Response:
    """指南方向: the directions of one run, editable, and its near-duplicate needs."""
    run = db.get(GuidelineRun, run_id)
    if run is None:
        return error_page(request, 404, "未找到", "该凝练批次不存在。", user=user)
    done = request.query_params.get("done")
    flashes = [("ok", _MESSAGES[done])] if done in _MESSAGES else []
    return render(request, "staff/guideline.html", _context(db, run), user=user, flashes=flashes)


def _direction(db: Session, run_id: int, direction_id: int) -> GuidelineDirection | None:
    d = db.get(GuidelineDirection, direction_id)
    return d if d is not None and d.run_id == run_id else None


def _refuse(request: Request, db: Session, user: auth.Principal, run_id: int, status: int,
            message: str) -> Response:  # fmt: skip
    db.rollback()
    run = db.get(GuidelineRun, run_id)
    if run is None:
        return error_page(request, 404, "未找到", "该凝练批次不存在。", user=user)
    return render(request, "staff/guideline.html", _context(db, run), user=user,
                  status_code=status, flashes=[("error", message)])  # fmt: skip


@router.post("/guideline/{run_id}/directions/{direction_id}", name="staff_guideline_edit")
def staff_guideline_edit(
    run_id: IdPath, direction_id: IdPath, request: Request, db: SessionDep,
    user: StaffFormUserDep, action: FormStr = "", version: FormStr = "", label: FormStr = "",
) -> Response:  # fmt: skip
    """Rename / split / drop / restore one direction."""
    d = _direction(db, run_id, direction_id)
    if d is None:
        return error_page(request, 404, "未找到", "该方向不存在。", user=user)
    seen = int(version) if version.isdigit() else None
    try:
        if action == "rename":
            gl.rename_direction(db, d, label, version=seen, user_id=user.user_id)
        elif action == "split":
            gl.split_direction(db, d, _vectors(request), version=seen, user_id=user.user_id)
        elif action in ("drop", "restore"):
            status = "dropped" if action == "drop" else "active"
            gl.set_status(db, d, status, version=seen, user_id=user.user_id)
        else:
            return _refuse(request, db, user, run_id, 422, "请求无效：未知操作。")
    except gl.StaleDirection as exc:
        return _refuse(request, db, user, run_id, 409, f"冲突：{exc}")
    except InvalidParameter as exc:
        return _refuse(request, db, user, run_id, 422, str(exc))
    db.commit()
    return _back(request, run_id, action, f"#dir-{direction_id}")


@router.post("/guideline/{run_id}/merge", name="staff_guideline_merge")
def staff_guideline_merge(
    run_id: IdPath, request: Request, db: SessionDep, user: StaffFormUserDep,
    ids: Annotated[list[int] | None, Form()] = None,
) -> Response:  # fmt: skip
    """Merge the ticked directions into one."""
    chosen = [d for i in (ids or [])[:200] if (d := _direction(db, run_id, i)) is not None]
    try:
        merged = gl.merge_directions(db, chosen, user_id=user.user_id)
    except InvalidParameter as exc:
        return _refuse(request, db, user, run_id, 422, str(exc))
    db.commit()
    return _back(request, run_id, "merge", f"#dir-{merged.id}")


@router.post("/guideline/{run_id}/duplicates/{pair_id}", name="staff_guideline_duplicate")
def staff_guideline_duplicate(
    run_id: IdPath, pair_id: IdPath, request: Request, db: SessionDep, user: StaffFormUserDep,
    action: FormStr = "",
) -> Response:  # fmt: skip
    """合并 (keep both sources) or 不是重复 for one near-duplicate pair."""
    pair = db.get(DuplicatePair, pair_id)
    if pair is None or pair.run_id != run_id:
        return error_page(request, 404, "未找到", "该疑似重复不存在。", user=user)
    try:
        if action == "merge":
            gl.merge_duplicate(db, pair, user_id=user.user_id)
        elif action == "dismiss":
            gl.dismiss_duplicate(db, pair, user_id=user.user_id)
        else:
            return _refuse(request, db, user, run_id, 422, "请求无效：未知操作。")
    except InvalidParameter as exc:
        return _refuse(request, db, user, run_id, 409, str(exc))
    db.commit()
    return _back(request, run_id, f"dup_{action}", "#duplicates")


@router.get("/guideline/{run_id}/export.xlsx", name="staff_guideline_export")
def staff_guideline_export(
    run_id: IdPath, request: Request, db: SessionDep, user: StaffUserDep
) -> Response:
    """导出指南建议表 (XLSX)."""
    run = db.get(GuidelineRun, run_id)
    if run is None:
        return error_page(request, 404, "未找到", "该凝练批次不存在。", user=user)
    data = gl.guideline_workbook(db, run)
    return Response(
        data,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="guideline-{run_id}.xlsx"'},
    )
