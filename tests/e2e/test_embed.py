"""Both embedder backends against sentence-transformers on the real seed chunks; ONNX export cache."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embed import OnnxEmbedder, TorchEmbedder, load_embedder, onnx_export_path
from rag.errors import ModelNotFoundError


@pytest.fixture(scope="module")
def seed_chunks(seeds_pipeline):
    return seeds_pipeline.index().chunks


@pytest.fixture(scope="module")
def reference(seed_chunks, seeds_pipeline):
    """sentence-transformers' own vectors for the seed chunks (the model loaded by the pipeline)."""
    from sentence_transformers import SentenceTransformer

    emb = seeds_pipeline.embedder
    st = SentenceTransformer(str(emb.model_path), device="cpu", local_files_only=True)
    return st, st.encode([c.text for c in seed_chunks], normalize_embeddings=True)


@pytest.fixture(scope="module")
def onnx_embedder(seeds_settings):
    return OnnxEmbedder(seeds_settings.model_name, cache_dir=seeds_settings.cache_dir)


def _max_deviation(vecs: np.ndarray, ref: np.ndarray) -> float:
    return float(1.0 - (vecs * ref).sum(axis=1).min())


def test_torch_backend_matches_sentence_transformers(seeds_pipeline, seed_chunks, reference):
    emb = seeds_pipeline.build_embedder  # passages: torch (bf16 where the CPU has it)
    assert emb.backend == "torch"
    assert seeds_pipeline.embedder.backend == "onnx"  # questions: onnx, no torch when serving
    vecs = emb.encode([c.text for c in seed_chunks])
    assert vecs.shape == reference[1].shape
    assert _max_deviation(vecs, reference[1]) < 1e-4


def test_onnx_backend_matches_sentence_transformers(onnx_embedder, seed_chunks, reference):
    vecs = onnx_embedder.encode([c.text for c in seed_chunks])
    assert _max_deviation(vecs, reference[1]) < 1e-4


def test_stored_index_vectors_match_sentence_transformers(seeds_pipeline, reference):
    """What the build stored (via count_pieces' cached tokens) is what sentence-transformers gives."""
    assert _max_deviation(seeds_pipeline.index().vectors, reference[1]) < 1e-4


def test_query_vectors_match_sentence_transformers(seeds_pipeline, onnx_embedder, reference):
    st = reference[0]
    q = "What share of OpenAI does Microsoft hold?"
    ref = st.encode([q], normalize_embeddings=True)
    for emb in (seeds_pipeline.embedder, onnx_embedder):
        assert _max_deviation(emb.encode_query(q)[None], ref) < 1e-4


def test_counted_tokens_are_reused_and_give_the_same_vectors(onnx_embedder, seed_chunks):
    texts = [c.text for c in seed_chunks[:6]]
    onnx_embedder.clear_cache()
    fresh = onnx_embedder.encode(texts)
    counts = onnx_embedder.count_pieces(texts)
    assert all(n <= onnx_embedder.max_pieces for n in counts)
    assert all(t in onnx_embedder._cache for t in texts)
    reused = onnx_embedder.encode(texts)
    assert not any(t in onnx_embedder._cache for t in texts)  # consumed
    np.testing.assert_array_equal(fresh, reused)


def test_text_over_the_limit_is_truncated_like_sentence_transformers(onnx_embedder, reference):
    long = " ".join(["The quarterly revenue of the company rose sharply again."] * 60)
    assert onnx_embedder.count_pieces([long])[0] > onnx_embedder.max_pieces
    ref = reference[0].encode([long], normalize_embeddings=True)
    assert _max_deviation(onnx_embedder.encode([long]), ref) < 1e-4


def test_span_vectors_match_what_the_build_stored(onnx_embedder, seeds_pipeline, seed_chunks):
    """Sentence vectors pooled by the onnx backend equal those the (torch) build stored."""
    data = seeds_pipeline.index()
    texts = [c.text for c in seed_chunks[:4]]
    spans = [[(a - c.start, b - c.start) for a, b in c.sentences] for c in seed_chunks[:4]]
    _, sent = onnx_embedder.encode_with_spans(texts, spans)
    for i, vecs in enumerate(sent):
        stored = data.chunk_sentence_vectors(i)
        assert vecs.shape == stored.shape == (len(spans[i]), onnx_embedder.dim)
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
        assert float(1.0 - (vecs * stored).sum(axis=1).min()) < 1e-4


def test_bf16_precision_stays_within_1e_4(seeds_settings, seed_chunks, reference):
    emb = TorchEmbedder(seeds_settings.model_name, precision="bf16")
    texts = [c.text for c in seed_chunks[:8]]
    assert _max_deviation(emb.encode(texts), reference[1][:8]) < 1e-4


def test_onnx_export_is_cached(seeds_settings, onnx_embedder):
    path = onnx_export_path(onnx_embedder.model_path, seeds_settings.cache_dir, False)
    assert path == onnx_embedder.onnx_path and path.exists()
    mtime = path.stat().st_mtime_ns
    again = OnnxEmbedder(seeds_settings.model_name, cache_dir=seeds_settings.cache_dir)
    assert again.export_seconds is None  # nothing exported
    assert path.stat().st_mtime_ns == mtime
    assert not list(path.parent.glob("*.tmp*")) and not list(path.parent.glob("*.raw*"))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_unknown_model_names_the_setting(backend, tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        load_embedder("no-such-model-anywhere-xyz", backend, cache_dir=tmp_path)
    assert "model_name" in str(err.value) and "RAG_MODEL_NAME" in str(err.value)
    assert not list(tmp_path.rglob("*.onnx"))
