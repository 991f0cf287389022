"""``duijie commissioners import`` and ``duijie dispatch`` (科技专员选派).

Commissioners come from a CSV with Chinese headers (:data:`COMMISSIONER_COLUMNS`, UTF-8 or
GB18030). ``dispatch`` sends them to small and medium enterprises with open needs: the
affinity of an (enterprise, commissioner) pair is the best cosine between one of the
enterprise's need vectors (from the current index build) and one of the commissioner's
profile documents (papers, patents, past services; encoded once through the embedding
cache), solved by the pairing engine with load limits and the corporate-group rule
(:mod:`matcher.dispatch`). The result is a campaign of kind ``dispatch`` whose shortlist
staff review on the same pages as a pairing campaign.
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.constraints import EligibilityPolicy
from matcher.dispatch import dispatch_problem, profile_scores, solve_dispatch
from matcher.encoding import need_key
from matcher.errors import MatcherError
from matcher.solvers import PairingEncoder
from service.db import open_store, session_scope
from service.enums import SME_SCALES
from service.importing.headers import header_key
from service.importing.readers import detect_encoding
from service.models import Campaign, Commissioner, Need, Organisation, ShortlistItem
from service.recommender import need_vectors
from service.settings import Settings, load_settings
from service.snapshot import CLOSED_NEED_STATUSES, load_snapshot
from service.validation import FieldError, normalise_text, parse_int, split_list

log = logging.getLogger(__name__)

COMMISSIONER_COLUMNS: dict[str, tuple[str, ...]] = {
    "external_id": ("专员编号", "编号", "id", "external_id"),
    "name": ("姓名", "专员姓名", "name"),
    "employer": ("工作单位编号", "工作单位", "所在单位", "单位编号", "employer"),
    "title": ("职称", "title"),
    "field": ("所属领域", "领域", "field"),
    "expertise": ("研究方向", "专长", "技术专长", "expertise"),
    "keywords": ("关键词", "keywords"),
    "papers": ("代表论文", "论文", "papers"),
    "patents": ("授权专利", "专利", "patents"),
    "services": ("服务经历", "服务记录", "services"),
    "load_limit": ("服务企业上限", "负荷上限", "可服务企业数", "load_limit"),
}
REQUIRED = ("external_id", "name", "employer")
_ITEMS = re.compile(r"[；;\n]+")
_ALIASES = {header_key(a): k for k, names in COMMISSIONER_COLUMNS.items() for a in names}


def _titles(value: str) -> list[str]:
    """Titles separated by ；/; or line breaks (titles themselves contain ，and 、)."""
    return [t.strip() for t in _ITEMS.split(value) if t.strip()]


def read_commissioners(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {key: text}) of each data row of a commissioner CSV."""
    encoding = detect_encoding(path)
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        keys = [_ALIASES.get(header_key(h)) for h in header]
        missing = [COMMISSIONER_COLUMNS[k][0] for k in REQUIRED if k not in keys]
        if missing:
            raise FieldError(f"{path.name}：缺少必填列 {'、'.join(missing)}")
        for n, row in enumerate(reader, start=2):
            if not any(c.strip() for c in row):
                continue
            yield n, {k: normalise_text(v) for k, v in zip(keys, row, strict=False) if k}


def import_commissioners(session: Session, path: Path) -> tuple[int, int, list[str]]:
    """Upsert the commissioners of ``path``: (created, updated, errors). Nothing is written
    when any row has an error (the errors name the line)."""
    orgs = {
        **{str(n): int(i) for i, n in session.execute(select(Organisation.id, Organisation.name))},
        **{
            str(e): int(i)
            for i, e in session.execute(select(Organisation.id, Organisation.external_id))
        },
    }
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for n, raw in read_commissioners(path):
        try:
            missing = [COMMISSIONER_COLUMNS[k][0] for k in REQUIRED if not raw.get(k)]
            if missing:
                raise FieldError(f"缺少 {'、'.join(missing)}")
            employer = orgs.get(raw["employer"])
            if employer is None:
                raise FieldError(f"工作单位「{raw['employer']}」不存在（请先导入单位）")
            limit = raw.get("load_limit") or "3"
            rows.append(
                {
                    "external_id": raw["external_id"],
                    "name": raw["name"][:64],
                    "employer_org_id": employer,
                    "title": raw.get("title", "")[:64],
                    "field": raw.get("field") or None,
                    "expertise": raw.get("expertise", ""),
                    "keywords": split_list(raw.get("keywords", "")),
                    "papers": _titles(raw.get("papers", "")),
                    "patents": _titles(raw.get("patents", "")),
                    "services": _titles(raw.get("services", "")),
                    "load_limit": parse_int(limit, "服务企业上限", minimum=0, maximum=100),
                }
            )
        except FieldError as exc:
            errors.append(f"第 {n} 行：{exc}")
    if errors:
        return 0, 0, errors
    existing = {
        c.external_id: c
        for c in session.scalars(
            select(Commissioner).where(
                Commissioner.external_id.in_([r["external_id"] for r in rows])
            )
        )
    }
    created = updated = 0
    for r in rows:
        obj = existing.get(r["external_id"])
        if obj is None:
            session.add(Commissioner(**r))
            created += 1
        else:
            changed = False
            for k, v in r.items():
                if getattr(obj, k) != v:
                    setattr(obj, k, v)
                    changed = True
            updated += changed
    return created, updated, []


