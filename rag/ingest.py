"""Articles folder -> cleaned ``Article`` records, with a reason for every file not used.

Which path a file takes (``rag/formats.py`` reads the formats):

* ``.html``/``.htm``: **trafilatura** extracts the article body and its metadata (title,
  author, date, site, canonical URL; ``htmldate`` for a date trafilatura does not find). The
  page's markup tells what is furniture, so none of the plain-text rules below apply; the text
  is only normalized (see :func:`normalize_text`) and the title put on the first line.
* ``.pdf``: **pypdf**, text per page, then the plain-text rules page by page.
* ``.jsonl``/``.csv`` bulk exports: one article per record (``text``, optional ``title``,
  ``date``, ``url``, ``source``), the plain-text rules on each ``text``.
* ``.txt``/``.md``/``.markdown``: an optional YAML front matter, then the plain-text rules.

Plain-text cleaning rules (general, not tied to any file), for text without markup to go by:

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

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
EXPORT_SUFFIXES = (".jsonl", ".csv")
SUPPORTED_SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf", *EXPORT_SUFFIXES)
SUPPORTED_HINT = "use .txt, .md, .html, .pdf, .jsonl or .csv"
RECORD_SEP = "#"  # an export's records are named "<file>#<name>"

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

    def add(self, name: str, article: Article, warn_encoding: bool = True) -> None:
        """Take the next file's article (files come in name order): an exact duplicate of an
        earlier one is indexed once, under the first name, and reported."""
        if warn_encoding and article.encoding not in ("utf-8", "ascii", "pdf"):
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


def normalize_text(raw: str) -> str:
    """Line endings, control characters, NFC, stripped lines, one blank line at most: the
    cleaning of text whose furniture was already removed by its markup (web pages)."""
    return clean_text(raw, rules=False)[0]


def clean_text(raw: str, rules: bool = True) -> tuple[str, int]:
    """Normalize and clean article text. Returns (text, number of content lines removed).

    ``rules=False`` only normalizes (no furniture or repeated-paragraph rule)."""
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
        if not rules:
            kept.append(line)
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


@dataclass
class FileArticles:
    """What one file gave: its articles (one, or one per export record), records that could not
    be used (``file:line``) and warnings."""

    articles: list[Article] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _one_line(s: str | None, limit: int = 200) -> str:
    """A title or name: control characters dropped, NFC, one line, at most ``limit`` characters."""
    s = " ".join(unicodedata.normalize("NFC", _CONTROL.sub("", (s or "").replace("\ufeff", ""))).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _title_from(text: str, markdown: bool) -> str:
    first = text.split("\n", 1)[0]
    return first.lstrip("#").strip() if markdown else first


def _read_bytes(path: Path, max_bytes: int, setting: str = "max_file_bytes") -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnusableFile(f"too large: {size:,} bytes, over the limit of {max_bytes:,} (setting {setting})")
        data = path.read_bytes()
    except OSError as exc:
        raise UnusableFile(f"cannot be read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise UnusableFile("empty file")
    return data


def read_file(path: Path, name: str, max_bytes: int, max_export_bytes: int | None = None) -> FileArticles:
    """Read one file into its articles, or raise ``UnusableFile`` with the reason none came out.

    A bulk export (``.jsonl``/``.csv``, limit ``max_export_bytes``) gives one article per good
    record; its bad records are in ``skipped`` as ``<file>:<line>``."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnusableFile(f"unsupported file type '{suffix or '(none)'}' ({SUPPORTED_HINT})")
    if suffix in EXPORT_SUFFIXES:
        limit = max_export_bytes or max_bytes
        return read_export(_read_bytes(path, limit, "max_export_bytes" if max_export_bytes else "max_file_bytes"), name)
    data = _read_bytes(path, max_bytes)
    if suffix == ".pdf":
        return FileArticles(articles=[_pdf_article(data, name)])
    if _looks_binary(data):
        raise UnusableFile("binary file, not text")
    raw, encoding = decode(data, name)
    sha = hashlib.sha256(data).hexdigest()
    if suffix in HTML_SUFFIXES:
        return FileArticles(articles=[_html_article(raw, name, sha, encoding)])
    return FileArticles(articles=[_text_article(raw, name, sha, encoding, markdown=suffix != ".txt")])


def _text_article(raw: str, name: str, sha: str, encoding: str, *, markdown: bool) -> Article:
    from .formats import find_dateline, meta_str, parse_date, split_front_matter

    meta, body = split_front_matter(raw)
    text, removed = clean_text(body)
    if not text.strip():
        raise UnusableFile("no text left after cleaning (only markup or page furniture)")
    published = parse_date(meta_str(meta, "date", "published", "pubdate")) or find_dateline(text)
    return Article(
        id=article_id(text), file=name, title=_one_line(meta_str(meta, "title") or _title_from(text, markdown)),
        text=text, source_sha256=sha, encoding=encoding, removed_lines=removed, published=published,
        author=meta_str(meta, "author"), site=meta_str(meta, "source", "site"), url=meta_str(meta, "url"),
        link=meta_str(meta, "link"),
    )


