"""The FAISS index type chosen by collection size: each kind is written, loaded back and
searched like the exact index (the thresholds are lowered so that the seeds reach every kind)."""

from __future__ import annotations

import numpy as np
import pytest

from rag import index as index_mod
from rag.index import IndexStore, build_faiss
from rag.retrieve import dense_search


def _clustered(n: int, d: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(4, n // 100), d)).astype(np.float32)
    x = centers[rng.integers(0, len(centers), n)] + rng.standard_normal((n, d)).astype(np.float32) / np.sqrt(d)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("n, expected", [(300, "flat"), (1500, "hnsw32"), (6000, "ivf")])
def test_kind_by_size_and_recall(n, expected):
    x = _clustered(n)
    index, kind = build_faiss(x, x.shape[1], exact_max=500, hnsw_max=2000)
    assert kind.startswith(expected)
    q = _clustered(100, seed=1)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    _, got = index.search(q, 10)
    recall = np.mean([len(set(truth[i]) & set(got[i])) / 10 for i in range(len(q))])
    assert recall >= 0.99, (kind, recall)


@pytest.mark.parametrize("hnsw_max", [10_000, 10])  # the seeds' 44 chunks: HNSW, then IVF
def test_approximate_index_round_trip(seeds_pipeline, tmp_path, monkeypatch, hnsw_max):
    monkeypatch.setattr(index_mod, "HNSW_MAX", hnsw_max)
    data = seeds_pipeline.index()
    store = IndexStore(tmp_path / "index")
    store.write(
        articles=list(data.articles.values()),
        chunks=data.chunks,
        vectors=data.vectors,
        sent_vectors=data.sent_vectors,
        manifest=dict(data.manifest),
        exact_max=5,
    )
    loaded = store.load(data.manifest["model_name"])
    assert loaded.manifest["faiss_type"] == ("hnsw32" if hnsw_max > 44 else "ivf1")
    # Stored vectors read back by row, bit for bit (IVF keeps them in lists, not in row order).
    np.testing.assert_array_equal(loaded.vectors, data.vectors)
    q = seeds_pipeline.embedder.encode_query("What share of OpenAI does Microsoft hold?")
    assert [r for r, _ in dense_search(loaded, q, 10)] == [r for r, _ in dense_search(data, q, 10)]
    # Rows as retrieval reads them (one, several), and the fused retrieval that folds duplicates by vector.
    np.testing.assert_array_equal(loaded.vectors[7], data.vectors[7])
    np.testing.assert_array_equal(loaded.vectors[[9, 2, 30]], data.vectors[[9, 2, 30]])
    from rag.retrieve import retrieve

    args = dict(mode="hybrid", fusion="score", top_k=5, candidates=40, rrf_k=60, dedup_threshold=0.92)
    got = retrieve(loaded, "Microsoft share of OpenAI", q, **args)
    want = retrieve(data, "Microsoft share of OpenAI", q, **args)
    assert [h.chunk.id for h in got] == [h.chunk.id for h in want]
    assert [h.dense_score for h in got] == pytest.approx([h.dense_score for h in want], abs=1e-6)


def test_loaded_vectors_are_not_a_second_copy(seeds_pipeline):
    """Flat and HNSW: a read-only view of the FAISS storage, not a copy (1.5 KB a passage)."""
    data = seeds_pipeline.index()
    assert isinstance(data.vectors, np.ndarray) and not data.vectors.flags.writeable
    assert not data.vectors.flags.owndata
    with pytest.raises(ValueError):
        data.vectors[0, 0] = 1.0
