"""Issue 24, reproductions 1-3: feeds that cannot reach inside, a deadline a dripping server cannot
stretch, and protocol errors that stay one line for their item. Every server binds 127.0.0.1, is
started and stopped here, and every loop in it is bounded."""

from __future__ import annotations

import json
import re
import time
from http.server import BaseHTTPRequestHandler

import pytest
from typer.testing import CliRunner

from .news_fixtures import PAGES, local_http_server

SECRET = "The production database root password is hunter2-7f3a9."
DRIP_BYTES = 30  # one every 0.5 s: 15 s when nothing stops the client


def _admin_page(name: str) -> bytes:
    return (f"<html><head><title>Admin console {name}</title></head><body><article><h1>Admin console {name}</h1>"
            f"<p>{SECRET} This page of {name} is only for the operations team and must never leave the network "
            "it lives in. Rotate the credentials every ninety days and record the change in the vault.</p>"
            "</article></body></html>").encode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _raw(self, data: bytes, drip: bool = False) -> None:
        try:
            if not drip:
                self.wfile.write(data)
                return
            for b in data[:DRIP_BYTES]:  # bounded
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self.close_connection = True

    def do_GET(self):
        path, _, query = self.path.partition("?")
        self.server.hits.append(path)
        ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
        if path.startswith("/admin"):
            body = _admin_page(path[1:])
            return self._raw(ok + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        if path == "/redirect":  # a 302 to wherever ?to= says
            return self._raw(b"HTTP/1.1 302 Found\r\nLocation: " + query.removeprefix("to=").encode()
                             + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        page = b"<html><body><p>" + b"late " * 3 + b"</p></body></html>"
        if path == "/drip-head":  # a whole, valid response, 15 s long
            self._raw(b"HTTP/1.1 200 OK\r\n")
            self._raw(b"X-Slow: " + b"a" * (DRIP_BYTES - 8), drip=True)
            return self._raw(b"\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(page) + page)
        if path == "/drip-body":
            self._raw(ok + b"Content-Length: %d\r\n\r\n" % DRIP_BYTES)
            return self._raw(page[:DRIP_BYTES], drip=True)
        if path == "/ssh":  # what an SSH server says first
            return self._raw(b"SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n")
        if path == "/long-header":  # one header line over http.client's 64 KiB
            return self._raw(ok + b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n<p>never read</p>")
        if path.startswith("/news/"):
            name = {"/news/ledger": "daily_ledger.html", "/news/tech": "tech_digest.html"}[path]
            body = (PAGES / name).read_bytes()
            return self._raw(ok + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self._raw(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture
def server():
    with local_http_server(Handler) as httpd:
        yield httpd


def _feed_file(tmp_path, links):
    items = "".join(f"<item><title>Item {i}</title><link>{link.replace('&', '&amp;')}</link></item>"
                    for i, link in enumerate(links))
    path = tmp_path / "feed.xml"
    path.write_text(f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>')
    return path


def _add_feed(tmp_path, feed, monkeypatch, **env):
    from rag.cli import app

    for k in ("RAG_FETCH_ALLOW_NETWORKS", "RAG_FEED_POLL_SECONDS"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("RAG_FETCH_TIMEOUT", "1")
    for k, v in env.items():
        monkeypatch.setenv(k, str(v))
    args = ["add", "--feed", str(feed), "--articles", str(tmp_path / "articles"),
            "--index", str(tmp_path / "index"), "--json"]
    return CliRunner().invoke(app, args)


def _written(tmp_path):
    folder = tmp_path / "articles"
    return sorted(p.name for p in folder.glob("*.md")) if folder.exists() else []


# -- 1. feeds reach internal services ------------------------------------------------------------

def test_internal_addresses_in_any_spelling_are_refused_by_default(server, tmp_path, monkeypatch):
    port = server.server_port
    links = [f"http://127.0.0.1:{port}/admin", f"http://2130706433:{port}/admin", f"http://0x7f.1:{port}/admin",
             f"http://[::ffff:127.0.0.1]:{port}/admin", f"http://localhost:{port}/admin",
             f"http://0.0.0.0:{port}/admin", f"http://127.0.0.1:{port}/redirect?to=http://127.0.0.1:{port}/admin"]
    result = _add_feed(tmp_path, _feed_file(tmp_path, links), monkeypatch)
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output)
    assert rep["added"] == [] and len(rep["skipped"]) == len(links)
    for item in rep["skipped"]:
        assert item["reason"].startswith("refused: "), item
        assert "fetch_allow_networks" in item["reason"]
    assert server.hits == []  # not one request reached the server
    assert _written(tmp_path) == []


def test_allowed_network_opens_only_itself_and_every_redirect_is_checked(server, tmp_path, monkeypatch):
    port = server.server_port
    links = [f"http://127.0.0.1:{port}/admin-a",
             f"http://127.0.0.1:{port}/redirect?to=http://0.0.0.0:{port}/admin-b",
             f"http://127.0.0.1:{port}/redirect?to=http://[::ffff:127.0.0.1]:{port}/admin-c",
             f"http://127.0.0.1:{port}/redirect?to=http://2130706433:{port}/admin-d"]
    result = _add_feed(tmp_path, _feed_file(tmp_path, links), monkeypatch, RAG_FETCH_ALLOW_NETWORKS="127.0.0.1/32")
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output)
    # 127.0.0.1 is open (decimal 2130706433 is the same address); 0.0.0.0 and ::ffff:127.0.0.1 are not.
    assert [e["url"] for e in rep["added"]] == [links[0], links[3]]
    refused = {e["url"]: e["reason"] for e in rep["skipped"]}
    assert len(refused) == 2
    for url, reason in refused.items():
        assert reason.startswith("refused: "), reason
    assert "0.0.0.0 is an unspecified address" in refused[links[1]]
    assert "::ffff:7f00:1 is a loopback address" in refused[links[2]]
    assert "/admin-b" not in server.hits and "/admin-c" not in server.hits
    assert "/admin-a" in server.hits and "/admin-d" in server.hits


def test_chat_feed_field_takes_http_urls_only_and_refuses_loopback(server, tmp_path, seeds_pipeline, monkeypatch):
    import shutil
    import sys

    from streamlit.testing.v1 import AppTest

    from ..conftest import ROOT, SEEDS

    articles, index = tmp_path / "articles", tmp_path / "index"
    shutil.copytree(SEEDS, articles)
    shutil.copytree(seeds_pipeline.settings.index_dir, index)
    monkeypatch.delenv("RAG_FETCH_ALLOW_NETWORKS", raising=False)
    for k, v in {"RAG_INDEX_DIR": index, "RAG_ARTICLES_DIR": articles, "RAG_FETCH_TIMEOUT": 1}.items():
        monkeypatch.setenv(k, str(v))
    sys.path.insert(0, str(ROOT))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    feed = _feed_file(tmp_path, [f"http://127.0.0.1:{server.server_port}/admin"])
    errors = []
    for value in ("/etc/passwd", "/no/such/file.xml", str(feed), f"http://127.0.0.1:{server.server_port}/admin"):
        at.text_input(key="feed_url").set_value(value).run()
        next(b for b in at.button if b.label == "Fetch feed").click().run()
        assert not at.exception, at.exception
        errors.append([re.sub(r"\\(.)", r"\1", e.value) for e in at.sidebar.error])  # Markdown-escaped
    for got in errors[:3]:  # the same line whether the file exists or not, and nothing read
        assert got == [errors[0][0]] and "http(s) URL" in got[0], got
    assert len(errors[3]) == 1 and "refused: 127.0.0.1" in errors[3][0]
    assert server.hits == [] and sorted(p.name for p in articles.iterdir()) == sorted(p.name for p in SEEDS.iterdir())


# -- 2. the total deadline -----------------------------------------------------------------------

def test_dripping_headers_or_body_cannot_stretch_the_deadline(server, tmp_path, monkeypatch):
    port = server.server_port
    links = [f"http://127.0.0.1:{port}/drip-head", f"http://127.0.0.1:{port}/drip-body"]
    t0 = time.monotonic()
    result = _add_feed(tmp_path, _feed_file(tmp_path, links), monkeypatch, RAG_FETCH_ALLOW_NETWORKS="127.0.0.1/32")
    took = time.monotonic() - t0
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output)
    assert [e["reason"].split(":")[0] for e in rep["skipped"]] == ["timed out", "timed out"]
    assert took < 2 * 4 + 3, took  # 4 s (4 x fetch_timeout) each, not 15 s each
    assert _written(tmp_path) == []


def test_one_deadline_for_the_whole_poll(server, tmp_path, monkeypatch):
    port = server.server_port
    links = [f"http://127.0.0.1:{port}/drip-head?{i}" for i in range(4)]
    t0 = time.monotonic()
    result = _add_feed(tmp_path, _feed_file(tmp_path, links), monkeypatch, RAG_FETCH_ALLOW_NETWORKS="127.0.0.1/32",
                       RAG_FETCH_TIMEOUT=2, RAG_FEED_POLL_SECONDS=3)
    took = time.monotonic() - t0
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output)
    assert len(rep["skipped"]) == 4 and rep["added"] == []
    assert rep["skipped"][0]["reason"].startswith("timed out")
    assert rep["skipped"][-1]["reason"] == "not fetched: the poll ran out of time (setting feed_poll_seconds)"
    assert took < 3 + 2, took  # not 4 x 8 s


# -- 3. protocol errors --------------------------------------------------------------------------

def test_protocol_errors_are_one_line_per_item_and_a_retry_writes_no_copy(server, tmp_path, monkeypatch):
    port = server.server_port
    links = [f"http://127.0.0.1:{port}/news/ledger", f"http://127.0.0.1:{port}/ssh",
             f"http://127.0.0.1:{port}/long-header", f"http://127.0.0.1:{port}/news/tech"]
    feed = _feed_file(tmp_path, links)
    env = {"RAG_FETCH_ALLOW_NETWORKS": "127.0.0.1/32"}
    result = _add_feed(tmp_path, feed, monkeypatch, **env)
    assert result.exit_code == 0, result.output
    rep = json.loads(result.output)
    assert [e["url"] for e in rep["added"]] == [links[0], links[3]]
    reasons = {e["url"]: e["reason"] for e in rep["skipped"]}
    assert "BadStatusLine" in reasons[links[1]] and "LineTooLong" in reasons[links[2]]
    assert all("\n" not in r for r in reasons.values())
    assert sorted(rep["build"]["added"]) == sorted(e["file"] for e in rep["added"]) == _written(tmp_path)
    first = _written(tmp_path)

    again = _add_feed(tmp_path, feed, monkeypatch, **env)
    assert again.exit_code == 0, again.output
    rep2 = json.loads(again.output)
    assert rep2["added"] == [] and len(rep2["unchanged"]) == 2 and len(rep2["skipped"]) == 2
    assert _written(tmp_path) == first  # no -2.md

    # The feed itself behind an SSH banner: one line, exit 1, no traceback.
    bad = _add_feed(tmp_path, f"http://127.0.0.1:{port}/ssh", monkeypatch, **env)
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert bad.output.strip().splitlines() == [
        f"error: Cannot read the feed http://127.0.0.1:{port}/ssh: fetch failed: BadStatusLine: "
        "SSH-2.0-OpenSSH_9.6p1 Debian-3"]
