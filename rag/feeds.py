"""Feeds: RSS 0.9x/1.0/2.0 and Atom (``feedparser``), each item's page fetched and extracted.

This is the only module that touches the network, and only when a person asks for it
(``rag add --feed``, the app's *Fetch feed* button); answering questions never does.

A poll reads the feed (a URL, or a saved feed file), then for each item:

1. an item whose link is already known (an indexed article's canonical URL or feed link) is
   **unchanged**: its page is not fetched again;
2. otherwise its page is fetched (http/https only; public addresses only, unless the
   ``fetch_allow_networks`` setting opens a network, checked after the name is resolved and at
   every redirect, and the connection made to the address checked; ``fetch_timeout`` seconds
   for the connection and each read, four times that in all, whatever the server drips, and
   the whole poll within ``feed_poll_seconds``; at most ``fetch_max_bytes``; HTML only) and
   extracted as any saved web page is (``rag.formats.extract_page``);
3. a page whose canonical URL is known is **unchanged**; one whose text is the same as an
   indexed article's (content hash) is **skipped** as a duplicate;
4. a new article is written to the articles folder as Markdown with a front matter (title,
   date, canonical URL, feed link, author, source), which the next build indexes.

Every item ends in exactly one of *added*, *skipped* (with the reason: whatever failed, the
poll goes on, and nothing is written for it) or *unchanged*.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
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


# --- which addresses may be fetched -------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_v4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (::ffff:a.b.c.d, 6to4, Teredo, NAT64), if any."""
    if ip.version == 4:
        return None
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow: Sequence[Network] = ()) -> str | None:
    """Why ``ip`` may not be fetched (None: it may). Only public unicast addresses may, and those in
    ``allow`` (as spelt: allowing 127.0.0.1/32 does not allow ::ffff:127.0.0.1)."""
    if any(ip.version == net.version and ip in net for net in allow):
        return None
    inner = _embedded_v4(ip)
    if inner is not None:  # judged by the IPv4 address it reaches
        return refusal(inner)
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return f"{'an' if kind == 'unspecified' else 'a'} {kind.replace('_', '-')} address"
    if ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.version == 6 and ip in _UNIQUE_LOCAL:
        return "a unique-local address"
    if not ip.is_global:
        return "a private address"
    return None


def _resolve(host: str, port: int, deadline: float, allow: Sequence[Network]) -> str:
    """The address to connect to: ``host`` resolved once, each address checked, the first allowed one.

    Any spelling of an address (2130706433, 0x7f.1, ::ffff:127.0.0.1) goes through the resolver, so
    it is the address the system would connect to that is checked, and the connection is then made
    to that very address (no second lookup that a DNS server could answer differently)."""
    found: dict = {}

    def lookup():
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            found["error"] = exc

    t = threading.Thread(target=lookup, daemon=True)  # getaddrinfo has no timeout of its own
    t.start()
    t.join(max(0.0, deadline - time.monotonic()))
    if t.is_alive():
        raise FetchError(f"timed out looking up {host[:100]}")
    if "error" in found:
        raise FetchError(f"cannot resolve {host[:100]}: {found['error']}")
    first_refusal = None
    for _family, _, _, _, sockaddr in found["infos"]:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        why = refusal(ip, allow)
        if why is None:
            return sockaddr[0]
        first_refusal = first_refusal or f"{ip} is {why}"
    raise FetchError(f"refused: {host[:100]} -> {first_refusal or 'no address'} (setting fetch_allow_networks opens networks)")


