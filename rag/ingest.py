"""Articles folder -> cleaned ``Article`` records, with a reason for every file not used.

Cleaning rules (general, not tied to any file):

* Line endings become ``\\n``; control characters are dropped; text is NFC-normalized; each
  line is stripped and runs of blank lines collapse to one.
* **Page furniture** is dropped: a short line (at most 6 words, no sentence punctuation at its
  end) made only of interface words ("share", "subscribe", "comments", "dialog", ...),
  stop words and counters ("<100", "1.2K"). Such a line carries no news content by
  construction: every word in it is either furniture or function. "Share Dialog",
  "<100 subscribers" and "No comments yet" match; a headline never does.
* **Repeated paragraphs** are dropped: a line of at least 4 words that repeats an earlier line
  of the same article word for word (case and spacing aside). Scraped pages often repeat
  their opening; indexing it twice would crowd the results with copies.

The cleaned text is what the index stores, so every offset points into it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .errors import IngestError
from .types import Article, Skipped

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")

# Words that appear in the interface of news and blog pages, never as content on their own.
_FURNITURE = frozenset(
    """
    share shares shared sharing dialog dialogue subscribe subscribed subscriber subscribers
    subscription follow followers following like likes comment comments reply replies tweet
    retweet email print menu search login log sign signin signup register newsletter cookie
    cookies accept advertisement advertising ad ads sponsored promoted related read more
    continue reading skip content navigation toggle close open copy link links facebook twitter
    whatsapp linkedin reddit pinterest telegram instagram youtube rss feed home top back next
    previous prev page loading view views listen min mins save saved bookmark report
    """.split()
)
_STOP = frozenset(
    """
    a an the no not yet to of in on for and or by with this that these those your you our my be
    is are was be first now here all up out it its via x
    """.split()
)
_COUNTER = re.compile(r"^[<>~+]?[\d.,]+[kKmM]?\+?$")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[<>~+]?\d[\d.,]*[kKmM]?\+?", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0, DEL and C1 (terminal escapes such as CSI \x9b)
_LATIN_CODEPAGES = frozenset(
    "cp1252 latin_1 iso8859_15 cp1250 cp1257 cp775 cp850 cp437 cp852 iso8859_2 iso8859_4 iso8859_13 "
    "iso8859_3 iso8859_9 iso8859_10 iso8859_14 iso8859_16 mac_latin2 mac_roman cp1254 cp858".split()
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


class UnusableFile(Exception):
    """A file that cannot become an article; ``reason`` is shown to the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class IngestResult:
    articles: list[Article] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    _by_id: dict[str, Article] = field(default_factory=dict, repr=False)

    def add(self, name: str, article: Article) -> None:
        """Take the next file's article (files come in name order): an exact duplicate of an
        earlier one is indexed once, under the first name, and reported."""
        if article.encoding not in ("utf-8", "ascii"):
            self.warnings.append(f"{name}: not UTF-8, decoded as {article.encoding}")
        kept = self._by_id.get(article.id)
        if kept is not None:
            kept.aliases.append(name)
            self.duplicates.setdefault(kept.file, []).append(name)
            self.skipped.append(Skipped(file=name, reason=f"exact duplicate of {kept.file} (indexed once)"))
            return
        self._by_id[article.id] = article
        self.articles.append(article)


def is_furniture(line: str) -> bool:
    stripped = line.strip()
    if not stripped or len(stripped) > 60 or stripped[-1] in ".!?\"'”:;":
        return False
    words = _WORD.findall(stripped)
    if not words or len(words) > 6:
        return False
    has_furniture = False
    for word in words:
        low = word.lower()
        if low in _FURNITURE:
            has_furniture = True
        elif low in _STOP or _COUNTER.match(word):
            continue
        else:
            return False
    return has_furniture


def _norm_key(line: str) -> str:
    return " ".join(line.lower().split())