def _html_article(raw: str, name: str, sha: str, encoding: str) -> Article:
    from .formats import extract_page

    page = extract_page(raw)
    body = normalize_text(page.text)
    if not body.strip():
        raise UnusableFile("no article text found in the page")
    title = _one_line(page.title) or _title_from(body, False)
    # The headline opens the stored text, as in a plain-text article (it is searched too).
    text = body if body.split("\n", 1)[0].strip() == title else normalize_text(f"{title}\n{body}")
    return Article(
        id=article_id(text), file=name, title=_one_line(title), text=text, source_sha256=sha, encoding=encoding,
        published=page.published, author=_one_line(page.author) or None, site=_one_line(page.site) or None,
        url=page.url,
    )


def _pdf_article(data: bytes, name: str) -> Article:
    from .formats import PdfProblem, find_dateline, read_pdf

    try:
        pdf = read_pdf(data)
    except PdfProblem as exc:
        raise UnusableFile(exc.reason) from exc
    parts: list[str] = []
    starts: list[int] = []
    removed = 0
    pos = 0
    for page in pdf.pages:
        cleaned, n = clean_text(page)
        removed += n
        if cleaned:
            if parts:
                pos += 2  # the blank line between pages
            starts.append(pos)
            parts.append(cleaned)
            pos += len(cleaned)
        else:
            starts.append(pos + (2 if parts else 0))  # an empty page starts where the next text does
    text = "\n\n".join(parts)
    if not text.strip():
        raise UnusableFile("no text left after cleaning (only page furniture)")
    title = _one_line(pdf.title) or _title_from(text, False)
    return Article(
        id=article_id(text), file=name, title=_one_line(title), text=text,
        source_sha256=hashlib.sha256(data).hexdigest(), encoding="pdf", removed_lines=removed,
        published=find_dateline(text) or pdf.created, author=_one_line(pdf.author) or None, pages=starts,
    )


def _slug(s: str, limit: int = 60) -> str:
    words = re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", s).lower())
    out = ""
    for w in words:
        if len(out) + len(w) + 1 > limit:
            break
        out = f"{out}-{w}" if out else w
    return out


def record_file(name: str) -> str:
    """The file an article came from: ``news.jsonl`` for the record ``news.jsonl#some-title``."""
    base, sep, _ = name.partition(RECORD_SEP)
    return base if sep and Path(base).suffix.lower() in EXPORT_SUFFIXES else name


def read_export(data: bytes, name: str) -> FileArticles:
    """Each good record of a ``.jsonl`` or ``.csv`` export as an article named ``<file>#<slug of
    its title>`` (its line number when it has no title); the id is the hash of its text, as for
    every article, so it does not change when records move."""
    from .formats import parse_date, read_csv, read_jsonl

    out = FileArticles()
    if name.lower().endswith(".jsonl"):
        raw, encodings, problems = _decode_lines(data)
        export = read_jsonl(raw)
        export.problems = sorted(problems + export.problems, key=lambda p: p.line)
        for line, enc in sorted(encodings.items()):
            out.warnings.append(f"{name} line {line}: not UTF-8, decoded as {enc}")
    else:
        if _looks_binary(data):
            raise UnusableFile("binary file, not text")
        raw, encoding = decode(data, name)
        export = read_csv(raw)
        encodings = {rec.line: encoding for rec in export.records}
        if encoding not in ("utf-8", "ascii"):
            out.warnings.append(f"{name}: not UTF-8, decoded as {encoding}")
    for p in export.problems:
        out.skipped.append(Skipped(file=f"{name}:{p.line}", reason=f"line {p.line}: {p.reason}"))
    used: set[str] = set()
    for rec in export.records:
        text, removed = clean_text(rec.text)
        if not text.strip():
            out.skipped.append(Skipped(file=f"{name}:{rec.line}", reason=f"line {rec.line}: no text left after cleaning"))
            continue
        published = parse_date(rec.date)
        if rec.date not in (None, "") and published is None:
            out.warnings.append(f"{name} line {rec.line}: date {str(rec.date)[:40]!r} not understood; indexed without a date")
        title = _one_line(rec.title) or _one_line(_title_from(text, False))
        slug = _slug(rec.title or "") or f"line-{rec.line}"
        record_name, n = f"{name}{RECORD_SEP}{slug}", 2
        while record_name in used:
            record_name, n = f"{name}{RECORD_SEP}{slug}-{n}", n + 1
        used.add(record_name)
        out.articles.append(Article(
            id=article_id(text), file=record_name, title=title, text=text,
            source_sha256=hashlib.sha256(rec.raw.encode("utf-8")).hexdigest(), encoding=encodings.get(rec.line, "utf-8"),
            removed_lines=removed, published=published, site=rec.source, url=rec.url,
        ))
    if not out.articles:
        reasons = "; ".join(s.reason for s in out.skipped[:3]) or "no records"
        raise UnusableFile(f"no usable record in the export ({reasons})")
    return out