def _connection(scheme: str, host: str, port: int, ip: str, timeout: float, state: dict) -> http.client.HTTPConnection:
    """An HTTP(S) connection to ``host`` (Host header, TLS SNI and certificate name) made to ``ip``;
    its socket is kept in ``state`` for ``_cut`` (http.client lets go of it once a response says
    the connection will close, while the response still reads from it)."""
    base = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection

    class Pinned(base):
        def connect(self):
            super().connect()
            state["sock"] = self.sock
            if state["cut"]:  # the deadline passed while connecting
                _cut(state)

    kw = {"context": ssl.create_default_context()} if scheme == "https" else {}
    conn = Pinned(host, port, timeout=timeout, **kw)
    # http.client opens its socket through this attribute (HTTPS wraps the socket afterwards, with
    # server_hostname=host): connect to the checked address, never look the name up again.
    conn._create_connection = lambda _addr, t=timeout, src=None: socket.create_connection((ip, port), t, src)
    return conn


def _cut(state: dict) -> None:
    """At the deadline: shut the socket down, which ends any read blocked on it (headers or body)."""
    state["cut"] = True
    if state.get("sock") is not None:
        try:
            socket.socket.shutdown(state["sock"], socket.SHUT_RDWR)
        except OSError:
            pass


REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5


