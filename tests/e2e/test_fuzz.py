"""Fuzzing the parsers and the index loader (issue 24): whatever the bytes, no traceback, one clear
reason for what cannot be used, and nothing lost from the good records around the bad ones.

Example counts are bounded (``max_examples``, no deadline) so that the file runs in CI in well
under a minute; Hypothesis keeps the failing examples it finds in its database.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.errors import IndexCorruptError, RagError
from rag.feeds import FeedError, read_feed
from rag.ingest import UnusableFile, read_file

from .news_fixtures import PAGES, pdf_bytes

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MB = 1024 * 1024

# Words that survive text cleaning: a good record's text is kept whole.
word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéüß", min_size=3, max_size=10)
good_text = st.lists(word, min_size=3, max_size=12).map(lambda ws: "Story " + " ".join(ws) + ".")
junk = st.binary(max_size=200)


def _flip(data: bytes, where: int, bit: int) -> bytes:
    b = bytearray(data)
    b[where % len(b)] ^= 1 << bit
    return bytes(b)


def _read(tmp: Path, name: str, data: bytes):
    path = tmp / name
    path.write_bytes(data)
    try:
        return read_file(path, name, MB, MB)
    except UnusableFile as exc:
        assert exc.reason and "\n" not in exc.reason
        return None


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# -- HTML ---------------------------------------------------------------------------------------

@FUZZ
@given(where=st.integers(0, 10**6), bit=st.integers(0, 7), cut=st.integers(0, 10**6), noise=junk)
def test_html_any_damage_is_an_article_or_one_reason(tmp, where, bit, cut, noise):
    page = (PAGES / "daily_ledger.html").read_bytes()
    data = _flip(page, where, bit)[: max(1, cut % (len(page) + 1))] + noise
    got = _read(tmp, "page.html", data)
    assert got is None or (len(got.articles) == 1 and got.articles[0].text.strip())


# -- JSONL --------------------------------------------------------------------------------------

@FUZZ
@given(records=st.lists(st.tuples(good_text, st.booleans(), junk), min_size=1, max_size=8))
def test_jsonl_bad_lines_lose_no_good_record(tmp, records):
    lines, good = [], set()
    for text, latin1, garbage in records:
        line = json.dumps({"text": text}, ensure_ascii=False)
        try:
            lines.append(line.encode("latin-1" if latin1 else "utf-8"))
        except UnicodeEncodeError:  # ß and friends are in Latin-1; anything else stays UTF-8
            lines.append(line.encode("utf-8"))
        good.add(text)
        lines.append(garbage.replace(b"\n", b" "))  # a bad (or blank) line between good ones
    got = _read(tmp, "export.jsonl", b"\n".join(lines) + b"\n")
    assert got is not None
    assert good <= {a.text for a in got.articles}
    for s in got.skipped:  # every bad line is named by its number
        assert s.file.startswith("export.jsonl:") or s.reason.startswith("exact duplicate")


# -- CSV ----------------------------------------------------------------------------------------

bad_row = st.one_of(
    st.just('"' + "x" * 140_000 + '",over the limit'),  # csv's field limit
    st.just("one,two,three,four"),  # too many fields
    st.just(","),  # empty text
    st.text(alphabet="abc \t;", max_size=20).map(lambda s: s + ",,,"),
)


@FUZZ
@given(rows=st.lists(st.tuples(good_text, bad_row), min_size=1, max_size=6))
def test_csv_bad_rows_lose_no_good_row(tmp, rows):
    lines, good = ["text,title"], set()
    for text, bad in rows:
        lines.append(f'"{text}",A title')
        good.add(text)
        lines.append(bad)
    got = _read(tmp, "export.csv", ("\n".join(lines) + "\n").encode())
    assert got is not None
    assert good <= {a.text.split("\n")[-1] for a in got.articles}


@FUZZ
@given(data=st.binary(max_size=2000))
def test_csv_and_jsonl_any_bytes_no_traceback(tmp, data):
    for name in ("any.csv", "any.jsonl"):
        got = _read(tmp, name, data)
        assert got is None or got.articles


# -- PDF ----------------------------------------------------------------------------------------

PDF = pdf_bytes([["Harbour council report", "The council approved the harbour budget on Monday."]])


@FUZZ
@given(where=st.integers(0, 10**6), bit=st.integers(0, 7), cut=st.integers(0, 10**6))
def test_pdf_any_damage_is_an_article_or_one_reason(tmp, where, bit, cut):
    data = _flip(PDF, where, bit)[: max(1, cut % (len(PDF) + 50))]
    got = _read(tmp, "doc.pdf", data)
    assert got is None or got.articles[0].text.strip()


# -- feed XML -----------------------------------------------------------------------------------

RSS = ('<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
       "<item><title>A</title><link>https://news.example/a</link></item>"
       "<item><title>B</title><link>https://news.example/b</link></item></channel></rss>").encode()


@FUZZ
@given(where=st.integers(0, 10**6), bit=st.integers(0, 7), noise=junk)
def test_feed_xml_any_damage_is_entries_or_one_reason(tmp, where, bit, noise):
    path = tmp / "feed.xml"
    path.write_bytes(_flip(RSS, where, bit) + noise)
    try:
        title, entries = read_feed(str(path), timeout=1, max_bytes=MB)
    except FeedError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(entries, list)


# -- the index loader ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(seeds_pipeline):
    vdir = seeds_pipeline.index().path
    return vdir.parent.parent, sorted(p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file())


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 100), where=st.integers(0, 10**9), bit=st.integers(0, 7), header=st.booleans())
def test_index_byte_flip_anywhere_is_one_line_or_a_sound_load(tmp_path_factory, built, which, where, bit, header):
    from rag.config import Settings
    from rag.index import IndexStore

    root, files = built
    index = tmp_path_factory.mktemp("flip") / "index"
    shutil.copytree(root, index)
    vdir = index / "versions" / (index / "CURRENT").read_text().strip()
    rel = files[which % len(files)]
    data = (vdir / rel).read_bytes()
    if header:  # the first 128 bytes: .npy headers, JSON keys, FAISS headers
        where %= min(128, len(data))
    (vdir / rel).write_bytes(_flip(data, where, bit))
    store = IndexStore(index)
    try:
        loaded = store.load(Settings().model_name)
    except RagError as exc:  # IndexCorruptError, or IndexIncompatibleError for a flipped format/model
        assert "\n" not in str(exc) and "rag build --full" in str(exc)
    else:
        # Only files loading does not hash may load; verify still names them.
        assert rel in ("sentences.npy", "bm25_tokens.jsonl"), rel
        assert loaded.sent_vectors.shape[0] == loaded.sent_offsets[-1]
        with pytest.raises(IndexCorruptError, match=rel.replace(".", r"\.")):
            store.verify()
    finally:
        shutil.rmtree(index.parent, ignore_errors=True)
