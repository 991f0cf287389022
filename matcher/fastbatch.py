"""One query's feature batch computed over arrays of per-document and per-organisation
facts, for :meth:`matcher.orgscoring.OrgScorer.match_batch`.

:func:`fast_batch` gives exactly what the per-candidate path gives (visibility of each
retrieved document, grouping by organisation in evidence order,
:meth:`matcher.features.FeatureBuilder.batch_features` over the groups; the same float
arithmetic, bit for bit: ``tests/matcher/test_fast_batch.py`` compares them) when no
organisation is added beyond the retrieved ones, no consortium pools documents and no
English-model similarity is involved; otherwise it returns None and the caller takes the
per-candidate path. The facts (:class:`DocFacts`, :class:`OrgFacts`) are derived once from
the documents and organisations, which are fixed for the life of a recommender.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.features import FEATURE_NAMES, FeatureBatch, FeatureBuilder, Query
from matcher.fusion import RowSpace
from matcher.protocols import Candidate
from matcher.rowmaps import CandidateList
from matcher.types import DocKind, Document, OrgInfo

logger = logging.getLogger(__name__)


class OrgFacts(NamedTuple):
    """Organisation-level feature values, one row per organisation in sorted id order.

    ids : sorted organisation ids; ``pos`` maps each to its row.
    region, load, past_success : float64 (n,), the values
        :meth:`~matcher.features.FeatureBuilder.batch_features` computes per organisation.
    """

    ids: list[str]
    pos: dict[str, int]
    region: NDArray[np.float64]
    load: NDArray[np.float64]
    past_success: NDArray[np.float64]


class DocFacts(NamedTuple):
    """What visibility needs of each document of one collection, as arrays.

    row_of : document id -> row.
    org : int64 (n,), the owner's row in :class:`OrgFacts` (-1: unknown organisation).
    usable : bool (n,), of the collection's kinds, active, with a known owner.
    confidential : bool (n,).
    trl : float64 (n,), the document's TRL (-1: unknown).
    field : int64 (n,), the document's field as a code of ``fields`` (-1: none).
    fields : field -> code.
    spaces : a retriever's row space (by the identity of its id list) -> (that list, each
        space row's row here, -1: none), filled on first use by :func:`space_doc_rows`.
    """

    row_of: dict[str, int]
    org: NDArray[np.int64]
    usable: NDArray[np.bool_]
    confidential: NDArray[np.bool_]
    trl: NDArray[np.float64]
    field: NDArray[np.int64]
    fields: dict[str, int]
    spaces: dict[int, tuple[Sequence[str], NDArray[np.int64]]]


def org_facts(
    orgs: Mapping[str, OrgInfo],
    load: Mapping[str, int],
    outcomes: Mapping[str, tuple[int, int]],
) -> OrgFacts:
    """The :class:`OrgFacts` of ``orgs`` (same expressions as the feature builder)."""
    ids = sorted(orgs)
    trials = [outcomes.get(o, (0, 0)) for o in ids]
    return OrgFacts(
        ids,
        {o: i for i, o in enumerate(ids)},
        np.array([1.0 if orgs[o].in_region else 0.0 for o in ids], dtype=np.float64),
        np.array([math.log1p(max(load.get(o, 0), 0)) for o in ids], dtype=np.float64),
        np.array([(s + 1.0) / (t + 2.0) - 0.5 for s, t in trials], dtype=np.float64),
    )


def doc_facts(
    documents: Mapping[str, Document], kinds: Sequence[DocKind], orgs: OrgFacts
) -> DocFacts:
    """The :class:`DocFacts` of every document for a collection holding ``kinds``."""
    keys = list(documents)
    docs = [documents[k] for k in keys]
    org = np.array([orgs.pos.get(d.org_id, -1) for d in docs], dtype=np.int64)
    usable = np.array([d.kind in kinds and d.active for d in docs], dtype=bool) & (org >= 0)
    conf = np.array([bool(d.confidential) for d in docs], dtype=bool)
    trl = np.array([t if (t := d.trl) is not None else -1 for d in docs], dtype=np.float64)
    fields: dict[str, int] = {}
    field = np.array(
        [fields.setdefault(d.field, len(fields)) if d.field else -1 for d in docs],
        dtype=np.int64,
    )
    row_of = {k: i for i, k in enumerate(keys)}
    return DocFacts(row_of, org, usable, conf, trl, field, fields, {})


def space_doc_rows(docs: DocFacts, space: RowSpace) -> NDArray[np.int64]:
    """Each row of a retriever's ``space`` as a row of ``docs`` (-1: not a document of
    ``docs``), derived once per space."""
    found = docs.spaces.get(id(space.ids))
    if found is None or found[0] is not space.ids:
        get = docs.row_of.get
        rows = np.fromiter((get(d, -1) for d in space.ids), np.int64, count=len(space.ids))
        if len(docs.spaces) >= 4:  # spaces of replaced indexes: keep only the newest few
            docs.spaces.clear()
        found = docs.spaces[id(space.ids)] = (space.ids, rows)  # a race only repeats work
    return found[1]


def field_match(
    query_field: str | None,
    org_fields: NDArray[np.bool_],
    doc_field: NDArray[np.int64],
    fields: Mapping[str, int],
    starts: NDArray[np.int64],
    keyword_docs: int,
) -> NDArray[np.float64]:
    """field_match of each group (see :meth:`FeatureBuilder.field_column`) from the groups'
    organisations having the field (``org_fields``) and their documents' field codes in
    group order (``doc_field``)."""
    n = len(starts) - 1
    if not query_field:
        return np.zeros(n, dtype=np.float64)
    code = fields.get(query_field, -2)
    counts = np.diff(starts)
    place = np.arange(int(starts[-1])) - np.repeat(starts[:-1], counts)
    hit = ((doc_field == code) & (place < keyword_docs)).astype(np.int64)
    in_docs = np.add.reduceat(hit, starts[:-1]) > 0 if n else np.zeros(0, dtype=bool)
    return (org_fields | in_docs).astype(np.float64)


def visible_rows(
    candidates: Sequence[Candidate],
    docs: DocFacts,
    orgs: OrgFacts,
    query_id: str | None,
    viewer_org_id: str | None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Positions of the candidates a viewer may see (a known document of the collection's
    kinds, active, of a known organisation, not the query itself, not confidential to
    another organisation), their owners' rows in ``orgs`` and their rows in ``docs``."""
    n = len(candidates)
    if isinstance(candidates, CandidateList) and len(candidates.rows) == n:
        # rows carried from retrieval: no id lookups
        at = space_doc_rows(docs, candidates.space)[candidates.rows]
    else:
        at = np.fromiter((docs.row_of.get(c.doc_id, -1) for c in candidates), np.int64, count=n)
    known = at >= 0
    for j in np.flatnonzero(~known).tolist():
        logger.debug("retrieved unknown document %s: skipped", candidates[j].doc_id)
    a = np.where(known, at, 0)
    owner = docs.org[a]
    viewer = orgs.pos.get(viewer_org_id, -2) if viewer_org_id is not None else -2
    ok = known & docs.usable[a] & (~docs.confidential[a] | (owner == viewer))
    if query_id is not None and (q := docs.row_of.get(query_id)) is not None:
        ok &= at != q
    keep = np.flatnonzero(ok)
    return keep, owner[keep], at[keep]


