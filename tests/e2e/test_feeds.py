"""Feeds against a real HTTP server on 127.0.0.1: a feed, its item pages, and pages that time
out, are 50 MB, are not HTML or are missing. Real pipeline (model, FAISS) for the index."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler

import pytest

from rag.feeds import FeedError, canonical

from ..conftest import make_settings
from .news_fixtures import PAGE_EXPECT, PAGES, local_http_server

SLOW_SECONDS = 3.0  # the slow page answers after this (the test's fetch_timeout is 1 s)
HUGE = 50 * 1024 * 1024


def _rss(base: str) -> str:
    items = [
        ("Port traffic record", f"{base}/news/ledger", "Thu, 14 Mar 2024 07:30:00 GMT"),
        ("Wind farm approved", f"{base}/news/harbour?utm_source=rss&utm_medium=feed", "Thu, 02 Nov 2023 16:45:00 GMT"),
        ("Slow page", f"{base}/news/slow", None),
        ("Huge page", f"{base}/news/huge", None),
        ("Data, not a page", f"{base}/news/data.json", None),
        ("Chip plant delayed", f"{base}/news/tech", None),
        ("Chip plant delayed (AMP)", f"{base}/news/tech-amp", None),
        ("Wind farm, again", f"{base}/news/harbour-again", None),
        ("Gone", f"{base}/news/missing", None),
        ("No link at all", None, None),
    ]
    out = []
    for title, link, date in items:
        out.append("<item><title>%s</title>%s%s<description>Teaser.</description></item>" % (
            title.replace("&", "&amp;"), f"<link>{link.replace('&', '&amp;')}</link>" if link else "",
            f"<pubDate>{date}</pubDate>" if date else ""))
    return ('<?xml version="1.0"?><rss version="2.0"><channel><title>Local Test News</title>'
            f"<link>{base}/</link><description>Test feed</description>{''.join(out)}</channel></rss>")


class Handler(BaseHTTPRequestHandler):
    pages = {
        "/news/ledger": "daily_ledger.html",
        "/news/harbour": "harbour_times.html",
        "/news/harbour-again": "harbour_times.html",
        "/news/tech": "tech_digest.html",
        "/news/tech-amp": "tech_digest.html",
        "/news/metro": "metro_wire.html",
        "/news/valley": "valley_gazette.html",
    }

    def log_message(self, *args):  # quiet
        pass

    def _send(self, body: bytes, ctype: str, code: int = 200) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (the slow page)
            pass

    def do_GET(self):
        base = f"http://127.0.0.1:{self.server.server_port}"
        path = self.path.split("?", 1)[0]
        self.server.hits.append(path)
        if path == "/feed.xml":
            return self._send(_rss(base).encode(), "application/rss+xml")
        if path in self.pages:
            return self._send((PAGES / self.pages[path]).read_bytes(), "text/html; charset=utf-8")
        if path == "/news/slow":
            time.sleep(SLOW_SECONDS)  # bounded: longer than the client waits
            return self._send(b"<html><body><p>late</p></body></html>", "text/html")
        if path == "/news/huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()  # no Content-Length: the client must stop reading by itself
            chunk = b"<p>" + b"x" * (1024 * 1024 - 7) + b"</p>\n"
            try:
                for _ in range(HUGE // len(chunk)):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        if path == "/redirect-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/secret.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/news/data.json":
            return self._send(json.dumps({"not": "html"}).encode(), "application/json")
        return self._send(b"not found", "text/plain", 404)


@pytest.fixture(scope="module")
def server():
    with local_http_server(Handler) as httpd:
        yield httpd


@pytest.fixture
def feed_pipeline(tmp_path, seeds_pipeline):
    from rag.pipeline import Pipeline

    s = make_settings(articles_dir=tmp_path / "articles", index_dir=tmp_path / "index", fetch_timeout=1.0,
                      fetch_max_bytes=2 * 1024 * 1024, fetch_allow_networks="127.0.0.1/32")
    return Pipeline(s, embedder=seeds_pipeline.embedder)


def _by_title(entries):
    return {e.title: e for e in entries}


def test_feed_poll_report_and_second_poll_adds_nothing(server, feed_pipeline):
    base = f"http://127.0.0.1:{server.server_port}"
    t0 = time.monotonic()
    report = feed_pipeline.add_feed(f"{base}/feed.xml")
    assert time.monotonic() - t0 < 60
    assert report.title == "Local Test News"
    added, skipped, unchanged = _by_title(report.added), _by_title(report.skipped), _by_title(report.unchanged)
    assert set(added) == {"Port traffic record", "Wind farm approved", "Chip plant delayed"}
    assert set(unchanged) == {"Wind farm, again"}
    assert unchanged["Wind farm, again"].reason == "already indexed (same canonical URL)"
    assert set(skipped) == {"Slow page", "Huge page", "Data, not a page", "Chip plant delayed (AMP)", "Gone", "No link at all"}
    assert skipped["Slow page"].reason.startswith("timed out after 1 s")
    assert skipped["Huge page"].reason.startswith("too large: over the limit of 2,097,152 bytes")
    assert skipped["Data, not a page"].reason == "not an HTML page (Content-Type: application/json)"
    assert skipped["Chip plant delayed (AMP)"].reason.startswith(f"same text as {added['Chip plant delayed'].file}")
    assert skipped["Gone"].reason == "HTTP 404 Not Found"
    assert skipped["No link at all"].reason == "no http(s) link in the feed item"
    total = len(report.added) + len(report.skipped) + len(report.unchanged)
    assert total == 10  # every item accounted for exactly once

    # Nothing else is lost: each added page is indexed whole, with its date and canonical URL.
    assert report.build is not None and sorted(report.build.added) == sorted(e.file for e in report.added)
    data = feed_pipeline.index()
    arts = {a.file: a for a in data.articles.values()}
    ledger = arts[added["Port traffic record"].file]
    for sentence in PAGE_EXPECT["daily_ledger.html"]["body"]:
        assert sentence in ledger.text
    for junk in PAGE_EXPECT["daily_ledger.html"]["furniture"]:
        assert junk not in ledger.text
    assert ledger.published == "2024-03-14"
    assert ledger.url == "https://www.dailyledger.example/business/2024/port-kellbridge-record-traffic"
    assert ledger.link == f"{base}/news/ledger" and ledger.site == "The Daily Ledger"
    tech = arts[added["Chip plant delayed"].file]
    assert tech.published == "2025-09-08" and tech.url == f"{base}/news/tech"
    version = data.version

    # Second poll: known links are not fetched again; nothing is added, the index is untouched.
    server.hits.clear()
    again = feed_pipeline.add_feed(f"{base}/feed.xml")
    assert again.added == [] and again.build is None
    assert {e.title for e in again.unchanged} == {"Port traffic record", "Wind farm approved", "Chip plant delayed",
                                                  "Wind farm, again"}
    assert {e.title for e in again.skipped} == set(skipped)
    assert "/news/ledger" not in server.hits and "/news/tech" not in server.hits
    assert feed_pipeline.index().version == version


def test_atom_feed_file_and_cli_report(server, tmp_path, seeds_pipeline, monkeypatch):
    from typer.testing import CliRunner

    from rag.cli import app

    base = f"http://127.0.0.1:{server.server_port}"
    atom = tmp_path / "saved.atom"
    atom.write_text(
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Saved Atom</title>'
        '<id>urn:x</id><updated>2025-01-22T00:00:00Z</updated>'
        f'<entry><title>Tram strike off</title><id>urn:1</id><link href="{base}/news/metro"/><updated>2025-01-21T10:00:00Z</updated></entry>'
        f'<entry><title>Library reopens</title><id>urn:2</id><link href="{base}/news/valley"/><updated>2024-05-17T09:00:00Z</updated></entry>'
        "</feed>")
    monkeypatch.setenv("RAG_FETCH_TIMEOUT", "1")
    monkeypatch.setenv("RAG_FETCH_ALLOW_NETWORKS", "127.0.0.1/32")  # the test server; refused by default
    args = ["add", "--feed", str(atom), "--articles", str(tmp_path / "articles"), "--index", str(tmp_path / "index"), "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    rep = json.loads(first.output)
    assert rep["title"] == "Saved Atom" and len(rep["added"]) == 2 and rep["skipped"] == []
    assert sorted(rep["build"]["added"]) == sorted(e["file"] for e in rep["added"])
    second = CliRunner().invoke(app, args)
    rep2 = json.loads(second.output)
    assert second.exit_code == 0 and rep2["added"] == [] and len(rep2["unchanged"]) == 2 and rep2["build"] is None
    listed = CliRunner().invoke(app, ["status", "--index", str(tmp_path / "index"), "--articles", "--json"])
    status = json.loads(listed.output)
    assert [a["published"] for a in status["articles"]] == ["2025-01-21", "2024-05-17"]  # newest first
    assert status["n_dated"] == 2 and status["published_from"] == "2024-05-17"


def test_bad_feed_is_one_clear_error(server, tmp_path, feed_pipeline):
    base = f"http://127.0.0.1:{server.server_port}"
    with pytest.raises(FeedError, match="Not an RSS or Atom feed"):
        feed_pipeline.add_feed(f"{base}/news/ledger")
    with pytest.raises(FeedError, match="HTTP 404"):
        feed_pipeline.add_feed(f"{base}/nope.xml")
    with pytest.raises(FeedError, match="Feed not found"):
        feed_pipeline.add_feed(str(tmp_path / "missing.xml"))
    assert not (tmp_path / "articles").exists() or not any((tmp_path / "articles").iterdir())


def test_fetch_bounds(server):
    from rag.feeds import FetchError, fetch

    import ipaddress

    base = f"http://127.0.0.1:{server.server_port}"
    allow = [ipaddress.ip_network("127.0.0.1/32")]
    with pytest.raises(FetchError, match="redirected to a non-http"):
        fetch(f"{base}/redirect-ftp", timeout=1, max_bytes=1000, allow=allow)
    with pytest.raises(FetchError, match="not an http"):
        fetch("file:///etc/passwd", timeout=1, max_bytes=1000, allow=allow)
    with pytest.raises(FetchError, match="too large: 3,608 bytes"):  # Content-Length over the bound
        fetch(f"{base}/news/ledger", timeout=1, max_bytes=1000, allow=allow)
    got = fetch(f"{base}/news/ledger", timeout=1, max_bytes=10_000, allow=allow)
    assert got.data == (PAGES / "daily_ledger.html").read_bytes()


@pytest.mark.parametrize(
    "url,expected",
    [
        ("HTTPS://Example.COM/a/b/?utm_source=x&id=3#frag", "https://example.com/a/b?id=3"),
        ("http://example.com:80/", "http://example.com/"),
        ("ftp://example.com/x", None),
        ("not a url", None),
    ],
)
def test_canonical_urls(url, expected):
    assert canonical(url) == expected


def test_sidebar_feed_field_fetches_and_reports(server, tmp_path, seeds_pipeline, monkeypatch):
    import shutil
    import sys

    from streamlit.testing.v1 import AppTest

    from rag.pipeline import Pipeline

    from ..conftest import ROOT, SEEDS

    articles, index = tmp_path / "articles", tmp_path / "index"
    shutil.copytree(SEEDS, articles)
    Pipeline(make_settings(articles_dir=articles, index_dir=index), embedder=seeds_pipeline.embedder).build()
    for k, v in {"RAG_INDEX_DIR": index, "RAG_ARTICLES_DIR": articles, "RAG_FETCH_TIMEOUT": 1,
                 "RAG_FETCH_MAX_BYTES": 2 * 1024 * 1024, "RAG_FETCH_ALLOW_NETWORKS": "127.0.0.1/32"}.items():
        monkeypatch.setenv(k, str(v))
    sys.path.insert(0, str(ROOT))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    fetch = next(b for b in at.button if b.label == "Fetch feed")
    assert fetch.disabled  # nothing is fetched until a feed is given and the button pressed
    at.text_input(key="feed_url").set_value(f"http://127.0.0.1:{server.server_port}/feed.xml").run()
    next(b for b in at.button if b.label == "Fetch feed").click().run()
    assert not at.exception, at.exception
    html = "\n".join(m.value for m in at.sidebar.markdown)
    assert 'data-testid="rag-feed"' in html
    assert "3 added · 6 skipped · 1 unchanged" in html
    assert html.count('data-testid="rag-feed-skipped"') == 6
    data = Pipeline(make_settings(articles_dir=articles, index_dir=index)).store.load("all-MiniLM-L6-v2")
    assert len(data.articles) == 5 + 3
