"""Hostile input: any question, hostile file names and sizes, paths, and injection at the render level."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rag.ingest import safe_name
from rag.pipeline import Pipeline
from rag.types import Answer

from . import hostile_fixtures as H
from ..conftest import ROOT, SEEDS, make_settings

QUESTION_SECONDS = 5.0


# -- any question gets an Answer, in bounded time -------------------------------------------


@pytest.fixture(scope="module")
def warm_pipeline(seeds_pipeline):
    seeds_pipeline.ask("warm up")
    return seeds_pipeline


@pytest.mark.parametrize("case", sorted(H.HOSTILE_QUESTIONS))
def test_any_question_gets_an_answer_or_abstention(warm_pipeline, case):
    question = H.HOSTILE_QUESTIONS[case]
    t0 = time.perf_counter()
    a = warm_pipeline.ask(question)
    seconds = time.perf_counter() - t0
    assert isinstance(a, Answer)
    assert seconds < QUESTION_SECONDS, f"{case}: {seconds:.1f} s"
    assert a.abstained or a.answer, "either an answer or a clear abstention"
    if a.abstained:
        assert a.answer is None and not a.citations
    assert len(a.query) <= 2 * warm_pipeline.settings.max_question_chars
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", a.query), "control characters never reach the search"
    data = warm_pipeline.index()
    for c in a.citations:
        assert data.articles[c.article_id].text[c.start : c.end] == c.quote


@pytest.mark.parametrize("case", ["100k-chars", "100k-sentence", "50k-words", "chinese-999"])
def test_long_questions_are_cut_and_the_user_is_told(warm_pipeline, case):
    question = H.HOSTILE_QUESTIONS[case]
    a = warm_pipeline.ask(question)
    emb = warm_pipeline.embedder
    assert len(a.query) <= warm_pipeline.settings.max_question_chars
    assert emb.count_pieces([a.query])[0] <= emb.max_pieces, "the model reads the whole (cut) question"
    assert any("cut" in n for n in a.notes), a.notes


def test_long_question_still_finds_the_answer(warm_pipeline):
    a = warm_pipeline.ask(H.LONG_QUESTION)
    assert not a.abstained and "49%" in a.answer


@pytest.mark.parametrize("case", ["empty", "whitespace", "punctuation", "emoji", "line-separators"])
def test_wordless_questions_are_asked_for_words(warm_pipeline, case):
    a = warm_pipeline.ask(H.HOSTILE_QUESTIONS[case])
    assert a.abstained and any("words" in n for n in a.notes)


def test_hostile_history_is_bounded(warm_pipeline):
    """An API caller's history with a huge previous turn cannot blow the query up."""
    huge = " ".join(f"w{i}" for i in range(20_000))
    history = [{"role": "user", "content": huge}, None, 5, object(), "   "]
    t0 = time.perf_counter()
    a = warm_pipeline.ask("and it?", history)
    assert time.perf_counter() - t0 < QUESTION_SECONDS
    assert len(a.query) <= 2 * warm_pipeline.settings.max_question_chars


@pytest.mark.parametrize("question", [None, 12345, b"bytes?"])
def test_non_string_questions(warm_pipeline, question):
    assert isinstance(warm_pipeline.ask(question), Answer)


# -- file names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,expected",
    [
        ("../../x.txt", "x.txt"),
        ("..\\..\\evil.txt", "evil.txt"),
        ("/etc/cron.d/x.txt", "x.txt"),
        ("C:\\Windows\\x.txt", "x.txt"),
        ("sub/dir/a.md", "a.md"),
        ("  spaced.txt  ", "spaced.txt"),
        ("ünïcødé 新闻.html", "ünïcødé 新闻.html"),
    ],
)
def test_safe_name_strips_folders(name, expected):
    assert safe_name(name) == (expected, None)


