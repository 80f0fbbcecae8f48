"""Ingest: cleaning rules, HTML, every bad-file case with its reason, safe names."""

from __future__ import annotations

import pytest

from rag.errors import IngestError
from rag.ingest import clean_text, is_furniture, load_folder, read_file, safe_name

from ..conftest import SEEDS

MB = 10 * 1024 * 1024


@pytest.mark.parametrize("line", ["Share Dialog", "<100 subscribers", "No comments yet", "Read more", "1.2K Shares"])
def test_page_furniture_lines_are_recognised(line):
    assert is_furniture(line)


@pytest.mark.parametrize(
    "line",
    [
        "Labour chooses Manchester",
        "Newcastle 2-1 Bolton",
        "Share prices fell 5% on Monday.",
        "Microsoft holds 49% of OpenAI's shares",
        "Comments from the minister",
        "Published On Mon Mar 10 2025",
    ],
)
def test_headlines_and_content_are_kept(line):
    assert not is_furniture(line)


def test_repeated_paragraphs_are_dropped_once():
    para = "Microsoft and OpenAI have a complicated relationship that is getting worse."
    text, removed = clean_text(f"Title\n{para}\nOther news here today.\n{para}\n")
    assert text.count(para) == 1
    assert removed == 1


def test_seed_with_repeated_body_and_debris_is_cleaned():
    article = read_file(SEEDS / "001_862f22007153cb7b.txt", "001_862f22007153cb7b.txt", MB).articles[0]
    raw = (SEEDS / "001_862f22007153cb7b.txt").read_text()
    first = "Concerns have surfaced about the seemingly close relationship between Microsoft and OpenAI."
    assert raw.count(first) == 2 and article.text.count(first) == 1
    for debris in ("Share Dialog", "<100 subscribers", "No comments yet"):
        assert debris in raw and debris not in article.text
    assert article.title == first


def test_crlf_and_control_characters_are_normalised(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"Title line\r\nFirst sentence here.\x07\r\n\r\n\r\nSecond one.\r\n")
    a = read_file(f, "a.txt", MB).articles[0]
    assert a.text == "Title line\nFirst sentence here.\n\nSecond one."


def test_html_text_title_and_scripts(tmp_path):
    f = tmp_path / "page.html"
    f.write_text(
        "<html><head><title>Big News</title><script>alert(1)</script></head><body>"
        "<nav>Home | Share</nav><h1>Big News</h1><p>The <b>central bank</b> raised rates to 5%.</p>"
        "<p>Markets fell.</p><footer>Subscribe</footer></body></html>"
    )
    a = read_file(f, "page.html", MB).articles[0]
    assert a.title == "Big News"
    assert "The central bank raised rates to 5%." in a.text
    assert "alert" not in a.text and "Subscribe" not in a.text


def test_bad_files_are_reported_and_good_ones_kept(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "good.txt").write_text("Good article\nThe minister resigned on Tuesday after the vote.\n")
    (folder / "empty.txt").write_text("")
    (folder / "blank.md").write_text("   \n\n  ")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (folder / "latin1.txt").write_bytes("Café news\nThe café in Zürich closed after 40 years of trading.\n".encode("latin-1"))
    (folder / "big.txt").write_text("Big\n" + "word " * 5000)
    (folder / "zcopy.txt").write_text("Good article\nThe minister resigned on Tuesday after the vote.\n")
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4 fake")
    (folder / "notes.docx").write_bytes(b"PK\x03\x04 fake")
    result = load_folder(folder, max_bytes=10_000)
    kept = {a.file for a in result.articles}
    assert kept == {"good.txt", "latin1.txt"}
    reasons = {s.file: s.reason for s in result.skipped}
    assert reasons["empty.txt"] == "empty file"
    assert reasons["blank.md"] == "empty file"
    assert reasons["binary.txt"].startswith("binary")
    assert reasons["big.txt"].startswith("too large") and "max_file_bytes" in reasons["big.txt"]
    assert reasons["zcopy.txt"].startswith("exact duplicate of good.txt")
    assert reasons["notes.pdf"].startswith("not a readable PDF")
    assert reasons["notes.docx"].startswith("unsupported file type")
    latin = next(a for a in result.articles if a.file == "latin1.txt")
    assert "Zürich" in latin.text and latin.encoding != "utf-8"
    assert any("latin1.txt: not UTF-8" in w for w in result.warnings)
    good = next(a for a in result.articles if a.file == "good.txt")
    assert good.aliases == ["zcopy.txt"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(IngestError, match="not found"):
        load_folder(tmp_path / "nope", MB)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("../../etc/evil.txt", "evil.txt"),
        ("..\\..\\evil.md", "evil.md"),
        ("/abs/path/news.html", "news.html"),
        ("ok.txt", "ok.txt"),
    ],
)
def test_safe_name_strips_directories(name, expected):
    assert safe_name(name) == (expected, None)


@pytest.mark.parametrize("name", [".hidden.txt", "a\x00b.txt", "x" * 300 + ".txt", "evil.exe", "..", ""])
def test_safe_name_refuses(name):
    base, problem = safe_name(name)
    assert base == "" and problem and problem.startswith("refused")
