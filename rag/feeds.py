"""Feeds: RSS 0.9x/1.0/2.0 and Atom (``feedparser``), each item's page fetched and extracted.

This is the only module that touches the network, and only when a person asks for it
(``rag add --feed``, the app's *Fetch feed* button); answering questions never does.

A poll reads the feed (a URL, or a saved feed file), then for each item:

1. an item whose link is already known (an indexed article's canonical URL or feed link) is
   **unchanged**: its page is not fetched again;
2. otherwise its page is fetched (http/https only; ``fetch_timeout`` seconds for the connection
   and each read, four times that in all; at most ``fetch_max_bytes``; HTML only) and
   extracted as any saved web page is (``rag.formats.extract_page``);
3. a page whose canonical URL is known is **unchanged**; one whose text is the same as an
   indexed article's (content hash) is **skipped** as a duplicate;
4. a new article is written to the articles folder as Markdown with a front matter (title,
   date, canonical URL, feed link, author, source), which the next build indexes.

Every item ends in exactly one of *added*, *skipped* (with the reason) or *unchanged*.
"""

from __future__ import annotations

import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from .errors import RagError
from .types import BuildReport

USER_AGENT = "rag-feed-reader/0.1 (+offline news Q&A; fetches only when asked)"
HTML_TYPES = ("text/html", "application/xhtml+xml")


class FeedError(RagError):
    """The feed itself could not be read (the items never were)."""


class FetchError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class FeedEntry(BaseModel):
    url: str | None = None
    title: str | None = None
    file: str | None = Field(None, description="The article file written (added) or already holding it.")
    reason: str | None = Field(None, description="Why it was skipped, or why it counts as unchanged.")


class FeedReport(BaseModel):
    feed: str
    title: str | None = None
    added: list[FeedEntry] = Field(default_factory=list)
    skipped: list[FeedEntry] = Field(default_factory=list)
    unchanged: list[FeedEntry] = Field(default_factory=list)
    build: BuildReport | None = None
    seconds: float = 0.0


