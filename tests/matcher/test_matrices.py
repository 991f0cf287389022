"""enterprise_matrix's campaign rows equal the per-organisation definition, cell by cell.

The matrix featurises only the organisations a query retrieved and scores the others once per
query field (:mod:`matcher.matrices`); the reference is ``OrgScorer.score_queries`` with every
organisation asked about, the path that featurises each one per query.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from matcher.features import Query
from matcher.pipeline import Recommender
from matcher.types import OrgInfo


def _reference(rec: Recommender, ent: str, cols: list[str]) -> list[object]:
    needs = [Query.from_document(d) for d in rec.needs_of(ent) if rec.active(d)]
    scored = rec.score_queries(needs, "capabilities", ent, cols)
    return [scored[o] for o in cols]


@pytest.mark.parametrize("fetch_k", [50, 2])  # 2: most institutes are not retrieved
def test_rows_equal_scoring_every_organisation(
    recommender: Recommender,
    orgs: dict[str, OrgInfo],
    fetch_k: int,
) -> None:
    rec = recommender  # session-scoped: fetch_k is restored below
    old_k = rec.fetch_k
    rec.fetch_k = fetch_k
    try:
        ents = sorted(o for o in orgs if orgs[o].kind == "enterprise")
        cols = sorted(o for o in orgs if orgs[o].kind in ("university", "institute"))
        pm = rec.enterprise_matrix(ents, cols)
        checked = 0
        for i, ent in enumerate(ents):
            if pm.best_match[i, 0] is None:  # no active need: a forbidden row of zeros
                assert pm.forbidden[i].all() and not pm.scores[i].any()
                continue
            for j, want in enumerate(_reference(rec, ent, cols)):
                got = pm.best_match[i, j]
                assert pm.scores[i, j] == want.score, (ent, cols[j])  # type: ignore[attr-defined]
                assert got.query == want.query and pm.best_query[i, j] == want.query.id  # type: ignore[attr-defined]
                assert np.array_equal(got.match.features, want.match.features)  # type: ignore[attr-defined]
                assert got.match.candidates == want.match.candidates  # type: ignore[attr-defined]
                assert np.array_equal(got.contributions, want.contributions)  # type: ignore[attr-defined]
                checked += 1
        assert checked >= 2 * len(cols)
        if fetch_k == 2:  # the shortcut was exercised: some cells have no retrieved document
            assert any(not m.match.candidates for m in pm.best_match.ravel() if m is not None)
    finally:
        rec.fetch_k = old_k


def test_needs_of_different_fields_take_their_own_field_match(
    recommender: Recommender, orgs: dict[str, OrgInfo]
) -> None:
    cols = sorted(o for o in orgs if orgs[o].kind in ("university", "institute"))
    ents = [e for e in sorted(orgs) if recommender.needs_of(e)]
    fields = {d.field for e in ents for d in recommender.needs_of(e)}
    assert len(fields) >= 2  # the fixture has needs of several fields
    pm = recommender.enterprise_matrix(ents, cols)
    for i, ent in enumerate(ents):
        if pm.best_match[i, 0] is None:
            continue
        for j, want in enumerate(_reference(recommender, ent, cols)):
            assert pm.scores[i, j] == want.score  # type: ignore[attr-defined]


class _Memo:
    """A memoising query encoder that records each call's texts."""

    memoises_queries = True

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []
        self.memo: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode_queries(self, texts: Any) -> Any:
        texts = list(texts)
        self.calls.append(texts)
        todo = [t for t in texts if t not in self.memo]
        if todo:
            self.memo.update(zip(todo, self.inner.encode_queries(todo), strict=True))
        return np.stack([self.memo[t] for t in texts])


def test_need_texts_are_encoded_in_one_batch_ahead(
    recommender: Recommender, orgs: dict[str, OrgInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    cols = sorted(o for o in orgs if orgs[o].kind in ("university", "institute"))
    ents = [e for e in sorted(orgs) if recommender.needs_of(e)]
    plain = recommender.enterprise_matrix(ents, cols)
    retriever = recommender.retrievers["capabilities"]
    memo = _Memo(retriever.encoder)  # type: ignore[attr-defined]
    monkeypatch.setattr(retriever, "encoder", memo)
    pm = recommender.enterprise_matrix(ents, cols)
    assert np.array_equal(pm.scores, plain.scores)
    first, rest = memo.calls[0], memo.calls[1:]
    n_queries = sum(
        1 for e in ents if orgs[e].active for d in recommender.needs_of(e) if recommender.active(d)
    )
    assert len(first) == len(set(first)) and len(first) > 1
    assert len(rest) == n_queries and all(len(c) == 1 and c[0] in first for c in rest)