def fast_batch(
    features: FeatureBuilder,
    query: Query,
    candidates: Sequence[Candidate],
    filled: Mapping[str, float | None],
    docs: DocFacts,
    orgs: OrgFacts,
    viewer_org_id: str | None,
    order_of: object,
) -> FeatureBatch | None:
    """The feature batch of the visible candidates grouped by organisation (rows in org id
    order), or None where the per-candidate path is needed (English similarities, no
    visible candidate). ``filled``: dense cosines of candidates found by BM25 alone;
    ``order_of``: the evidence-order function (:func:`matcher.orgscoring.candidate_order`)."""
    keep, owner, doc_rows = visible_rows(candidates, docs, orgs, query.id, viewer_org_id)
    if len(keep) == 0:
        return None
    seen = [candidates[i] for i in keep.tolist()]
    _, scores, dense_t, lexical, _, english = zip(*seen, strict=True)  # columns, at C speed
    if english.count(None) != len(english):
        return None
    dense = list(dense_t)
    if None in dense:
        for j in [j for j, v in enumerate(dense) if v is None]:
            c = seen[j]
            if (v := filled.get(c.doc_id)) is not None:
                seen[j] = Candidate(c.doc_id, c.score, v, c.lexical, c.chunk, c.english)
                dense[j] = v
    x = np.array([0.0 if v is None else v for v in dense], dtype=np.float64)
    lex = np.array([v or 0.0 for v in lexical], dtype=np.float64)
    lexical_max = float(lex.max())
    sc = np.array(scores, dtype=np.float64)
    order = np.asarray(order_of(seen, x, sc), dtype=np.int64)  # type: ignore[operator]
    by_org = owner[order]  # rows >= 0; in 16 bits they sort the same by numpy's radix sort
    key = by_org.astype(np.uint16) if len(orgs.ids) <= 1 << 16 else by_org
    flat_at = order[np.argsort(key, kind="stable")]  # groups in evidence order
    group_org = owner[flat_at]
    first = np.flatnonzero(np.concatenate(([True], group_org[1:] != group_org[:-1])))
    starts = np.concatenate((first, [len(flat_at)])).astype(np.int64)
    flat = [seen[i] for i in flat_at.tolist()]
    bounds = starts.tolist()
    groups = [tuple(flat[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    rows = group_org[first]
    org_ids = [orgs.ids[r] for r in rows.tolist()]
    sims = x[flat_at]
    semantic_range = (float(x.min()), float(x.max()))
    trl = docs.trl[doc_rows[flat_at]]
    cols = features._document_columns(query, flat, groups, starts, sims, semantic_range, trl)
    cols["lexical"] = features._lexical_column(flat, starts, lexical_max, lex[flat_at])
    qkw = features.query_keywords(query)
    cols["keyword_overlap"] = features.overlap_column(groups, qkw)
    org_fields = np.zeros(len(org_ids), dtype=bool)
    if query.field:
        qf = query.field
        org_fields = np.array([qf in features.orgs[o].fields for o in org_ids], dtype=bool)
    cols["field_match"] = field_match(
        query.field,
        org_fields,
        docs.field[doc_rows[flat_at]],
        docs.fields,
        starts,
        features.keyword_docs,
    )
    cols["region"], cols["load"] = orgs.region[rows], orgs.load[rows]
    cols["past_success"] = orgs.past_success[rows]
    X = np.empty((len(groups), len(FEATURE_NAMES)), dtype=np.float64)
    for j, name in enumerate(FEATURE_NAMES):
        X[:, j] = cols[name]
    return FeatureBatch(org_ids, groups, X, sims, starts)