def fetch(url: str, *, timeout: float, max_bytes: int, html_only: bool = True,
          allow: Sequence[Network] = (), deadline: float | None = None) -> Fetched:
    """GET ``url`` with bounds; ``FetchError`` with a one-line reason on any failure.

    Only public addresses (and those in ``allow``) are connected to, checked at every redirect.
    ``timeout`` bounds the connection and each read; the whole fetch, redirects included, ends by
    ``deadline`` (monotonic seconds; at most ``4 * timeout`` from now), slow server or not."""
    total = 4 * timeout
    deadline = min(deadline if deadline is not None else float("inf"), time.monotonic() + total)
    headers = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,*/*;q=0.5",
               "Accept-Encoding": "identity", "Connection": "close"}
    state: dict = {"cut": False}
    late = "timed out: not done by the deadline ({:g} s for a page, setting fetch_timeout x 4; feed_poll_seconds for a poll)"
    try:
        for _ in range(MAX_REDIRECTS + 1):
            u = urllib.parse.urlsplit(url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise FetchError(f"not an http(s) link: {url[:100]}")
            port = u.port or (443 if u.scheme == "https" else 80)
            ip = _resolve(u.hostname, port, deadline, allow)
            left = deadline - time.monotonic()
            if left <= 0:
                raise FetchError(late.format(total))
            state["sock"] = None
            conn = _connection(u.scheme, u.hostname, port, ip, min(timeout, left), state)
            timer = threading.Timer(left, _cut, (state,))
            timer.daemon = True
            timer.start()
            try:
                conn.request("GET", (u.path or "/") + (f"?{u.query}" if u.query else ""), headers=headers)
                resp = conn.getresponse()
                if resp.status in REDIRECTS and resp.getheader("Location"):
                    new = urllib.parse.urljoin(url, resp.getheader("Location").strip())
                    if urllib.parse.urlsplit(new).scheme not in ("http", "https"):
                        raise FetchError(f"redirected to a non-http(s) link: {new[:100]}")
                    url = new
                    continue
                if resp.status != 200:
                    raise FetchError(f"HTTP {resp.status} {resp.reason}"[:150])
                ctype = resp.headers.get_content_type() or ""
                if html_only and ctype not in HTML_TYPES:
                    raise FetchError(f"not an HTML page (Content-Type: {ctype or 'none'})")
                length = resp.getheader("Content-Length")
                if length and length.isdigit() and int(length) > max_bytes:
                    raise FetchError(f"too large: {int(length):,} bytes, over the limit of {max_bytes:,} (setting fetch_max_bytes)")
                chunks, size = [], 0
                while chunk := resp.read(65536):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"too large: over the limit of {max_bytes:,} bytes (setting fetch_max_bytes)")
                    chunks.append(chunk)
                if state["cut"]:
                    raise FetchError(late.format(total))
                return Fetched(url, ctype, resp.headers.get_content_charset(), b"".join(chunks))
            finally:
                timer.cancel()
                conn.close()
                if state["sock"] is not None:
                    state["sock"].close()
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")
    except FetchError:
        if state["cut"]:  # what a response cut short at the deadline looks like is no reason
            raise FetchError(late.format(total)) from None
        raise
    except Exception as exc:  # any failure, whatever the protocol says, is one line for this fetch
        if state["cut"] or time.monotonic() >= deadline:
            raise FetchError(late.format(total)) from None
        if isinstance(exc, (TimeoutError, socket.timeout)):
            raise FetchError(f"timed out after {timeout:g} s (setting fetch_timeout)") from None
        raise FetchError(f"fetch failed: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}") from None


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


def read_feed(source: str, *, timeout: float, max_bytes: int, allow: Sequence[Network] = (),
              deadline: float | None = None, files: bool = True) -> tuple[str | None, list]:
    """(feed title, entries) of a feed URL or, when ``files``, a saved feed file."""
    import feedparser

    if re.match(r"^https?://", source, re.I):
        try:
            data = fetch(source, timeout=timeout, max_bytes=max_bytes, html_only=False, allow=allow,
                         deadline=deadline).data
        except FetchError as exc:
            raise FeedError(f"Cannot read the feed {source[:200]}: {exc.reason}") from None
    elif not files:  # the app: a server's files are not for its users to read
        raise FeedError("Give the feed as an http(s) URL (feed files are added with: rag add --feed FILE)")
    else:
        path = Path(source)
        if not path.is_file():
            raise FeedError(f"Feed not found: {source} (give an http(s) URL or a feed file)")
        if path.stat().st_size > max_bytes:
            raise FeedError(f"Feed file too large: {path.stat().st_size:,} bytes (setting fetch_max_bytes)")
        data = path.read_bytes()
    try:
        parsed = feedparser.parse(data)  # bytes: feedparser makes no request of its own
    except Exception as exc:  # feedparser is lenient, but a parser bug must stay one line
        raise FeedError(f"Not an RSS or Atom feed: {source[:200]} ({type(exc).__name__})") from None
    if not parsed.entries:
        why = f" ({parsed.bozo_exception})" if parsed.get("bozo") else ""
        if parsed.get("version"):
            return parsed.feed.get("title"), []
        raise FeedError(f"Not an RSS or Atom feed: {source[:200]}{why}"[:400])
    return parsed.feed.get("title"), list(parsed.entries)


def _slug(s: str, limit: int = 50) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", s.lower()))[:limit].strip("-")


def _entry_link(entry) -> str | None:
    link = entry.get("link")
    if not link:
        guid = entry.get("id") or ""
        link = guid if re.match(r"^https?://", guid) else None
    return link


class _Skip(Exception):
    """An item that ends as skipped (``reason``) or unchanged (``file`` set)."""

    def __init__(self, reason: str, file: str | None = None):
        super().__init__(reason)
        self.reason, self.file = reason, file


def _write_new(folder: Path, stem: str, content: str) -> str:
    """Write ``content`` as ``stem.md`` (or ``stem-2.md``...) atomically; a file already holding
    exactly this content is reused, so a poll tried again writes no second copy."""
    name, n = f"{stem}.md", 2
    while (folder / name).exists():
        if (folder / name).read_text(encoding="utf-8", errors="replace") == content:
            return name
        name, n = f"{stem}-{n}.md", n + 1
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    try:
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, folder / name)
    finally:
        tmp.unlink(missing_ok=True)
    return name


def poll(
    source: str,
    folder: Path,
    *,
    known_urls: dict[str, str],
    known_ids: dict[str, str],
    timeout: float,
    max_bytes: int,
    max_items: int,
    allow: Sequence[Network] = (),
    poll_seconds: float = 300.0,
    files: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> FeedReport:
    """Read the feed and write each new item into ``folder`` (see the module's doc).

    ``known_urls`` maps canonical URLs of indexed articles to their files, ``known_ids`` article
    ids (content hashes) to their files. ``allow``: networks open although not public;
    ``poll_seconds``: the whole poll's deadline; ``files``: whether ``source`` may be a file."""
    t0 = time.perf_counter()
    deadline = time.monotonic() + poll_seconds
    title, entries = read_feed(source, timeout=timeout, max_bytes=max_bytes, allow=allow, deadline=deadline,
                               files=files)
    report = FeedReport(feed=source, title=title)
    folder.mkdir(parents=True, exist_ok=True)
    urls, ids = dict(known_urls), dict(known_ids)
    entries = entries[:max_items]
    for i, entry in enumerate(entries):
        if progress:
            progress("fetch", i, len(entries))
        link = _entry_link(entry)
        item = FeedEntry(url=link, title=" ".join(str(entry.get("title") or "").split()) or None)
        try:
            item.file = _take(entry, link, folder, urls, ids, title=title, item_title=item.title, timeout=timeout, max_bytes=max_bytes,
                              allow=allow, deadline=deadline)
            report.added.append(item)
        except _Skip as skip:
            item.reason, item.file = skip.reason, skip.file
            (report.unchanged if skip.file and skip.reason.startswith("already indexed") else report.skipped).append(item)
        except Exception as exc:  # whatever went wrong, it is this item's one line and the poll goes on
            item.reason = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:150]}"
            report.skipped.append(item)
    if progress:
        progress("fetch", len(entries), len(entries))
    report.seconds = time.perf_counter() - t0
    return report


def _take(entry, link: str | None, folder: Path, urls: dict[str, str], ids: dict[str, str], *, title: str | None,
          item_title: str | None,
          timeout: float, max_bytes: int, allow: Sequence[Network], deadline: float) -> str:
    """Fetch one feed item's page and write it as a new article; its file name, or ``_Skip``."""
    import yaml

    from .formats import extract_page, parse_date
    from .ingest import article_id, clean_text, decode

    key = canonical(link)
    if not link or key is None:
        raise _Skip("no http(s) link in the feed item" if not link else f"not an http(s) link: {link[:100]}")
    if key in urls:
        raise _Skip("already indexed (same link)", urls[key])
    if time.monotonic() >= deadline:
        raise _Skip("not fetched: the poll ran out of time (setting feed_poll_seconds)")
    try:
        got = fetch(link, timeout=timeout, max_bytes=max_bytes, allow=allow, deadline=deadline)
    except FetchError as exc:
        raise _Skip(exc.reason) from None
    try:
        markup, _ = decode(got.data, link)
    except RagError as exc:  # UnusableFile: undecodable bytes
        raise _Skip(getattr(exc, "reason", str(exc))) from None
    page = extract_page(markup, url=got.url)
    body = "\n".join(line.strip() for line in page.text.split("\n") if line.strip())
    if not body:
        raise _Skip("no article text found in the page")
    page_url = canonical(page.url) or canonical(got.url) or key
    if page_url in urls:
        urls[key] = urls[page_url]
        raise _Skip("already indexed (same canonical URL)", urls[page_url])
    head = " ".join((page.title or item_title or body.split("\n", 1)[0]).split())
    text = body if body.split("\n", 1)[0] == head else f"{head}\n{body}"
    aid = article_id(clean_text(text)[0])
    if aid in ids:
        raise _Skip(f"same text as {ids[aid]} (already indexed)", ids[aid])
    published = page.published or parse_date(entry.get("published_parsed") or entry.get("updated_parsed"))
    meta = {"title": head, "date": published, "url": page.url or got.url,
            "link": link if canonical(link) != canonical(page.url or got.url) else None,
            "author": page.author or entry.get("author"), "source": page.site or title}
    meta = {k: v for k, v in meta.items() if v}
    host = urllib.parse.urlsplit(page.url or got.url).hostname or "feed"
    stem = f"{_slug(host.removeprefix('www.'), 30)}-{_slug(head) or aid}"
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=10_000)
    name = _write_new(folder, stem, f"---\n{front}---\n{text}\n")
    urls[key] = urls[page_url] = name
    ids[aid] = name
    return name