def import_demo_commissioners(factory: Any, directory: Path, out: Any) -> None:
    """Load every commissioner CSV of ``directory`` (the demo's ``commissioners/``)."""
    for path in sorted(directory.glob("*.csv")):
        with session_scope(factory) as s:
            created, updated, errors = import_commissioners(s, path)
        for e in errors:
            out.write(f"{path.name}: {e}\n")
        out.write(f"{path.name}: 科技专员 新增 {created}，更新 {updated}\n")


def encode_profiles(
    settings: Settings, texts: Sequence[str], encoder: Any | None = None
) -> NDArray[np.float32]:
    """Document vectors of ``texts`` through the index's embedding cache (encoded once);
    ``encoder`` defaults to the configured one (the model the index was built with)."""
    from embeddings import BuildStore, make_encoder
    from embeddings.cache import EmbeddingCache, text_key

    if encoder is None:
        encoder = make_encoder(settings.embedding_backend, model_path=settings.model_path)
    keys = [text_key(t) for t in texts]
    with EmbeddingCache(BuildStore(settings.resolved_index_dir).cache_path) as cache:
        found = cache.get_vectors(encoder.model_id, keys, int(encoder.dim))
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        if todo:
            by_key = dict(zip(keys, texts, strict=True))
            vecs = np.asarray(encoder.encode_documents([by_key[k] for k in todo]), np.float32)
            cache.put_vectors(encoder.model_id, todo, vecs)
            found.update(zip(todo, vecs, strict=True))
    log.info("profile documents: %d, encoded %d", len(texts), len(todo))
    if not keys:
        return np.zeros((0, int(encoder.dim)), np.float32)
    return np.stack([found[k] for k in keys]).astype(np.float32)


def _sme_needs(
    session: Session, scales: Sequence[str], include_unknown: bool
) -> list[tuple[str, str]]:
    """(enterprise ext id, need ext id) of open needs of active SMEs, by enterprise."""
    scale_ok: Any = Organisation.scale.in_(list(scales))
    if include_unknown:
        scale_ok = scale_ok | Organisation.scale.is_(None)
    rows = session.execute(
        select(Organisation.external_id, Need.external_id)
        .join(Need, Need.org_id == Organisation.id)
        .where(
            Organisation.kind == "enterprise",
            Organisation.status == "active",
            scale_ok,
            Need.status.not_in(list(CLOSED_NEED_STATUSES)),
            Need.duplicate_of_id.is_(None),
        )
        .order_by(Organisation.id, Need.id)
    ).all()
    return [(str(e), str(n)) for e, n in rows]


@dataclass
class _DispatchRun:
    """What solving a dispatch produced, for building its shortlist."""

    factory: Any
    enterprises: list[str]
    com: list[tuple[Any, ...]]
    docs: list[tuple[int, str]]
    pairs: list[tuple[str, str]]
    org_pk: dict[str, int]
    need_pk: dict[str, int]
    need_title: dict[str, str]
    cand: Any
    solution: Any
    result: Any