@pytest.mark.parametrize(
    "name",
    [
        "x\x00.txt", "a\nb.txt", "tab\there.txt", "esc\x1b[31m.txt", "c1\x9b.txt",
        ".hidden.txt", "../.bashrc", "..", ".", "", "   ", "../", "dir/",
        "x" * 300 + ".txt", "é" * 130 + ".txt",
        "evil.sh", "x.txt.exe", "noext", "x.docx",
    ],
)
def test_safe_name_refuses(name):
    base, problem = safe_name(name)
    assert base == "" and problem and problem.startswith("refused")


# -- issue 24, reproduction 8: names that look alike, and replacing an article -------------------

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
        "\u200e", "\u200f", "\u061c"]


@pytest.mark.parametrize("char", BIDI)
def test_safe_name_refuses_bidi_controls(char):
    base, problem = safe_name(f"invoice{char}txt.exe.txt")
    assert base == "" and problem.startswith("refused: file name contains bidirectional control characters")


def test_safe_name_is_nfc():
    nfd, nfc = "cafe\u0301.txt", "caf\u00e9.txt"
    assert safe_name(nfd) == (nfc, None) and safe_name(nfc) == (nfc, None)


REPLACEMENT = ("Quokka Bureau revises the zebra index\n\nThe zebra index was revised to 9.25 points, the Quokka "
               "Bureau said on Friday.\n")


def test_replacing_an_article_needs_replace_and_is_reported(tmp_path, articles_copy, seeds_pipeline):
    index = tmp_path / "index"
    pipe = Pipeline(make_settings(articles_dir=articles_copy, index_dir=index), embedder=seeds_pipeline.embedder)
    name = "000_2ac1abd28b7d7f6d.txt"
    before = (articles_copy / name).read_bytes()
    new = tmp_path / "in" / name
    new.parent.mkdir()
    new.write_text(REPLACEMENT)
    report = pipe.add([new])
    assert (articles_copy / name).read_bytes() == before and report.replaced == []
    assert [(s.file, s.reason) for s in report.skipped] == [
        (name, f"refused: {name} is already in the articles folder with other content; replacing it needs --replace")]
    from typer.testing import CliRunner

    from rag.cli import app

    args = ["add", str(new), "--articles", str(articles_copy), "--index", str(index)]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and "needs --replace" in refused.output
    assert (articles_copy / name).read_bytes() == before
    done = CliRunner().invoke(app, [*args, "--replace"])
    assert done.exit_code == 0, done.output
    assert f"replaced (1): {name}" in done.output
    assert (articles_copy / name).read_text() == REPLACEMENT
    assert "9.25" in pipe.index().articles[next(a.id for a in pipe.index().articles.values() if a.file == name)].text


def test_nfd_and_nfc_names_give_one_file(tmp_path, articles_copy, seeds_pipeline):
    pipe = Pipeline(make_settings(articles_dir=articles_copy, index_dir=tmp_path / "index"),
                    embedder=seeds_pipeline.embedder)
    nfd, nfc = "cafe\u0301.txt", "caf\u00e9.txt"
    (articles_copy / nfd).write_text("Cafe opens on the quay\n\nA cafe opened on the quay on Monday.\n")
    upload = tmp_path / "in" / nfc
    upload.parent.mkdir()
    upload.write_text(REPLACEMENT)
    report = pipe.add([upload])
    assert report.replaced == [] and report.skipped[0].reason.startswith(f"refused: {nfd} is already in the articles")
    report = pipe.add([upload], replace=True)
    assert report.replaced == [nfc]
    looks_like_cafe = [p.name for p in articles_copy.iterdir() if "caf" in p.name]
    assert looks_like_cafe == [nfc]  # one file, in NFC
    assert [a.file for a in pipe.index().articles.values() if "caf" in a.file] == [nfc]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root (files with size and mtime; folders and links too)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns) if p.is_file() else (0, 0)
    return out


def _outside(tree: dict, *folders: str) -> dict:
    return {k: v for k, v in tree.items() if not any(k == f or k.startswith(f + "/") for f in folders)}


