"""English documents get a second index with the bundled English model (opt-in setting), and
the service's retrievers rank English queries with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings import BuildStore
from matcher.encoding import cap_key
from matcher.expansion import CorpusExpander
from matcher.retrieval import HybridRetriever
from service import models as m
from service.jobs.reindex import run_reindex
from service.recommender import ENGLISH_DIR, RecommenderHandle
from service.settings import load_settings
from tests.embeddings.conftest import FakeEncoder

pytestmark = pytest.mark.slow  # loads all-MiniLM-L6-v2 from its wheel


def _seed(factory) -> None:  # type: ignore[no-untyped-def]
    with factory() as s:
        uni = m.Organisation(external_id="U1", name="广西大学", kind="university")
        inst = m.Organisation(external_id="I1", name="Materials Institute", kind="institute")
        s.add_all([uni, inst])
        s.flush()
        s.add_all(
            [
                m.Capability(
                    external_id="zh-1",
                    org_id=uni.id,
                    kind="achievement",
                    title="甘蔗渣制备生物质复合材料",
                    description="以蔗渣为原料热压成型。",
                ),
                m.Capability(
                    external_id="en-1",
                    org_id=inst.id,
                    kind="paper",
                    title="Corrosion resistance of aluminium alloys",
                    description="We study pitting corrosion of 6061 aluminium in salt spray.",
                ),
                m.Capability(
                    external_id="en-2",
                    org_id=inst.id,
                    kind="paper",
                    title="Deep learning for crop disease detection",
                    description="A convolutional network classifies leaf images.",
                ),
            ]
        )
        s.commit()


def test_english_documents_are_indexed_and_rank_english_queries(store, tmp_path: Path) -> None:
    _seed(store.factory)
    settings = load_settings(
        database_url=store.url, index_dir=tmp_path / "index", english_model="bundled"
    )
    enc = FakeEncoder()
    run_reindex(settings, encoder=enc)

    en_store = BuildStore(tmp_path / "index" / ENGLISH_DIR)
    en_build = en_store.load_current()
    # only the English documents, in their own build, under the English model
    assert sorted(en_build.collection("capabilities").doc_ids) == [cap_key("en-1"), cap_key("en-2")]
    assert "MiniLM" in en_build.manifest["model_id"] or en_build.dim == 384

    handle = RecommenderHandle(settings, store.factory, encoder=enc)
    retriever = handle.get().retrievers["capabilities"]
    assert retriever.english_dense is not None and retriever.english_encoder is not None
    # the service's default preset expands keyword lists over the build's own BM25 matrix
    assert isinstance(retriever.expander, CorpusExpander)
    assert retriever.expander.matrix.doc_ids == retriever.lexical.doc_ids_
    # the English index finds the paraphrase the (fake, English-blind) main encoder cannot
    query = "salt spray pitting of aluminum alloy"
    en_hits = retriever.english_dense.search(retriever.english_encoder.encode_queries([query]), 2)
    assert en_hits[0].ids[0] == cap_key("en-1")

    # ... and its ranking lifts en-1 in the fusion (smoothing off: 3 documents are all
    # each other's neighbours, which would average the scores away)
    plain = {**retriever.get_params(), "graph_weight": 0.0, "prf_docs": 0}

    def margin(english_weight: float) -> float:
        r = HybridRetriever(**{**plain, "english_weight": english_weight})
        scores = {c.doc_id: c.score for c in r.retrieve([query], 3)[0]}
        return scores[cap_key("en-1")] - max(v for d, v in scores.items() if d != cap_key("en-1"))

    assert margin(2.0) > margin(0.0)