def _solve_dispatch(
    settings: Settings, name: str, params: dict[str, Any], encoder: Any | None
) -> _DispatchRun:
    """Load commissioners and SME needs, score them and solve the assignment."""
    _engine, factory = open_store(settings.resolved_database_url)
    with session_scope(factory) as s:
        if s.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
            raise MatcherError(f"活动 {name!r} 已存在（请换一个名称）")
        snap = load_snapshot(s)
        pairs = _sme_needs(
            s, params.get("scales", sorted(SME_SCALES)), params.get("unknown", False)
        )
        people = list(
            s.scalars(
                select(Commissioner)
                .where(Commissioner.status == "active")
                .order_by(Commissioner.id)
            )
        )
        employer_ext = {o.id: o.external_id for o in s.scalars(select(Organisation))}
        com = [(c.id, c.external_id, c.name, employer_ext[c.employer_org_id], c.load_limit,
                c.profile_texts()) for c in people]  # fmt: skip
        org_pk = {v: k for k, v in employer_ext.items()}
        need_pk = {str(e): int(i) for i, e in s.execute(select(Need.id, Need.external_id))}
        need_title = {str(e): str(t) for e, t in s.execute(select(Need.external_id, Need.title))}
    row_of, nvec = need_vectors(settings)
    pairs = [(e, n) for e, n in pairs if need_key(n) in row_of]
    if params.get("max_enterprises"):
        keep = list(dict.fromkeys(e for e, _ in pairs))[: int(params["max_enterprises"])]
        pairs = [(e, n) for e, n in pairs if e in set(keep)]
    enterprises = list(dict.fromkeys(e for e, _ in pairs))
    e_row = {e: i for i, e in enumerate(enterprises)}
    docs = [(j, t) for j, c in enumerate(com) for t in c[5]]
    dvec = encode_profiles(settings, [t for _, t in docs], encoder)
    cand = profile_scores(
        nvec[[row_of[need_key(n)] for _, n in pairs]] if pairs else np.zeros((0, nvec.shape[1])),
        [e_row[e] for e, _ in pairs], len(enterprises),
        dvec, [j for j, _ in docs], len(com), top=int(params.get("top", 50)),
    )  # fmt: skip
    codes = EligibilityPolicy(snap.orgs).group_codes([*enterprises, *(c[3] for c in com)])
    problem = dispatch_problem(
        cand, len(enterprises), len(com), load_limit=[c[4] for c in com],
        enterprise_group=codes[: len(enterprises)], employer_group=codes[len(enterprises):],
        k=int(params.get("k", 1)), floor=float(params.get("floor", float("-inf"))),
    )  # fmt: skip
    solution = solve_dispatch(problem, n_alternates=int(params.get("alternates", 2)))
    enc = PairingEncoder(
        enterprises, [c[1] for c in com], institute_names={c[1]: c[2] for c in com}
    )
    result = enc.decode(solution)
    return _DispatchRun(
        factory, enterprises, com, docs, pairs, org_pk, need_pk, need_title, cand, solution, result
    )