@dataclass
class Fetched:
    url: str  # after redirects
    content_type: str
    charset: str | None
    data: bytes


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only (urllib would also follow one to ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise FetchError(f"redirected to a non-http(s) link: {newurl[:100]}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def fetch(url: str, *, timeout: float, max_bytes: int, html_only: bool = True) -> Fetched:
    """GET ``url`` with bounds; ``FetchError`` with a one-line reason on any failure."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"not an http(s) link: {url[:100]}")
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,*/*;q=0.5"})
    deadline = time.monotonic() + 4 * timeout
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            ctype = resp.headers.get_content_type() or ""
            if html_only and ctype not in HTML_TYPES:
                raise FetchError(f"not an HTML page (Content-Type: {ctype or 'none'})")
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"too large: {int(length):,} bytes, over the limit of {max_bytes:,} (setting fetch_max_bytes)")
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise FetchError(f"timed out: still downloading after {4 * timeout:g} s")
                chunk = resp.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"too large: over the limit of {max_bytes:,} bytes (setting fetch_max_bytes)")
                chunks.append(chunk)
            return Fetched(resp.geturl(), ctype, resp.headers.get_content_charset(), b"".join(chunks))
    except FetchError:
        raise
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise FetchError(f"timed out after {timeout:g} s (setting fetch_timeout)") from None
        raise FetchError(f"cannot connect: {exc.reason}") from None
    except (TimeoutError, socket.timeout):
        raise FetchError(f"timed out after {timeout:g} s (setting fetch_timeout)") from None
    except (OSError, ValueError) as exc:  # connection reset, malformed response or URL
        raise FetchError(f"fetch failed: {type(exc).__name__}: {str(exc)[:120]}") from None


_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ocid|cmpid)$", re.I)


def canonical(url: str | None) -> str | None:
    """A URL in the form used to compare: lower-case scheme and host, no fragment, no tracking
    parameters (utm_*, fbclid, ...), no trailing slash."""
    if not url:
        return None
    try:
        u = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return None
    if u.scheme not in ("http", "https") or not u.hostname:
        return None
    query = urllib.parse.urlencode([(k, v) for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True)
                                    if not _TRACKING.match(k)])
    host = u.hostname.lower() + (f":{u.port}" if u.port and u.port not in (80, 443) else "")
    return urllib.parse.urlunsplit((u.scheme.lower(), host, u.path.rstrip("/") or "/", query, ""))


def read_feed(source: str, *, timeout: float, max_bytes: int) -> tuple[str | None, list]:
    """(feed title, entries) of a feed URL or a saved feed file."""
    import feedparser

    if re.match(r"^https?://", source, re.I):
        try:
            data = fetch(source, timeout=timeout, max_bytes=max_bytes, html_only=False).data
        except FetchError as exc:
            raise FeedError(f"Cannot read the feed {source}: {exc.reason}") from None
    else:
        path = Path(source)
        if not path.is_file():
            raise FeedError(f"Feed not found: {source} (give an http(s) URL or a feed file)")
        if path.stat().st_size > max_bytes:
            raise FeedError(f"Feed file too large: {path.stat().st_size:,} bytes (setting fetch_max_bytes)")
        data = path.read_bytes()
    parsed = feedparser.parse(data)  # bytes: feedparser makes no request of its own
    if not parsed.entries:
        why = f" ({parsed.bozo_exception})" if parsed.get("bozo") else ""
        if parsed.get("version"):
            return parsed.feed.get("title"), []
        raise FeedError(f"Not an RSS or Atom feed: {source}{why}")
    return parsed.feed.get("title"), list(parsed.entries)


def _slug(s: str, limit: int = 50) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", s.lower()))[:limit].strip("-")


def _entry_link(entry) -> str | None:
    link = entry.get("link")
    if not link:
        guid = entry.get("id") or ""
        link = guid if re.match(r"^https?://", guid) else None
    return link


def poll(
    source: str,
    folder: Path,
    *,
    known_urls: dict[str, str],
    known_ids: dict[str, str],
    timeout: float,
    max_bytes: int,
    max_items: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> FeedReport:
    """Read the feed and write each new item into ``folder`` (see the module's doc).

    ``known_urls`` maps canonical URLs of indexed articles to their files, ``known_ids`` article
    ids (content hashes) to their files."""
    import yaml

    from .formats import extract_page, parse_date
    from .ingest import article_id, clean_text, decode

    t0 = time.perf_counter()
    title, entries = read_feed(source, timeout=timeout, max_bytes=max_bytes)
    report = FeedReport(feed=source, title=title)
    folder.mkdir(parents=True, exist_ok=True)
    urls, ids = dict(known_urls), dict(known_ids)
    entries = entries[:max_items]
    for i, entry in enumerate(entries):
        if progress:
            progress("fetch", i, len(entries))
        link = _entry_link(entry)
        item = FeedEntry(url=link, title=" ".join(str(entry.get("title") or "").split()) or None)
        key = canonical(link)
        if not link or key is None:
            item.reason = "no http(s) link in the feed item" if not link else f"not an http(s) link: {link[:100]}"
            report.skipped.append(item)
            continue
        if key in urls:
            item.file, item.reason = urls[key], "already indexed (same link)"
            report.unchanged.append(item)
            continue
        try:
            got = fetch(link, timeout=timeout, max_bytes=max_bytes)
        except FetchError as exc:
            item.reason = exc.reason
            report.skipped.append(item)
            continue
        try:
            markup, _ = decode(got.data, link)
        except Exception as exc:  # UnusableFile: undecodable bytes
            item.reason = getattr(exc, "reason", str(exc))
            report.skipped.append(item)
            continue
        page = extract_page(markup, url=got.url)
        body = "\n".join(line.strip() for line in page.text.split("\n") if line.strip())
        if not body:
            item.reason = "no article text found in the page"
            report.skipped.append(item)
            continue
        page_url = canonical(page.url) or canonical(got.url) or key
        if page_url in urls:
            item.file, item.reason = urls[page_url], "already indexed (same canonical URL)"
            report.unchanged.append(item)
            urls[key] = urls[page_url]
            continue
        head = " ".join((page.title or item.title or body.split("\n", 1)[0]).split())
        text = body if body.split("\n", 1)[0] == head else f"{head}\n{body}"
        aid = article_id(clean_text(text)[0])
        if aid in ids:
            item.file, item.reason = ids[aid], f"same text as {ids[aid]} (already indexed)"
            report.skipped.append(item)
            continue
        published = page.published or parse_date(entry.get("published_parsed") or entry.get("updated_parsed"))
        meta = {"title": head, "date": published, "url": page.url or got.url,
                "link": link if canonical(link) != canonical(page.url or got.url) else None,
                "author": page.author or entry.get("author"), "source": page.site or title}
        meta = {k: v for k, v in meta.items() if v}
        host = urllib.parse.urlsplit(page.url or got.url).hostname or "feed"
        stem = f"{_slug(host.removeprefix('www.'), 30)}-{_slug(head) or aid}"
        name, n = f"{stem}.md", 2
        while (folder / name).exists():
            name, n = f"{stem}-{n}.md", n + 1
        front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=10_000)
        (folder / name).write_text(f"---\n{front}---\n{text}\n", encoding="utf-8")
        item.file = name
        report.added.append(item)
        urls[key] = urls[page_url] = name
        ids[aid] = name
    if progress:
        progress("fetch", len(entries), len(entries))
    report.seconds = time.perf_counter() - t0
    return report