def _decode_line(line: bytes) -> tuple[str, str]:
    """One line of an export: UTF-8, else Windows-1252 (a line is too short for detection to tell
    Latin code pages from others; the old news exports are Western), else what detection says."""
    try:
        return line.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return line.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return decode(line, "")


def _decode_lines(data: bytes) -> tuple[str, dict[int, str], list]:
    """A JSON Lines export decoded and judged line by line: one NUL byte or one Latin-1 line
    spoils only its own record. Returns the text (a bad line left blank, so that line numbers
    hold), the lines not in UTF-8 with the encoding used, and the problems (bad lines)."""
    from .formats import ExportProblem

    lines, encodings, problems = [], {}, []
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if lineno == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if b"\x00" in line:  # (control bytes other than NUL make the line invalid JSON)
            problems.append(ExportProblem(lineno, "binary data (a NUL byte), not text"))
            lines.append("")
            continue
        try:
            text, enc = _decode_line(line)
        except UnusableFile as exc:
            problems.append(ExportProblem(lineno, exc.reason))
            lines.append("")
            continue
        if enc != "utf-8":
            encodings[lineno] = enc
        lines.append(text)
    return "\n".join(lines), encodings, problems


def article_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def list_article_files(folder: Path) -> list[Path]:
    """Every regular, non-hidden file directly in ``folder`` (sorted by name)."""
    if not folder.exists():
        raise IngestError(f"Articles folder not found: {folder}")
    if not folder.is_dir():
        raise IngestError(f"Not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def load_folder(folder: Path, max_bytes: int, max_export_bytes: int | None = None) -> IngestResult:
    """Read every file of ``folder``. Bad files (and bad export records) are reported in
    ``skipped``, never raised."""
    result = IngestResult()
    for path in list_article_files(folder):
        name = path.name
        try:
            got = read_file(path, name, max_bytes, max_export_bytes)
        except UnusableFile as exc:
            result.skipped.append(Skipped(file=name, reason=exc.reason))
            continue
        result.skipped.extend(got.skipped)
        result.warnings.extend(got.warnings)
        for article in got.articles:
            # An export's warnings name its lines (read_export); other files warn here.
            result.add(article.file, article, warn_encoding=Path(name).suffix.lower() not in EXPORT_SUFFIXES)
    return result


_MAX_NAME_BYTES = 255
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def same_name_in(folder: Path, name: str) -> Path | None:
    """The file of ``folder`` that ``name`` would take the place of: the same name once both are
    NFC-normalised (``café.txt`` composed or decomposed), or None."""
    want = unicodedata.normalize("NFC", name)
    try:
        return next((p for p in Path(folder).iterdir() if unicodedata.normalize("NFC", p.name) == want), None)
    except OSError:
        return None


def safe_name(name: str) -> tuple[str, str | None]:
    """A file name that stays inside the articles folder, or the reason it is refused.

    Directory parts (``/`` and ``\\``) are stripped so that ``../../x.txt`` becomes ``x.txt``;
    the name is NFC-normalised; NUL and control characters, bidirectional controls (U+202A-202E,
    U+2066-2069, U+200E/F, U+061C), hidden names, names over 255 bytes and unsupported types are
    refused.
    """
    if re.search(r"[\x00-\x1f\x7f-\x9f]", name):  # every control character, tab and newline too
        return "", "refused: file name contains control characters"
    if _BIDI.search(name):
        return "", "refused: file name contains bidirectional control characters (they make a name look like another)"
    name = unicodedata.normalize("NFC", name)  # café.txt typed or pasted: one name, whichever form it came in
    base = re.split(r"[\\/]", name)[-1].strip()
    if not base or base in (".", ".."):
        return "", "refused: empty file name"
    if base.startswith("."):
        return "", "refused: hidden file names (starting with '.') are not accepted"
    if len(base.encode("utf-8")) > _MAX_NAME_BYTES:
        return "", f"refused: file name longer than {_MAX_NAME_BYTES} bytes"
    if Path(base).suffix.lower() not in SUPPORTED_SUFFIXES:
        return "", f"refused: unsupported file type '{Path(base).suffix or '(none)'}' ({SUPPORTED_HINT})"
    return base, None