def run_dispatch(
    settings: Settings, name: str, params: dict[str, Any], *, encoder: Any | None = None
) -> dict[str, Any]:
    """Create the dispatch campaign ``name`` and its shortlist; returns the summary.

    ``params``: ``k`` (1), ``top`` (50), ``alternates`` (2), ``floor``, ``scales``
    (micro/small/medium), ``unknown`` (include enterprises without a declared scale),
    ``max_enterprises``.
    """
    run = _solve_dispatch(settings, name, params, encoder)
    factory, enterprises, com, docs, pairs = (
        run.factory,
        run.enterprises,
        run.com,
        run.docs,
        run.pairs,
    )
    org_pk, need_pk, need_title, cand = run.org_pk, run.need_pk, run.need_title, run.cand
    solution, result = run.solution, run.result
    e_row = {e: i for i, e in enumerate(enterprises)}
    best = {
        (int(r), int(c)): (pairs_q, doc)
        for r, c, pairs_q, doc in zip(cand.rows, cand.cols, cand.query, cand.doc, strict=True)
    }
    need_of_row = [n for _, n in pairs]
    c_col = {c[1]: j for j, c in enumerate(com)}

    def item(e: str, cid: str, score: float, rank: int, kind: str) -> ShortlistItem:
        j = c_col[cid]
        q, d = best.get((e_row[e], j), (-1, -1))
        need = need_of_row[q] if q >= 0 else None
        return ShortlistItem(
            enterprise_id=org_pk[e], institute_id=org_pk.get(com[j][3]), commissioner_id=com[j][0],
            need_id=need_pk.get(need) if need else None, score=score, rank=rank, kind=kind,
            evidence={"commissioner": com[j][2], "need_title": need_title.get(need or "", ""),
                      "profile_document": docs[d][1] if d >= 0 else "", "solver": solution.solver},
        )  # fmt: skip

    items: list[ShortlistItem] = []
    rank: dict[str, int] = {}
    for pr in result.pairs:
        rank[pr.enterprise] = rank.get(pr.enterprise, 0) + 1
        items.append(item(pr.enterprise, pr.institute, pr.score, rank[pr.enterprise], "assigned"))
    for e, alts in result.alternates.items():
        for a in alts:
            rank[e] = rank.get(e, 0) + 1
            items.append(item(e, a.institute, a.score, rank[e], "alternate"))
    for u in result.uncovered:
        e = str(u.enterprise)
        items.append(
            ShortlistItem(
                enterprise_id=org_pk[e], kind="uncovered", rank=rank.get(e, 0) + 1,
                problem=u.message, evidence={"reason_code": str(u.code), "reasons": list(u.reasons)},
            )
        )  # fmt: skip
    summary = {
        "kind": "dispatch", "enterprises": len(enterprises), "commissioners": len(com),
        "pairs": len(result.pairs), "uncovered": len(result.uncovered),
        "objective": round(result.objective, 6), "status": str(result.status),
        "solver": solution.solver, "items": len(items),
    }  # fmt: skip
    with session_scope(factory) as s:
        camp = Campaign(name=name, kind="dispatch", params=params, status="done", progress=1.0,
                        summary=summary)  # fmt: skip
        s.add(camp)
        s.flush()
        for it in items:
            it.campaign_id = camp.id
        s.add_all(items)
    return summary


def cmd_commissioners_import(args: argparse.Namespace) -> int:
    settings = load_settings()
    _engine, factory = open_store(settings.resolved_database_url)
    try:
        with session_scope(factory) as s:
            created, updated, errors = import_commissioners(s, args.path)
    except (FieldError, OSError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    if errors:
        sys.stderr.write(
            "导入失败，未写入任何记录：\n" + "\n".join(f"  {e}" for e in errors) + "\n"
        )
        return 1
    sys.stdout.write(f"科技专员导入完成：新增 {created}，更新 {updated}\n")
    return 0


def cmd_dispatch(args: argparse.Namespace) -> int:
    settings = load_settings()
    params: dict[str, Any] = {
        "k": args.k, "top": args.top, "alternates": args.alternates,
        "scales": args.scales.split(","), "unknown": args.include_unknown_scale,
    }  # fmt: skip
    if args.floor is not None:
        params["floor"] = args.floor
    if args.max_enterprises:
        params["max_enterprises"] = args.max_enterprises
    try:
        summary = run_dispatch(settings, args.campaign, params)
    except MatcherError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(
        f"选派 {args.campaign}：{summary['enterprises']} 家中小企业，{summary['commissioners']} 名科技专员，"
        f"派出 {summary['pairs']} 人次，未覆盖 {summary['uncovered']} 家，总匹配度 {summary['objective']:.3f}"
        f"（{summary['solver']}，{summary['status']}）。请在工作人员页面审核名单。\n"
    )
    return 0


def register(subparsers: Any) -> None:
    c = subparsers.add_parser("commissioners", help="科技专员: import commissioners")
    csub = c.add_subparsers(dest="commissioners_command", metavar="ACTION", required=True)
    ci = csub.add_parser("import", help="import a commissioner CSV (Chinese headers)")
    ci.add_argument("path", type=Path)
    ci.set_defaults(func=cmd_commissioners_import)

    d = subparsers.add_parser("dispatch", help="科技专员选派: commissioners to SMEs' needs")
    d.add_argument("--campaign", required=True, metavar="NAME", help="campaign name (created)")
    d.add_argument("--k", type=int, default=1, help="commissioners per enterprise (1)")
    d.add_argument("--top", type=int, default=50, help="candidates per enterprise (50)")
    d.add_argument("--alternates", type=int, default=2)
    d.add_argument("--floor", type=float, default=None, help="minimum affinity")
    d.add_argument("--scales", default="micro,small,medium", help="enterprise scales served")
    d.add_argument("--include-unknown-scale", action="store_true")
    d.add_argument("--max-enterprises", type=int, default=None, help=argparse.SUPPRESS)
    d.set_defaults(func=cmd_dispatch)
