"""The chat app (ui/app.py) through Streamlit's AppTest: real model, real index, real pipeline.

Upload helpers (ui/uploads.py) are also tested directly, without Streamlit.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
APP = ROOT / "ui" / "app.py"

from streamlit.testing.v1 import AppTest  # noqa: E402

GOOD_ARTICLE = (
    "Quokka Bureau reports record zebra index\n\n"
    "The zebra quokka index rose to 7.5 points in March 2031, the Quokka Bureau said on Tuesday. "
    "The bureau's chief statistician, Mira Hollowell, called the rise unexpected.\n"
)


@pytest.fixture(scope="module")
def built_index(tmp_path_factory):
    """An index over the seeds, built once for this module (the app never builds it)."""
    from rag.config import Settings
    from rag.pipeline import Pipeline

    root = tmp_path_factory.mktemp("app-index")
    Pipeline(Settings(articles_dir=ROOT / "seeds", index_dir=root / "index")).build()
    return root / "index"


def start(monkeypatch, index_dir: Path, articles_dir: Path, **env) -> AppTest:
    monkeypatch.setenv("RAG_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("RAG_ARTICLES_DIR", str(articles_dir))
    for k, v in env.items():
        monkeypatch.setenv(k, str(v))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def app(monkeypatch, built_index):
    return start(monkeypatch, built_index, ROOT / "seeds")


@pytest.fixture
def writable_app(monkeypatch, built_index, tmp_path):
    """The app over a private copy of the seeds and of the built index (uploads change both)."""
    articles = tmp_path / "articles"
    shutil.copytree(ROOT / "seeds", articles)
    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    at = start(monkeypatch, index, articles)
    return at, articles, index


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def last_assistant(at: AppTest):
    msgs = [m for m in at.chat_message if m.name == "assistant"]
    assert msgs, "no assistant message"
    return msgs[-1]


def html_of(block) -> str:
    return "\n".join(m.value for m in block.markdown)


def sidebar_html(at: AppTest) -> str:
    return "\n".join(m.value for m in at.sidebar.markdown)


def button(block, label: str):
    found = [b for b in block.button if b.label == label]
    assert found, f"no button {label!r}: {[b.label for b in block.button]}"
    return found[0]


# -- conversation ---------------------------------------------------------------------------


def test_start_shows_index_and_settings(app):
    info = sidebar_html(app)
    assert "rag-index" in info
    assert "<dd>5</dd>" in info  # five seed articles
    assert "all&#45;MiniLM&#45;L6&#45;v2" in info
    from rag.config import Settings

    s = Settings()
    assert app.sidebar.slider(key="top_k").value == s.top_k
    from rag.span_model import SpanModel

    # unset, the threshold is the one calibrated with the reader at the precision it is served
    assert s.abstain_threshold is None and s.reader_int8
    served = SpanModel(s.reader_dir, int8=s.reader_int8, cache_dir=s.cache_dir)
    assert served.precision == "int8"
    assert app.sidebar.slider(key="threshold").value == pytest.approx(served.threshold)
    assert app.sidebar.selectbox(key="mode").value == s.retrieval_mode
    assert app.sidebar.selectbox(key="mode").options == ["Hybrid (meaning + keywords)", "Dense (meaning only)",
                                                         "BM25 (keywords only)"]
    assert not app.error


def test_settings_defaults_come_from_env(monkeypatch, built_index):
    at = start(monkeypatch, built_index, ROOT / "seeds", RAG_TOP_K=3, RAG_RETRIEVAL_MODE="bm25",
               RAG_ABSTAIN_THRESHOLD=0.3)
    assert at.sidebar.slider(key="top_k").value == 3
    assert at.sidebar.slider(key="threshold").value == pytest.approx(0.3)
    assert at.sidebar.selectbox(key="mode").value == "bm25"


def test_answer_with_highlighted_citation(app):
    ask(app, "What share of OpenAI does Microsoft hold?")
    users = [m for m in app.chat_message if m.name == "user"]
    assert "What share of OpenAI does Microsoft hold?" in html_of(users[-1])
    body = html_of(last_assistant(app))
    assert 'class="rag-card rag-answer"' in body
    card = next(m.value for m in last_assistant(app).markdown if "rag-answer" in m.value)
    assert "49%" in card
    assert "confidence" in card.lower() and ("High" in card or "Medium" in card or "Low" in card)
    assert '<mark class="rag-hl">49%</mark>' in body
    assert "[1]" in body
    assert "000&#95;2ac1abd28b7d7f6d&#46;txt" in body or "002&#95;e60743a29b84d78e&#46;txt" in body
    assert "rag-sources" in body
    assert [b.label for b in last_assistant(app).button].count("Open article") >= 1
    assert "Searched for" not in body  # nothing rewritten
    assert not app.error


def test_sources_list_every_cited_article(app):
    ask(app, "What share of OpenAI does Microsoft hold?")
    answer = app.session_state["turns"][-1]["answer"]
    sources = next(m.value for m in last_assistant(app).markdown if "rag-sources" in m.value)
    for c in answer.citations:
        assert c.file.replace("_", "&#95;").replace(".", "&#46;") in sources
    for s in answer.sources:
        assert f"{s.passages} passage" in sources


def test_dollar_amounts_are_escaped_not_latex(app):
    ask(app, "How much revenue did OpenAI make in 2022?")
    body = html_of(last_assistant(app))
    assert "&#36;" in body and "million" in body  # the answer (a dollar amount) and its quote
    assert "$" not in body


def test_abstention(app):
    ask(app, "What is the boiling point of mercury?")
    body = html_of(last_assistant(app))
    assert "rag-abstain" in body
    assert "answer this" in body
    assert "Related passages (not an answer)" in body
    assert body.count('class="rag-related"') >= 1
    assert "rag-answer" not in body
    assert "<mark" not in body


def test_follow_up_shows_searched_query_and_answers(app):
    ask(app, "How much revenue did OpenAI make in 2022?")
    ask(app, "And how much did it lose?")
    turns = app.session_state["turns"]
    assert len(turns) == 2
    second = turns[1]["answer"]
    assert second.query != second.question  # the pipeline rewrote it with the previous turn
    body = html_of(last_assistant(app))
    assert "Searched for:" in body
    assert "OpenAI" in body.split("Searched for:")[1]
    assert "rag-answer" in body


def test_new_conversation_clears_history(app):
    ask(app, "What share of OpenAI does Microsoft hold?")
    assert len(app.session_state["turns"]) == 1
    button(app.sidebar, "New conversation").click().run()
    assert app.session_state["turns"] == []
    assert not [m for m in app.chat_message]
    # and the next question is not a follow-up of the cleared one
    ask(app, "And how much did it lose?")
    assert "Searched for" not in html_of(last_assistant(app))


def test_settings_are_passed_to_ask(app):
    app.sidebar.slider(key="top_k").set_value(2).run()
    app.sidebar.selectbox(key="mode").set_value("bm25").run()
    ask(app, "What is the boiling point of mercury?")
    answer = app.session_state["turns"][-1]["answer"]
    assert len(answer.passages) <= 2
    assert "bm25" in html_of(last_assistant(app))


def test_threshold_one_makes_everything_abstain(app):
    app.sidebar.slider(key="threshold").set_value(1.0).run()
    ask(app, "What share of OpenAI does Microsoft hold?")
    assert "rag-abstain" in html_of(last_assistant(app))


def test_open_article_dialog(app):
    ask(app, "What share of OpenAI does Microsoft hold?")
    button(last_assistant(app), "Open article").click().run()
    assert not app.exception
    assert not app.error
    heads = [m.value for m in app.markdown if "rag-art-head" in m.value]
    assert heads, "the article dialog did not open"
    assert "&#46;txt" in heads[0] and "characters" in heads[0]


def test_hostile_question_text_is_escaped(app):
    ask(app, "<script>alert(1)</script> $x$ **bold**?")
    user = [m for m in app.chat_message if m.name == "user"][-1]
    text = html_of(user)
    assert "<script" not in text and "$" not in text and "**" not in text
    assert "&#60;script&#62;" in text


def test_empty_question_gives_a_note_not_an_error(app):
    ask(app, "???")
    assert not app.exception
    body = "\n".join(i.value for i in last_assistant(app).info)
    assert "question" in body.lower()


def test_missing_index_is_built_at_start(monkeypatch, tmp_path):
    articles = tmp_path / "articles"
    shutil.copytree(ROOT / "seeds", articles)
    at = start(monkeypatch, tmp_path / "new-index", articles)
    assert (tmp_path / "new-index" / "CURRENT").exists()
    assert "<dd>5</dd>" in sidebar_html(at)


def test_no_usable_articles_is_a_clear_error(monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    at = start(monkeypatch, tmp_path / "idx", empty)
    assert at.error, "expected an st.error"
    assert "No usable articles" in at.error[0].value
    assert not at.exception


def test_invalid_setting_is_a_clear_error(monkeypatch, built_index):
    at = start(monkeypatch, built_index, ROOT / "seeds", RAG_TOP_K=0)
    assert at.error and "Invalid setting" in at.error[0].value
    assert not at.exception


# -- uploads through the app ------------------------------------------------------------------


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.sidebar.file_uploader[0].set_value([(name, data, "text/plain") for name, data in files]).run()
    assert not at.exception, at.exception
    button(at.sidebar, "Add to index").click().run()
    assert not at.exception, at.exception
    return at


def test_upload_good_file_is_indexed(writable_app):
    at, articles, index = writable_app
    assert "<dd>5</dd>" in sidebar_html(at)
    upload(at, ("quokka.txt", GOOD_ARTICLE.encode()))
    assert (articles / "quokka.txt").is_file()
    assert "<dd>6</dd>" in sidebar_html(at)  # article count +1
    assert any("quokka" in s.value and "Added" in s.value for s in at.sidebar.success)
    assert not at.sidebar.error
    ask(at, "What did the zebra quokka index rise to?")
    body = html_of(last_assistant(at))
    assert "rag-answer" in body and "quokka&#46;txt" in body
    assert "<mark" in body and "7&#46;5" in body


@pytest.mark.parametrize(
    "name,data,reason",
    [("binary.txt", bytes(range(256)) * 8, "binary"), ("empty.txt", b"", "empty")],
)
def test_upload_bad_file_has_a_clear_message(writable_app, name, data, reason):
    at, articles, index = writable_app
    upload(at, (name, data))
    errors = [e.value for e in at.sidebar.error]
    assert any(name.replace(".", r"\.") in e and reason in e for e in errors), errors
    assert "<dd>5</dd>" in sidebar_html(at)  # nothing new indexed


def test_upload_replacing_an_article_asks_first(writable_app):
    """Issue 24, reproduction 8: an upload with an existing article's name replaces nothing until
    the user says Replace; then the report says replaced."""
    at, articles, index = writable_app
    name = "001_862f22007153cb7b.txt"
    before = (articles / name).read_bytes()
    upload(at, (name, GOOD_ARTICLE.encode()), ("quokka.txt", b"Quokka news\n\nAnother quokka story entirely."))
    assert (articles / name).read_bytes() == before
    assert (articles / "quokka.txt").is_file()  # the others are added at once
    warnings = [w.value for w in at.sidebar.warning]
    assert any("Already in the articles folder" in w and name.replace(".", r"\.").replace("_", r"\_") in w
               for w in warnings), warnings
    button(at.sidebar, "Keep the existing").click().run()
    assert not at.exception and (articles / name).read_bytes() == before and not at.sidebar.warning
    upload(at, (name, GOOD_ARTICLE.encode()))
    button(at.sidebar, "Replace").click().run()
    assert not at.exception, at.exception
    assert (articles / name).read_text() == GOOD_ARTICLE
    assert any(s.value.startswith("Replaced 1 article") for s in at.sidebar.success), [s.value for s in at.sidebar.success]


def test_upload_traversal_name_stays_inside_the_folder(writable_app, tmp_path):
    at, articles, index = writable_app
    upload(at, ("../evil.txt", GOOD_ARTICLE.encode()), ("../../evil2.txt", b"Another story about zebras."))
    assert not (articles.parent / "evil.txt").exists()
    assert not (articles.parent.parent / "evil2.txt").exists()
    assert not (index / "evil.txt").exists()
    # safe_name drops the folder parts: the files land inside the articles folder, and the
    # user is told under which name
    inside = {p.name for p in articles.iterdir()}
    assert {"evil.txt", "evil2.txt"} <= inside
    infos = [m.value for m in at.sidebar.info]
    assert any(r"\.\./evil\.txt was saved as evil\.txt" in m for m in infos), infos
    for p in articles.rglob("*"):
        assert p.resolve().is_relative_to(articles.resolve())


def test_upload_refused_name_is_reported(writable_app):
    at, articles, index = writable_app
    upload(at, (".hidden.txt", GOOD_ARTICLE.encode()))
    errors = [e.value for e in at.sidebar.error]
    assert any("hidden" in e for e in errors), errors
    assert not (articles / ".hidden.txt").exists()


def test_too_many_files_are_refused(monkeypatch, built_index, tmp_path):
    articles = tmp_path / "articles"
    shutil.copytree(ROOT / "seeds", articles)
    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    at = start(monkeypatch, index, articles, RAG_MAX_UPLOAD_FILES=2)
    upload(at, *[(f"f{i}.txt", GOOD_ARTICLE.encode()) for i in range(3)])
    errors = [e.value for e in at.sidebar.error]
    assert any("Too many files" in e for e in errors), errors
    assert not (articles / "f0.txt").exists()


# -- ui/uploads.py directly ------------------------------------------------------------------


@dataclass
class FakeUpload:
    name: str
    data: bytes

    def getvalue(self) -> bytes:
        return self.data


def test_save_uploads_never_writes_outside(tmp_path):
    from ui.uploads import save_uploads

    folder = tmp_path / "up"
    ups = [
        FakeUpload("../evil.txt", b"x"),
        FakeUpload("..\\..\\win.md", b"x"),
        FakeUpload("/etc/passwd.txt", b"x"),
        FakeUpload(".hidden.txt", b"x"),
        FakeUpload("..", b"x"),
        FakeUpload("a\x00b.txt", b"x"),
        FakeUpload("tool.exe", b"x"),
        FakeUpload("big.txt", b"x" * 11),
        FakeUpload("ok.html", b"<p>x</p>"),
        FakeUpload("OK.html", b"<p>y</p>"),
    ]
    paths, problems, renamed = save_uploads(ups, folder, max_bytes=10)
    assert sorted(p.name for p in paths) == ["evil.txt", "ok.html", "passwd.txt", "win.md"]
    assert all(p.parent == folder.resolve() for p in paths)
    assert renamed == {"../evil.txt": "evil.txt", "..\\..\\win.md": "win.md", "/etc/passwd.txt": "passwd.txt"}
    reasons = {p.file: p.reason for p in problems}
    assert "hidden" in reasons[".hidden.txt"]
    assert "empty file name" in reasons[".."]
    assert "control" in reasons["a\x00b.txt"]
    assert "unsupported" in reasons["tool.exe"]
    assert "too large" in reasons["big.txt"]
    assert "also named" in reasons["OK.html"]
    assert not (tmp_path / "evil.txt").exists()
    assert {p.name for p in tmp_path.iterdir()} == {"up"}


def test_add_uploads_reports_only_uploaded_files(tmp_path, built_index):
    from rag.config import Settings
    from rag.pipeline import Pipeline
    from ui.uploads import add_uploads

    articles = tmp_path / "articles"
    shutil.copytree(ROOT / "seeds", articles)
    (articles / "junk.txt").write_bytes(b"")  # a bad file already in the folder: not ours to report
    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    pipe = Pipeline(Settings(articles_dir=articles, index_dir=index))
    seen = []
    result = add_uploads(
        pipe,
        [FakeUpload("new.txt", GOOD_ARTICLE.encode()), FakeUpload("bin.txt", bytes(range(256)))],
        progress=lambda stage, done, total: seen.append(stage),
    )
    assert result.error is None
    assert result.added == ["new.txt"]
    assert [p.file for p in result.problems] == ["bin.txt"]
    assert "binary" in result.problems[0].reason
    assert result.n_articles == 6
    assert {"read", "embed", "write"} <= set(seen)
    # the same file again: unchanged, nothing re-embedded
    again = add_uploads(pipe, [FakeUpload("new.txt", GOOD_ARTICLE.encode())])
    assert again.unchanged == ["new.txt"] and not again.problems
    # a changed file under the same name: held until confirmed (issue 24), then replaced
    newer = [FakeUpload("new.txt", (GOOD_ARTICLE + "More text here.\n").encode())]
    changed = add_uploads(pipe, newer)
    assert [h.name for h in changed.held] == ["new.txt"] and not changed.updated and not changed.replaced
    assert (articles / "new.txt").read_text() == GOOD_ARTICLE
    replaced = add_uploads(pipe, newer, replace=True)
    assert replaced.replaced == ["new.txt"] and not replaced.updated and not replaced.problems
    assert (articles / "new.txt").read_text().endswith("More text here.\n")


def test_add_uploads_turns_library_errors_into_messages(tmp_path):
    from ui.uploads import add_uploads
    from rag.errors import BuildLockedError

    class Locked:
        settings = type("S", (), {"max_upload_files": 5, "max_file_bytes": 100, "articles_dir": tmp_path})()

        def add(self, paths, progress=None, wait=0.0, replace=False):
            raise BuildLockedError("Another build is running; try again in a minute.")

    r = add_uploads(Locked(), [FakeUpload("a.txt", b"text")])
    assert r.error and "Another build" in r.error


def test_feedback_marks_land_in_the_gold_file(monkeypatch, built_index, tmp_path):
    """Mark one answer correct, one wrong with the right words typed, ask again: one line per question,
    and the question asked again gets the marked words (then, marked "no answer", an abstention)."""
    import json

    fb = tmp_path / "feedback_qa.jsonl"
    at = start(monkeypatch, built_index, ROOT / "seeds", RAG_FEEDBACK_FILE=fb)
    ask(at, "Which chatbot did OpenAI build for Salesforce?")
    at.button(key=f"fb-ok-{last_turn_id(at)}").click().run()
    assert not at.exception, at.exception
    lines = [json.loads(x) for x in fb.read_text().splitlines()]
    assert [(x["question"], x["answers"], x["feedback"]["verdict"]) for x in lines] == [
        ("Which chatbot did OpenAI build for Salesforce?", ["Einstein GPT"], "correct")]

    ask(at, "How much revenue did OpenAI make in 2022?")
    tid = last_turn_id(at)
    at.button(key=f"fb-wrong-{tid}").click().run()
    at.text_input(key=f"fb-text-{tid}").input("$36 million").run()  # not in the articles: refused, nothing written
    at.button(key=f"fb-save-{tid}").click().run()
    assert any("not written like that" in e.value for e in at.error)
    assert len(fb.read_text().splitlines()) == 1
    at.text_input(key=f"fb-text-{tid}").input("$35 million").run()
    at.button(key=f"fb-save-{tid}").click().run()
    rec = json.loads(fb.read_text().splitlines()[-1])
    assert rec["answers"] == ["$35 million"] and rec["feedback"]["verdict"] == "wrong"
    span = rec["feedback"]["gold_span"]
    assert (ROOT / "seeds" / span["article"]).read_text()[span["start"] : span["end"]] == "$35 million"

    ask(at, "How much revenue did OpenAI make in 2022?")  # asked again: the marked words, highlighted
    body = html_of(last_assistant(at))
    card = next(m.value for m in last_assistant(at).markdown if "rag-answer" in m.value)
    assert "&#36;35 million" in card and 'data-testid="rag-corrected"' in card and "confidence" not in card.lower()
    assert '<mark class="rag-hl">&#36;35 million</mark>' in body
    assert any("Answered from a correction marked on" in i.value for i in last_assistant(at).info)
    at.button(key=f"fb-none-{last_turn_id(at)}").click().run()  # marked again: replaced
    lines = [json.loads(x) for x in fb.read_text().splitlines()]
    assert len(lines) == 2 and lines[-1]["answers"] == [] and lines[-1]["feedback"]["verdict"] == "no_answer"
    ask(at, "How much revenue did OpenAI make in 2022?")
    card = next(m.value for m in last_assistant(at).markdown if "rag-abstain" in m.value)
    assert "marked “no answer in the articles” in the chat" in card


def last_turn_id(at: AppTest) -> int:
    return at.session_state["turns"][-1]["id"]


def review_page(monkeypatch, index_dir: Path, feedback_file: Path) -> AppTest:
    """The Feedback review page over the seeds index and ``feedback_file``, run once."""
    monkeypatch.setenv("RAG_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("RAG_ARTICLES_DIR", str(ROOT / "seeds"))
    monkeypatch.setenv("RAG_FEEDBACK_FILE", str(feedback_file))
    at = AppTest.from_file(str(ROOT / "ui" / "pages" / "1_Feedback_review.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_feedback_review_page_filters_deletes_and_runs_the_eval(monkeypatch, built_index, tmp_path):
    from rag.config import Settings
    from rag.pipeline import Pipeline

    fb = tmp_path / "feedback_qa.jsonl"
    pipe = Pipeline(Settings(articles_dir=ROOT / "seeds", index_dir=built_index, feedback_file=fb))
    pipe.feedback(pipe.ask("Which chatbot did OpenAI build for Salesforce?"), "correct")
    pipe.feedback(pipe.ask("How much revenue did OpenAI make in 2022?"), "wrong", typed="$35 million")
    pipe.feedback(pipe.ask("Who won the 1998 football World Cup?"), "no_answer")
    at = review_page(monkeypatch, built_index, fb)
    assert "3 of 3 marks" in at.caption[1].value
    at.radio(key="filter").set_value("wrong").run()
    assert "1 of 3 marks" in at.caption[1].value
    at.radio(key="filter").set_value("all").run()
    first = feedback_lines(fb)[0]["id"]
    at.button(key=f"del-{first}").click().run()
    assert len(feedback_lines(fb)) == 2 and "2 of 2 marks" in at.caption[1].value
    at.button(key="run-eval").click().run()
    assert not at.exception, at.exception
    assert [m.label for m in at.metric] == ["Questions", "Answer F1", "Contains", "Abstention F1"]
    assert at.metric[0].value == "2"


def test_feedback_review_page_says_which_marks_the_chat_answers_from(monkeypatch, built_index, tmp_path):
    from rag.config import Settings
    from rag.feedback import FeedbackStore
    from rag.pipeline import Pipeline

    fb = tmp_path / "feedback_qa.jsonl"
    pipe = Pipeline(Settings(articles_dir=ROOT / "seeds", index_dir=built_index, feedback_file=fb))
    pipe.feedback(pipe.ask("How much revenue did OpenAI make in 2022?"), "wrong", typed="$35 million")
    rec = FeedbackStore(fb).lines()[0]
    span = rec["feedback"]["gold_span"]
    gone = {**rec, "id": "f-gone", "question": "What was removed?", "answers": ["words never written"],
            "feedback": {**rec["feedback"], "gold_span": {**span, "text": "words never written"}}}
    FeedbackStore(fb)._write([rec, gone])
    at = review_page(monkeypatch, built_index, fb)
    caps = [c.value.replace("\\", "") for c in at.caption]  # Markdown-escaped text, read plain
    assert sum("this question gets this mark's answer" in c for c in caps) == 1
    assert any(c.startswith("Not used by the chat: its article") and "no longer in it" in c for c in caps), caps
    assert any("reader alone" in c for c in caps)


def test_feedback_review_page_renders_no_user_markup(monkeypatch, built_index, tmp_path):
    """Issue 24, reproduction 9: a question holding a Markdown image (a beacon) or HTML is shown as
    text on the review page, in no Markdown element."""
    beacon = "![b](http://127.0.0.1:18081/beacon.png)"
    question = f"Who won? {beacon} <img src=x onerror=alert(1)> **bold**"
    fb = tmp_path / "feedback_qa.jsonl"
    fb.write_text(json.dumps({"id": "f1", "question": question, "answers": ["<b>gold</b>"], "sources": [],
                              "type": "factoid", "feedback": {"verdict": "wrong", "system_answer": beacon,
                                                              "date": "2024-01-01"}}) + "\n")
    at = review_page(monkeypatch, built_index, fb)
    texts = [t.value for t in at.text]
    assert question in texts and any(beacon in t and "<b>gold</b>" in t for t in texts)
    for el in [*at.markdown, *at.caption, *at.error, *at.info]:
        assert "](http" not in el.value and "<img" not in el.value and "**bold**" not in el.value, el.value


def feedback_lines(path):
    from rag.feedback import FeedbackStore

    return FeedbackStore(path).lines()
