"""The scale benchmark (eval/scale.py) end to end on a small synthetic index, the checksum-cost
section, the build report naming its embedder, and the benchmark with single --variants lists."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, make_settings


def run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_synthetic_collection_is_consistent():
    from eval.scale import _bm25_tokens, synthetic

    articles, chunks = synthetic(100)
    assert len(chunks) == 100 and len(articles) == 34
    by_id = {a.id: a for a in articles}
    for c in chunks:
        text = by_id[c.article_id].text
        assert text[c.start : c.end] == c.text
        assert all(c.start <= a < b <= c.end and text[b - 1] == "." for a, b in c.sentences)
    tokens = _bm25_tokens(chunks)  # asserts equality with bm25_tokenize on a sample itself
    assert all(tokens)
    # Invented names make the vocabulary grow with the collection.
    assert len({t for ts in tokens for t in ts}) > 500


def test_scale_run_builds_serves_and_reports(tmp_path):
    out = tmp_path / "scale.json"
    r = run("-m", "eval.scale", "--sizes", "900", "--questions", "6", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    row = json.loads(out.read_text())["scale"]["sizes"]["900"]
    build, serve = row["build"], row["serve"]
    assert build["n"] == serve["n"] == 900 and serve["faiss_type"] == "flat"
    assert serve["checked"]["checksums"] is True  # published through IndexStore.write, with checksums
    for stage in ("bm25", "dense", "fused", "ask"):
        assert 0 < serve["ms"][stage]["p50"] <= serve["ms"][stage]["p95"]
    assert serve["ms"]["ask"]["p50"] > serve["ms"]["fused"]["p50"]  # ask() adds the embedder and the reader
    assert serve["rss_after_load"]["RssAnon"] > serve["rss_before_load"]["RssAnon"]
    assert build["disk_bytes"]["sentences.npy"] > 900 * 384 * 4  # several sentence vectors a passage
    assert "Scale curve" in (out.with_suffix(".txt")).read_text()


def test_integrity_cost_section(seeds_pipeline, tmp_path):
    out = tmp_path / "integrity.json"
    r = run("-m", "eval.scale", "--integrity", str(seeds_pipeline.settings.index_dir), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())["integrity"]
    assert res["n_chunks"] == len(seeds_pipeline.index().chunks)
    assert 0 < res["load_hashed_bytes"] < res["verify_bytes"]  # sentences.npy and BM25 tokens only in verify
    assert res["load_s_with_checks"] > 0 and res["load_s_without"] > 0 and res["verify_s"] > 0


def test_build_report_names_the_embedder(articles_copy, tmp_path):
    from rag.cli import print_build_report
    from rag.pipeline import Pipeline

    pipe = Pipeline(make_settings(articles_dir=articles_copy, index_dir=tmp_path / "index", embed_backend="onnx",
                                  build_backend="onnx"))
    report = pipe.build()
    e = report.embedding
    assert e["backend"] == "onnx" and e["precision"] == "fp32" and e["threads"] >= 1 and e["cpus"] >= 1
    assert "load_average" in e and isinstance(e["cpu_bf16"], bool)
    assert json.loads(report.model_dump_json())["embedding"] == e
    from rich.console import Console

    import rag.cli as cli

    console = Console(record=True, width=300)
    old, cli.out = cli.out, console
    try:
        print_build_report(report, as_json=False)
    finally:
        cli.out = old
    assert "embedded by onnx fp32 on" in console.export_text()
    # Nothing embedded (no change): no embedder is named.
    assert pipe.build().embedding == {}


@pytest.mark.slow
@pytest.mark.parametrize("variant, skip", [("onnx-fp32", "faiss"), ("torch-bf16", "faiss,onnx")])
def test_bench_sections_run_with_one_variant(tmp_path, variant, skip):
    """Every section but the 1M-vector FAISS one (its own, variant-free) with a single --variants
    (which used to crash the cold-start section); the vector check once (it builds its own index
    when no torch-fp32 one was built)."""
    out = tmp_path / "bench.json"
    r = run("-m", "eval.bench", "--corpus", "seeds", "--quick", "--skip", skip, "--variants", variant,
            "--out", str(out), timeout=1800)
    text = r.stdout + r.stderr
    assert r.returncode == 0 and "Traceback" not in text and "failed" not in text, text[-3000:]
    rep = json.loads(out.read_text())
    seeds = rep["corpora"]["seeds"]
    assert seeds["builds"][variant] and seeds["serve"]["onnx-fp32"]
    if "onnx" not in skip:
        assert rep["onnx"]["variants"]["onnx fp32"]["cos_min"] > 0.9999
        assert "2. Vectors vs" in text
    assert rep["cold"]["runs"]["onnx-fp32"] and not any(x["torch_imported"] for x in rep["cold"]["runs"]["onnx-fp32"])
    assert rep["integrity"]["verify_bytes"] > 0
    for title in ("1. Build throughput", "3. Answer latency", "5. Memory", "6. Cold start", "8. Checksums"):
        assert title in text