def clean_text(raw: str) -> tuple[str, int]:
    """Normalize and clean article text. Returns (text, number of content lines removed)."""
    # Drop BOMs and control characters before normalizing: one between a letter and its accent
    # would otherwise keep the pair apart, and the stored text would not be NFC.
    text = _CONTROL.sub("", raw.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", ""))
    text = unicodedata.normalize("NFC", text)
    kept: list[str] = []
    seen: set[str] = set()
    removed = 0
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            if kept and kept[-1] != "":
                kept.append("")
            continue
        if is_furniture(line):
            removed += 1
            continue
        key = _norm_key(line)
        if len(key.split()) >= 4:
            if key in seen:
                removed += 1
                continue
            seen.add(key)
        kept.append(line)
    while kept and kept[-1] == "":
        kept.pop()
    return "\n".join(kept), removed


_BLOCK_TAGS = (
    "p div br h1 h2 h3 h4 h5 h6 li ul ol table tr td th blockquote pre section article "
    "header footer dd dt figcaption title".split()
)
_DROP_TAGS = "script style noscript template nav footer aside form iframe svg canvas button select".split()


def html_to_text(markup: str) -> tuple[str, str | None]:
    """Visible text of an HTML page with block elements on their own lines, and its title."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    title = None
    if soup.title and soup.title.get_text(strip=True):
        title = soup.title.get_text(" ", strip=True)
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    if soup.head:
        soup.head.decompose()
    h1 = soup.find("h1")
    if not title and h1:
        title = h1.get_text(" ", strip=True)
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().split("\n"))
    return "\n".join(lines), title


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return True
    # Many C0 control bytes (other than tab/newline/carriage return/form feed) mean not text.
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls > max(4, len(head) // 50)


def decode(data: bytes, name: str) -> tuple[str, str]:
    """Decode file bytes: UTF-8 first, then the encoding an HTML page declares, then detection."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    match = _META_CHARSET.search(data[:4096])
    if match:
        declared = match.group(1).decode("ascii", "ignore")
        try:
            return data.decode(declared), declared.lower()
        except (LookupError, UnicodeDecodeError):
            pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches or matches[0].chaos > 0.25:
        raise UnusableFile("undecodable text: not UTF-8 and no reliable encoding could be detected")
    best = matches[0]
    # Latin-script code pages are indistinguishable on short texts (the detector may say
    # cp775 for French); among them choose Windows-1252, the one Western news sites used.
    if best.encoding in _LATIN_CODEPAGES:
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    return str(best), best.encoding


def read_article(path: Path, name: str, max_bytes: int) -> Article:
    """Read one file into an Article or raise ``UnusableFile`` with the reason."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnusableFile(f"unsupported file type '{suffix or '(none)'}' (use .txt, .md or .html)")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnusableFile(f"too large: {size:,} bytes, over the limit of {max_bytes:,} (setting max_file_bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise UnusableFile(f"cannot be read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise UnusableFile("empty file")
    if _looks_binary(data):
        raise UnusableFile("binary file, not text")
    raw, encoding = decode(data, name)
    title = None
    if suffix in (".html", ".htm"):
        raw, title = html_to_text(raw)
        # The <title> is shown too: same control-character and normalization rules as the text.
        title = " ".join(unicodedata.normalize("NFC", _CONTROL.sub("", (title or "").replace("\ufeff", ""))).split())
    text, removed = clean_text(raw)
    if not text.strip():
        raise UnusableFile("no text left after cleaning (only markup or page furniture)")
    if not title:
        first = text.split("\n", 1)[0]
        title = first.lstrip("#").strip() if suffix in (".md", ".markdown") else first
    title = " ".join(title.split())
    if len(title) > 200:
        title = title[:199] + "…"
    return Article(
        id=article_id(text),
        file=name,
        title=title,
        text=text,
        source_sha256=hashlib.sha256(data).hexdigest(),
        encoding=encoding,
        removed_lines=removed,
    )


def article_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def list_article_files(folder: Path) -> list[Path]:
    """Every regular, non-hidden file directly in ``folder`` (sorted by name)."""
    if not folder.exists():
        raise IngestError(f"Articles folder not found: {folder}")
    if not folder.is_dir():
        raise IngestError(f"Not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def load_folder(folder: Path, max_bytes: int) -> IngestResult:
    """Read every file of ``folder``. Bad files are reported in ``skipped``, never raised."""
    result = IngestResult()
    for path in list_article_files(folder):
        name = path.name
        try:
            article = read_article(path, name, max_bytes)
        except UnusableFile as exc:
            result.skipped.append(Skipped(file=name, reason=exc.reason))
            continue
        result.add(name, article)
    return result


_MAX_NAME_BYTES = 255


def safe_name(name: str) -> tuple[str, str | None]:
    """A file name that stays inside the articles folder, or the reason it is refused.

    Directory parts (``/`` and ``\\``) are stripped so that ``../../x.txt`` becomes ``x.txt``;
    NUL and control characters, hidden names, names over 255 bytes and unsupported types
    are refused.
    """
    if re.search(r"[\x00-\x1f\x7f-\x9f]", name):  # every control character, tab and newline too
        return "", "refused: file name contains control characters"
    base = re.split(r"[\\/]", name)[-1].strip()
    if not base or base in (".", ".."):
        return "", "refused: empty file name"
    if base.startswith("."):
        return "", "refused: hidden file names (starting with '.') are not accepted"
    if len(base.encode("utf-8")) > _MAX_NAME_BYTES:
        return "", f"refused: file name longer than {_MAX_NAME_BYTES} bytes"
    if Path(base).suffix.lower() not in SUPPORTED_SUFFIXES:
        return "", f"refused: unsupported file type '{Path(base).suffix or '(none)'}' (use .txt, .md or .html)"
    return base, None
