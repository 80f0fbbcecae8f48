"""Dates on answers, date filters (pipeline, CLI, chat) and disagreement between articles.

Real model, real index: the seeds plus two reports of Zorblax Mining's 2023 output (4.2 million
tonnes on 2024-02-01, revised to 3.9 million tonnes on 2024-06-15) and a dated web page.
"""

from __future__ import annotations

import html as html_lib
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from rag.errors import RagError

from ..conftest import ROOT, SEEDS, make_settings
from .news_fixtures import MINING_NEW, MINING_OLD, MINING_QUESTION, PAGES

APP = ROOT / "ui" / "app.py"


def write_news_folder(folder: Path) -> Path:
    shutil.copytree(SEEDS, folder)
    (folder / "zorblax-2024-02.md").write_text(MINING_OLD)
    (folder / "zorblax-2024-06.md").write_text(MINING_NEW)
    shutil.copy(PAGES / "daily_ledger.html", folder / "daily_ledger.html")
    return folder


@pytest.fixture(scope="module")
def news(tmp_path_factory, seeds_pipeline):
    from rag.pipeline import Pipeline

    tmp = tmp_path_factory.mktemp("news")
    articles = write_news_folder(tmp / "articles")
    pipe = Pipeline(make_settings(articles_dir=articles, index_dir=tmp / "index"), embedder=seeds_pipeline.embedder)
    pipe.build()
    return pipe


def _dates(pipe) -> dict[str, str | None]:
    return {a.file: a.published for a in pipe.index().articles.values()}


def test_disagreement_shows_both_versions_newest_first(news):
    ans = news.ask(MINING_QUESTION)
    assert not ans.abstained and ans.disagreement
    assert [v.answer for v in ans.disagreements] == ["3.9 million tonnes", "4.2 million tonnes"]
    assert [v.published for v in ans.disagreements] == ["2024-06-15", "2024-02-01"]
    assert [[c.file for c in v.citations] for v in ans.disagreements] == [["zorblax-2024-06.md"], ["zorblax-2024-02.md"]]
    arts = news.index().articles
    for v in ans.disagreements:
        assert v.confidence >= news.abstain_threshold
        for c in v.citations:
            assert arts[c.article_id].text[c.start : c.end] == c.quote == v.answer
            assert c.published == arts[c.article_id].published
    assert any("disagree" in n for n in ans.notes)
    assert [x.file for x in ans.sources] == ["zorblax-2024-06.md", "zorblax-2024-02.md"]


def test_agreeing_articles_are_no_disagreement(news):
    ans = news.ask("How many containers did the Port of Kellbridge handle last year?")
    assert not ans.abstained and "2.4 million" in ans.answer
    assert not ans.disagreement and ans.disagreements == []
    assert ans.citations[0].published == "2024-03-14" and ans.sources[0].published == "2024-03-14"


@pytest.mark.parametrize(
    "since,until,answer",
    [("2024-03-01", None, "3.9 million tonnes"), (None, "2024-03-01", "4.2 million tonnes"),
     (date(2024, 1, 1), date(2024, 2, 1), "4.2 million tonnes")],
)
def test_date_filter_searches_only_articles_in_range(news, since, until, answer):
    dates = _dates(news)
    ans = news.ask(MINING_QUESTION, since=since, until=until, top_k=10)
    assert ans.answer == answer and not ans.disagreement
    lo = str(since) if since else "0000"
    hi = str(until) if until else "9999"
    assert ans.passages
    for h in ans.passages:
        d = dates[h.file]
        assert d is not None and lo <= d[:10] <= hi, (h.file, d)
        assert all(dates[x.file] and lo <= dates[x.file][:10] <= hi for x in h.duplicates)
    assert "without a date left out" in ans.notes[0]


def test_no_article_in_range_abstains_and_says_so(news):
    ans = news.ask(MINING_QUESTION, since="2031-01-01")
    assert ans.abstained and ans.passages == []
    assert ans.notes[0].startswith("Searched only the 0 articles published from 2031-01-01 on")


@pytest.mark.parametrize("kw,msg", [(dict(since="tomorrow"), "Invalid date for since"),
                                     (dict(since="2024-05-01", until="2024-01-01"), "The date range is empty")])