@pytest.fixture(scope="module")
def small_articles(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("small") / "articles"
    src.mkdir()
    shutil.copy(SEEDS / "002_e60743a29b84d78e.txt", src)
    return src


def test_pipeline_add_keeps_files_inside_the_folder(tmp_path, small_articles, seeds_pipeline):
    articles = tmp_path / "articles"
    shutil.copytree(small_articles, articles)
    (tmp_path / "sub").mkdir()
    x = tmp_path / "x.txt"
    x.write_text("Quillon report\nThe Quillon Institute has 412 researchers.\n")
    backslash = tmp_path / "..\\..\\evil.txt"  # a legal Linux file name
    backslash.write_text("Evil report\nThe evil plan was cancelled on Friday.\n")
    hidden = tmp_path / ".hidden.txt"
    hidden.write_text("Hidden\nThis should never be copied.\n")
    big = tmp_path / "big.txt"
    big.write_text("Big\n" + "Many words here. " * 200)
    settings = make_settings(articles_dir=articles, index_dir=tmp_path / "idx", max_file_bytes=2000)
    pipe = Pipeline(settings, embedder=seeds_pipeline.embedder)
    before = _tree(tmp_path)

    report = pipe.add([tmp_path / "sub" / ".." / "x.txt", backslash, hidden, big, tmp_path / "missing.txt"])

    after = _tree(tmp_path)
    assert _outside(after, "articles", "idx") == _outside(before, "articles", "idx")
    assert sorted(p.name for p in articles.iterdir()) == sorted(["002_e60743a29b84d78e.txt", "x.txt", "evil.txt"])
    reasons = {s.file: s.reason for s in report.skipped}
    assert reasons[".hidden.txt"].startswith("refused")
    assert "too large" in reasons["big.txt"]
    assert "not found" in reasons[str(tmp_path / "missing.txt")]
    assert {"x.txt", "evil.txt"} <= set(report.added)
    a = pipe.ask(H.FACT_QUESTION)
    assert a.answer == H.FACT_ANSWER and a.citations[0].file == "x.txt"


def test_pipeline_add_does_not_write_through_a_symlink(tmp_path, small_articles, seeds_pipeline):
    articles = tmp_path / "articles"
    shutil.copytree(small_articles, articles)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    (articles / "x.txt").symlink_to(outside)
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.txt").write_text("Quillon report\nThe Quillon Institute has 412 researchers.\n")
    pipe = Pipeline(make_settings(articles_dir=articles, index_dir=tmp_path / "idx"), embedder=seeds_pipeline.embedder)
    report = pipe.add([src / "x.txt"])
    assert outside.read_text() == "precious\n"
    assert any(s.file == "x.txt" and s.reason.startswith("refused") for s in report.skipped)


def test_pipeline_add_of_a_file_in_place_and_onto_a_folder(tmp_path, small_articles, seeds_pipeline):
    """Adding a file that already is in the articles folder is not an error (it was SameFileError);
    a folder in the way of the copy is reported, not raised."""
    articles = tmp_path / "articles"
    shutil.copytree(small_articles, articles)
    (articles / "002_e60743a29b84d78e.txt").chmod(0o644)
    pipe = Pipeline(make_settings(articles_dir=articles, index_dir=tmp_path / "idx"), embedder=seeds_pipeline.embedder)
    report = pipe.add([articles / "002_e60743a29b84d78e.txt"])
    assert report.added == ["002_e60743a29b84d78e.txt"] and not report.skipped
    (articles / "x.txt").mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.txt").write_text(f"Quillon report\n{H.FACT_SENTENCE}\n")
    report = pipe.add([src / "x.txt"])
    assert any(s.file == "x.txt" and "cannot be copied" in s.reason for s in report.skipped), report.skipped


def _cli(*args: str, env_extra: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_cli_add_and_build_write_only_inside_their_folders(tmp_path, small_articles):
    articles = tmp_path / "articles"
    shutil.copytree(small_articles, articles)
    index = tmp_path / "deep" / "idx"
    src = tmp_path / "src"
    src.mkdir()
    names = {
        "..\\..\\evil.txt": "Evil report\nThe evil plan was cancelled on Friday.\n",
        ".hidden.txt": "Hidden\nNever copied.\n",
        "a\nb.txt": "Newline name\nNever copied.\n",
        "esc\x1b[31m.txt": "Escape name\nNever copied.\n",
        "big.txt": "Big\n" + "Many words here. " * 400,
        "ok.md": "# Quillon report\nThe Quillon Institute has 412 researchers.\n",
        "notes.sh": "echo hi\n",
    }
    for n, text in names.items():
        (src / n).write_text(text)
    before = _tree(tmp_path)

    built = _cli("build", "--articles", str(articles), "--index", str(index), "--json")
    assert built.returncode == 0, built.stderr
    mid = _tree(tmp_path)
    assert _outside(mid, "deep") == before, "build writes only under --index"
    assert all(k.startswith("deep/idx") for k in set(mid) - set(before) if k != "deep")

    added = _cli(
        "add", *(str(src / n) for n in names), "--articles", str(articles), "--index", str(index), "--json",
        env_extra={"RAG_MAX_FILE_BYTES": "3000"},
    )
    out = added.stdout + added.stderr
    assert "Traceback" not in out
    assert added.returncode == 1, "refused names make the command fail"
    after = _tree(tmp_path)
    assert _outside(after, "articles", "deep") == _outside(before, "articles", "deep")
    assert sorted(p.name for p in articles.iterdir()) == ["002_e60743a29b84d78e.txt", "evil.txt", "ok.md"]
    assert "too large" in out and "refused" in out
    assert (src / "big.txt").exists()

    asked = _cli("ask", H.FACT_QUESTION, "--index", str(index), "--json")
    assert asked.returncode == 0 and '"answer": "412"' in asked.stdout


def test_cli_errors_are_one_line_not_tracebacks(tmp_path):
    r = _cli("build", "--articles", str(tmp_path / "nope"), "--index", str(tmp_path / "idx"))
    assert r.returncode != 0 and "Traceback" not in r.stderr and "not found" in r.stderr
    assert not (tmp_path / "nope").exists()


# -- injection at the render level (ui/render.py) ------------------------------------------------

render = pytest.importorskip("ui.render", reason="ui/render.py not available")

ALLOWED_TAGS = {"div", "span", "mark", "br", "q", "ul", "li", "dl", "dt", "dd"}
ALLOWED_ATTRS = {"class", "id", "title", "data-testid", "data-file"}
_STATIC = re.compile(r"\[\d+\]|\(not an answer\)|Searched for: ")  # the renderer's own fixed text


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag == "br":
            self.text.append("\n")

    def handle_data(self, data):
        self.text.append(data)


def _parse(markup: str) -> _Collect:
    p = _Collect()
    p.feed(markup)
    p.close()
    return p


def _assert_inert(markup: str) -> str:
    """Only the renderer's own tags and attributes; no raw Markdown/LaTeX/directive characters in text."""
    assert markup.startswith("<div") and "\n" not in markup, "one CommonMark HTML block"
    p = _parse(markup)
    for tag, attrs in p.tags:
        assert tag in ALLOWED_TAGS, f"unexpected <{tag}> in {markup[:200]}"
        for k, v in attrs:
            assert k in ALLOWED_ATTRS, f"unexpected attribute {k}"
            assert "javascript:" not in (v or "").lower()
    # Between tags, every character Markdown, remark-math or Streamlit directives react to is an entity.
    for chunk in re.split(r"<[^>]*>", markup):
        chunk = _STATIC.sub("", chunk)
        assert not re.search(r"[$*_`\[\]()!~|\\:{}]", chunk), f"raw markup character in {chunk[:120]!r}"
    return "".join(p.text)


@pytest.fixture(scope="module")
def hostile_pipeline(tmp_path_factory, seeds_pipeline):
    tmp = tmp_path_factory.mktemp("hostile")
    articles = tmp / "articles"
    shutil.copytree(SEEDS, articles)
    (articles / "quillon <script>.txt").write_text(H.hostile_article())
    pipe = Pipeline(make_settings(articles_dir=articles, index_dir=tmp / "idx"), embedder=seeds_pipeline.embedder)
    pipe.build()
    return pipe


def test_hostile_article_answer_renders_as_text(hostile_pipeline):
    a = hostile_pipeline.ask(H.FACT_QUESTION)
    assert a.answer == H.FACT_ANSWER, a
    data = hostile_pipeline.index()
    shown = []
    shown.append(_assert_inert(render.answer_card_html(a)))
    for i, c in enumerate(a.citations, 1):
        text = _assert_inert(render.citation_html(i, c, data.articles[c.article_id].text))
        shown.append(text)
        assert H.SCRIPT in text and H.IMG_ONERROR in text and H.MD_IMAGE in text  # the cited sentence, literally
        assert ":red[RED ALERT]" in text and "$x^2$" in text and "**bold claim**" in text
    if render.sources_html(a):
        shown.append(_assert_inert(render.sources_html(a)))
    shown.append(_assert_inert(render.footer_html(a, "hybrid")))
    assert "412" in shown[0]


def test_hostile_passages_after_abstention_render_as_text(hostile_pipeline):
    a = hostile_pipeline.ask("onerror javascript evil example png alert xss", threshold=1.0)
    assert a.abstained and a.passages
    joined = ""
    for i, h in enumerate(a.passages, 1):
        joined += _assert_inert(render.related_html(i, h))
    _assert_inert(render.related_header_html(len(a.passages)))
    assert "<script>alert('xss-script')</script>" in joined or "javascript:" in joined


@pytest.mark.parametrize("case", sorted(H.HOSTILE_QUESTIONS))
def test_hostile_questions_render_as_text(case):
    q = H.HOSTILE_QUESTIONS[case]
    shown = _assert_inert(render.user_text_html(q))
    _assert_inert(render.searched_for_html(q))
    # What is shown is the question minus control characters (newlines become line breaks).
    expected = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", q.replace("\r\n", "\n").replace("\r", "\n"))
    assert shown == expected


def test_full_article_document_is_inert(hostile_pipeline):
    data = hostile_pipeline.index()
    art = next(a for a in data.articles.values() if a.file == "quillon <script>.txt")
    start = art.text.index(H.FACT_SENTENCE)
    doc = render.article_document(
        art.text, [(start + 26, start + 29)], context=(start, start + len(H.FACT_SENTENCE)), title=art.title, file=art.file
    )
    body = doc.split("<article>", 1)[1].rsplit("</article>", 1)[0]
    p = _parse(body)
    assert {t for t, _ in p.tags} <= {"mark", "span", "br"}
    text = "".join(p.text)
    assert text == art.text
    for marker in H.LITERAL_MARKERS:
        assert marker in text
    # The one script of the page is the renderer's own scroll helper, after the article.
    assert doc.count("<script>") == 1 and doc.index("<script>") > doc.index("</article>")
    head = doc.split("<article>", 1)[0]
    assert "<script" not in head
    head_text = "".join(_parse(head.split("<body>", 1)[1]).text)
    assert art.file in head_text and art.title in head_text


@pytest.mark.parametrize("payload", H.HOSTILE_LINES + list(H.HOSTILE_QUESTIONS.values())[:10])
def test_md_escape_leaves_no_markdown(payload):
    """Text for st.error/st.info (file names, reasons): rendered by a CommonMark parser it is a plain paragraph."""
    from markdown_it import MarkdownIt

    escaped = render.md_escape(payload)
    out = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(escaped)
    tags = set(re.findall(r"</?([a-z0-9]+)", out))
    assert tags <= {"p"}, (payload, out)
    assert "$" not in re.sub(r"&#\d+;", "", escaped.replace("\\$", ""))


def test_article_header_is_inert(hostile_pipeline):
    art = next(a for a in hostile_pipeline.index().articles.values() if a.file == "quillon <script>.txt")
    shown = _assert_inert(render.article_header_html(art.title, art.file, len(art.text)))
    assert art.title in shown and art.file in shown


# -- uploads through ui/uploads.py (what the app's uploader calls) --------------------------------

uploads = pytest.importorskip("ui.uploads", reason="ui/uploads.py not available")


class _Upload:
    def __init__(self, name: str, data: bytes):
        self.name = name
        self._data = data

    def getvalue(self) -> bytes:
        return self._data


FACT_FILE = f"Quillon report\n{H.FACT_SENTENCE}\n".encode()


def test_upload_count_is_bounded(tmp_path, small_articles, seeds_pipeline):
    articles = tmp_path / "articles"
    shutil.copytree(small_articles, articles)
    pipe = Pipeline(make_settings(articles_dir=articles, index_dir=tmp_path / "idx", max_upload_files=3),
                    embedder=seeds_pipeline.embedder)
    before = _tree(tmp_path)
    result = uploads.add_uploads(pipe, [_Upload(f"u{i}.txt", FACT_FILE) for i in range(4)])
    assert result.error and "Too many files" in result.error
    assert _tree(tmp_path) == before, "a refused batch writes nothing"


def test_uploads_are_named_safely_and_size_bounded(tmp_path, small_articles, seeds_pipeline):
    articles = tmp_path / "articles"
    shutil.copytree(small_articles, articles)
    pipe = Pipeline(make_settings(articles_dir=articles, index_dir=tmp_path / "idx", max_file_bytes=2000),
                    embedder=seeds_pipeline.embedder)
    batch = [
        _Upload("../../../evil.txt", b"Evil report\nThe evil plan was cancelled on Friday.\n"),
        _Upload("/etc/cron.d/abs.md", b"# Absolute\nThe absolute plan was cancelled on Monday.\n"),
        _Upload("..\\..\\win.txt", FACT_FILE),
        _Upload("nul\x00.txt", FACT_FILE),
        _Upload(".hidden.txt", FACT_FILE),
        _Upload("x" * 300 + ".txt", FACT_FILE),
        _Upload("big.txt", b"Big\n" + b"Many words here. " * 200),
        _Upload("run.sh", b"rm -rf /\n"),
        _Upload("<img src=x onerror=alert(1)>.txt", b"Tag name\nA file named like a tag is fine.\n"),
    ]
    before = _tree(tmp_path)
    result = uploads.add_uploads(pipe, batch)
    after = _tree(tmp_path)
    assert result.error is None, result.error
    assert _outside(after, "articles", "idx") == _outside(before, "articles", "idx")
    names = sorted(p.name for p in articles.iterdir())
    assert names == sorted(["002_e60743a29b84d78e.txt", "evil.txt", "abs.md", "win.txt", "<img src=x onerror=alert(1)>.txt"])
    assert result.renamed == {"../../../evil.txt": "evil.txt", "/etc/cron.d/abs.md": "abs.md", "..\\..\\win.txt": "win.txt"}
    problems = {p.file: p.reason for p in result.problems}
    assert set(problems) == {"nul\x00.txt", ".hidden.txt", "x" * 300 + ".txt", "big.txt", "run.sh"}
    assert "too large" in problems["big.txt"]
    assert all(problems[n].startswith("refused") for n in problems if n != "big.txt")
    assert sorted(result.added) == sorted(["evil.txt", "abs.md", "win.txt", "<img src=x onerror=alert(1)>.txt"])