def test_bad_date_filters_are_clear_errors(news, kw, msg):
    with pytest.raises(RagError, match=msg):
        news.ask(MINING_QUESTION, **kw)


# -- the CLI --------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_cli_json_disagreement_and_date_filter(news):
    index = str(news.settings.index_dir)
    out = _cli("ask", MINING_QUESTION, "--index", index, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["disagreement"] is True
    assert [(v["answer"], v["published"], v["citations"][0]["article"]) for v in doc["versions"]] == [
        ("3.9 million tonnes", "2024-06-15", "zorblax-2024-06.md"), ("4.2 million tonnes", "2024-02-01", "zorblax-2024-02.md")]
    assert all(c["published"] for c in doc["citations"])

    out = _cli("ask", MINING_QUESTION, "--index", index, "--json", "--until", "2024-03-01", "--k", "10")
    doc = json.loads(out.stdout)
    assert doc["answer"] == "4.2 million tonnes" and doc["until"] == "2024-03-01" and not doc["disagreement"]
    assert doc["passages"] and all(p["published"] and p["published"][:10] <= "2024-03-01" for p in doc["passages"])

    text = _cli("ask", MINING_QUESTION, "--index", index)
    assert "The articles disagree" in text.stdout
    assert text.stdout.index("3.9 million tonnes") < text.stdout.index("4.2 million tonnes")
    assert "2024-06-15" in text.stdout and "2024-02-01" in text.stdout

    bad = _cli("ask", MINING_QUESTION, "--index", index, "--since", "someday")
    assert bad.returncode == 1 and "Invalid date for since" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_status_shows_dates(news):
    out = _cli("status", "--index", str(news.settings.index_dir), "--articles")
    assert out.returncode == 0, out.stderr
    assert "published_from" in out.stdout and "2024-02-01" in out.stdout and "undated" in out.stdout
    rows = [line for line in out.stdout.splitlines() if "zorblax" in line or "daily_ledger" in line]
    assert [r.split("│")[1].strip() for r in rows] == ["2024-06-15", "2024-03-14", "2024-02-01"]  # newest first


# -- the chat (AppTest) ---------------------------------------------------------------------------


@pytest.fixture
def chat(news, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("RAG_INDEX_DIR", str(news.settings.index_dir))
    monkeypatch.setenv("RAG_ARTICLES_DIR", str(news.settings.articles_dir))
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    return at


def _esc(text: str) -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from ui.render import esc

    return esc(text)


def _assistant_html(at) -> str:
    msgs = [m for m in at.chat_message if m.name == "assistant"]
    return "\n".join(m.value for m in msgs[-1].markdown)


def test_chat_shows_disagreement_newest_first(chat):
    chat.chat_input[0].set_value(MINING_QUESTION).run()
    assert not chat.exception, chat.exception
    html = _assistant_html(chat)
    assert 'data-testid="rag-disagreement"' in html and "The articles disagree" in html
    new, old = html.index(f'data-published="{_esc("2024-06-15")}"'), html.index(f'data-published="{_esc("2024-02-01")}"')
    assert new < old
    assert html.index(_esc("3.9 million tonnes")) < html.index(_esc("4.2 million tonnes"))
    assert f'<time class="rag-date" datetime="{_esc("2024-06-15")}">15 Jun 2024</time>' in html


def test_chat_date_range_filters_the_search(chat, news):
    chat.date_input(key="until").set_value(date(2024, 3, 1)).run()
    chat.chat_input[0].set_value(MINING_QUESTION).run()
    assert not chat.exception, chat.exception
    html = _assistant_html(chat)
    assert "rag-disagreement" not in html and _esc("4.2 million tonnes") in html and _esc("3.9 million") not in html
    assert "Searched only the" in " ".join(i.value for i in chat.info)
    dates = _dates(news)
    files = set()
    for m in [m for m in chat.chat_message if m.name == "assistant"][-1].markdown:
        if 'data-file="' in m.value:
            files.add(html_lib.unescape(m.value.split('data-file="', 1)[1].split('"', 1)[0]))
    assert files and all(dates[f] and dates[f] <= "2024-03-01" for f in files)
