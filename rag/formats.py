"""What each kind of file holds: web pages, PDFs, bulk exports, and dates wherever they are.

* **Web pages** (``.html``/``.htm``): ``trafilatura`` finds the main text and the metadata
  (title, author, publication date, site name, canonical URL); ``htmldate`` looks for the date
  where trafilatura finds none. Navigation, related-story lists, cookie banners, comments and
  footers are left out by the library, not by rules of ours.
* **PDFs** (``.pdf``): ``pypdf`` extracts the text of each page; each page's start offset in the
  stored text is kept so that a citation can name its page. A PDF without a text layer (a scan)
  is reported as such.
* **Bulk exports** (``.jsonl``, ``.csv``): one article per record with the columns ``text`` and
  optionally ``title``, ``date``, ``url``, ``source``. A bad record is reported with its line
  number and reason; the others are used.
* **Dates** in plain text (``.txt``, ``.md``): a front-matter block (``---`` lines at the top,
  keys ``date``/``published``, ``title``, ``url``, ``author``, ``source``) or a dateline among
  the first five lines (see :func:`find_dateline`).

Every date is stored as ISO 8601: ``YYYY-MM-DD``, or ``YYYY-MM-DDTHH:MM:SS[+HH:MM]`` when the
source gives a time.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

# -- dates ------------------------------------------------------------------------------------

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_YEAR = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")
_HAS_MONTH = re.compile(rf"\b{_MONTH}(?=\W|$)|\b\d{{1,4}}[-/.]\d{{1,2}}[-/.]\d{{1,4}}\b", re.I)


def parse_date(value: object) -> str | None:
    """ISO 8601 of a date given as text, ``datetime``/``date`` or ``time.struct_time``; None when
    it cannot be read. Text must name a day, a month and a year (``2024``, ``March 2024`` and
    ``yesterday`` are refused): an article's date is never guessed."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "tm_year"):  # time.struct_time (feedparser)
        try:
            return _iso(datetime(*value[:6]))
        except (TypeError, ValueError):
            return None
    s = " ".join(str(value).split())
    if not s or len(s) > 80 or not _YEAR.search(s):
        return None
    try:
        return _iso(datetime.fromisoformat(s.replace("Z", "+00:00")))
    except ValueError:
        pass
    if not _HAS_MONTH.search(s):
        return None
    from email.utils import parsedate_to_datetime

    try:
        return _iso(parsedate_to_datetime(s))
    except (TypeError, ValueError, IndexError):
        pass
    from dateutil import parser as dparser

    try:
        dt = dparser.parse(s, default=datetime(1, 1, 1))
        # A part the text does not give is filled from the default: parse again with another
        # default day and month, and refuse when they show through ("March 2024").
        if dparser.parse(s, default=datetime(1, 2, 2)).date() != dt.date():
            return None
    except (ValueError, OverflowError, dparser.ParserError):
        return None
    if dt.year < 1800:
        return None
    return _iso(dt)


def _iso(dt: datetime) -> str:
    if (dt.hour, dt.minute, dt.second, dt.microsecond) == (0, 0, 0, 0) and dt.tzinfo is None:
        return dt.date().isoformat()
    return dt.replace(microsecond=0).isoformat()


_DATE_PREFIX = re.compile(r"^(?:(?:first\s+)?(?:published|updated|posted|date[d]?|last\s+updated)(?:\s+on)?\s*:?\s*)", re.I)
_DATE_TAIL = re.compile(r"\s+(?:by\s+.*|[|·•—–-]\s+.*)$", re.I)
_WIRE = re.compile(
    rf"^[A-Z][A-Za-z.'\- ]{{1,40}}?,\s+(?:[A-Z][A-Za-z]+,\s+)?"
    rf"(?P<date>{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+{_MONTH},?\s+\d{{4}})\b",
    re.I,
)


def find_dateline(text: str, lines: int = 5) -> str | None:
    """The date of a plain-text article from a dateline among its first ``lines`` non-empty lines.

    Two forms are read:

    * a line that is only a date, optionally after *Published*, *Updated*, *Posted* or *Date*
      (with or without *on* and a colon) and before a *by ...* credit: ``14 March 2024``,
      ``Published On Mon Mar 10 2025``, ``Posted May 17, 2024 by Priya Raman``,
      ``Updated: 2024-03-14 09:30``;
    * a wire-service dateline opening a paragraph: ``LONDON, March 12, 2024 (Reuters) - ...``
      or ``GENEVA, 3 June 2023 -- ...``.
    """
    seen = 0
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        seen += 1
        if seen > lines:
            break
        m = _WIRE.match(line)
        if m:
            found = parse_date(m.group("date"))
            if found:
                return found
        if len(line) <= 80:
            candidate = _DATE_TAIL.sub("", _DATE_PREFIX.sub("", line)).strip()
            if candidate and not re.search(r"[.!?]$", candidate) and len(candidate.split()) <= 7:
                found = parse_date(candidate)
                if found:
                    return found
    return None


# -- front matter -------------------------------------------------------------------------------

_FRONT = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


def split_front_matter(raw: str) -> tuple[dict, str]:
    """(metadata, body) of a text that opens with a YAML front-matter block; ({}, raw) otherwise.

    A block that is not a YAML mapping is left in the text as it is."""
    m = _FRONT.match(raw)
    if not m:
        return {}, raw
    import yaml

    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return {}, raw
    if not isinstance(meta, dict):
        return {}, raw
    return {str(k).lower(): v for k, v in meta.items()}, raw[m.end():]


def meta_str(meta: dict, *keys: str) -> str | None:
    for k in keys:
        v = meta.get(k)
        if v is not None and not isinstance(v, (dict, list)) and str(v).strip():
            return " ".join(str(v).split())
    return None


# -- web pages ----------------------------------------------------------------------------------


@dataclass
class Page:
    """What trafilatura found in a web page."""

    text: str
    title: str | None = None
    author: str | None = None
    published: str | None = None
    site: str | None = None
    url: str | None = None


_MIN_EXTRACTED = 250  # trafilatura's MIN_EXTRACTED_SIZE: below it the library tries its rescues


def extract_page(markup: str, url: str | None = None) -> Page:
    """Main text and metadata of an HTML page (offline; no request is made)."""
    import trafilatura

    doc = trafilatura.bare_extraction(markup, url=url, with_metadata=True, include_comments=False,
                                      include_tables=True, deduplicate=False)
    text = (doc.text or "") if doc is not None else ""
    if len(text) < _MIN_EXTRACTED:
        # A page whose whole article is short: the library's rescues (meant for pages where the
        # main pass missed the article) split paragraphs at inline tags. What the main pass found
        # without them is the article.
        from trafilatura.settings import use_config

        cfg = use_config()
        cfg.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
        small = trafilatura.bare_extraction(markup, url=url, with_metadata=True, include_comments=False,
                                            include_tables=True, deduplicate=False, config=cfg)
        if small is not None and (small.text or "").strip():
            doc, text = small, small.text
    published = parse_date(doc.date) if doc is not None and doc.date else None
    if published is None:
        published = _htmldate(markup)
    if doc is None:
        return Page(text=text, published=published)
    return Page(
        text=text,
        title=doc.title or None,
        author=doc.author or None,
        published=published,
        site=doc.sitename or None,
        url=doc.url or url or None,
    )


def _htmldate(markup: str) -> str | None:
    """The page's original publication date by htmldate, without guessing from free text."""
    try:
        from htmldate import find_date

        found = find_date(markup, original_date=True, extensive_search=False)
    except Exception:  # htmldate raises on markup it cannot parse; no date is the answer then
        return None
    return parse_date(found) if found else None


# -- PDF ----------------------------------------------------------------------------------------


class PdfProblem(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class PdfText:
    pages: list[str]
    title: str | None = None
    author: str | None = None
    created: str | None = None


def read_pdf(data: bytes) -> PdfText:
    """Text of each page of a PDF (pypdf); ``PdfProblem`` with the reason when there is none."""
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # warnings about sloppy files are not the user's
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise PdfProblem("encrypted PDF: it needs a password")
            except PdfProblem:
                raise
            except Exception as exc:
                raise PdfProblem(f"encrypted PDF that cannot be opened ({exc})") from exc
        pages = [(page.extract_text() or "") for page in reader.pages]
        meta = reader.metadata
    except PdfProblem:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files
        raise PdfProblem(f"not a readable PDF ({type(exc).__name__}: {str(exc)[:120]})") from exc
    if not pages:
        raise PdfProblem("PDF without pages")
    if not any(p.strip() for p in pages):
        raise PdfProblem(
            f"scanned PDF: its {len(pages)} page{'s have' if len(pages) != 1 else ' has'} no text layer "
            "(only images); run OCR on it first"
        )
    title = author = created = None
    if meta is not None:
        try:
            title = (meta.title or "").strip() or None
            author = (meta.author or "").strip() or None
            created = parse_date(meta.creation_date) if meta.creation_date else None
        except Exception:  # a malformed info dictionary: the text is still good
            pass
    return PdfText(pages=pages, title=title, author=author, created=created)


# -- bulk exports -------------------------------------------------------------------------------

EXPORT_COLUMNS = ("text", "title", "date", "url", "source")


@dataclass
class Record:
    line: int
    text: str
    title: str | None = None
    date: object = None
    url: str | None = None
    source: str | None = None
    raw: str = ""


@dataclass
class ExportProblem:
    line: int
    reason: str


@dataclass
class Export:
    records: list[Record] = field(default_factory=list)
    problems: list[ExportProblem] = field(default_factory=list)


def _record(line: int, obj: object, raw: str) -> Record:
    if not isinstance(obj, dict):
        raise ValueError(f"not an object but {type(obj).__name__}")
    obj = {str(k).strip().lower(): v for k, v in obj.items()}
    text = obj.get("text")
    if text is None:
        raise ValueError("no 'text' field")
    if not isinstance(text, str):
        raise ValueError(f"'text' is {type(text).__name__}, not a string")
    if not text.strip():
        raise ValueError("empty 'text'")
    out = Record(line=line, text=text, raw=raw)
    for key in ("title", "url", "source"):
        v = obj.get(key)
        if v is not None and not isinstance(v, (str, int, float)):
            raise ValueError(f"'{key}' is {type(v).__name__}, not a string")
        setattr(out, key, " ".join(str(v).split()) or None if v is not None else None)
    out.date = obj.get("date")
    return out


def read_jsonl(text: str) -> Export:
    """One JSON object a line; blank lines are ignored."""
    out = Export()
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            out.problems.append(ExportProblem(lineno, f"invalid JSON ({exc.msg} at column {exc.colno})"))
            continue
        try:
            out.records.append(_record(lineno, obj, line))
        except ValueError as exc:
            out.problems.append(ExportProblem(lineno, str(exc)))
    return out


def read_csv(text: str) -> Export:
    """A header row naming the columns (``text`` required), then one article a row. A record may
    span several lines (quoted newlines); its line number is the one it starts on."""
    out = Export()
    lines = _Lines(text)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        out.problems.append(ExportProblem(1, f"no header row ({exc})" if str(exc) else "no header row"))
        return out
    columns = [h.strip().lower() for h in header]
    if "text" not in columns:
        out.problems.append(ExportProblem(1, f"the header has no 'text' column (columns: {', '.join(columns)})"))
        return out
    rows = _csv_rows(reader, lines)
    for lineno, row, error in rows:
        if error:
            out.problems.append(ExportProblem(lineno, error))
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            out.problems.append(ExportProblem(lineno, f"{len(row)} fields, the header has {len(columns)}"))
            continue
        try:
            out.records.append(_record(lineno, dict(zip(columns, row)), "\x1f".join(row)))
        except ValueError as exc:
            out.problems.append(ExportProblem(lineno, str(exc)))
    return out


class _Lines:
    """The lines of a text, counted (a CSV record may span several)."""

    def __init__(self, text: str):
        self._it = iter(io.StringIO(text, newline=""))
        self.n = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.n += 1
        return line


def _csv_rows(reader, lines: _Lines) -> Iterator[tuple[int, list[str], str | None]]:
    """(line, row, error) of each record. After a malformed record (a field over the csv module's
    limit, a stray quote) reading starts again on the next line: later rows are kept."""
    while True:
        start = lines.n + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, [], f"malformed CSV ({exc})"
            reader = csv.reader(lines)  # a fresh reader, from the line after the bad one
            continue
        yield start, row, None


def day(value: object, what: str = "date") -> str | None:
    """``YYYY-MM-DD`` of a date filter given as ``date``/``datetime`` or text (``2024-03-14``;
    any form :func:`parse_date` reads); None for None or "". A bad value is a clear error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    found = parse_date(value)
    if found is None:
        from .errors import RagError

        raise RagError(f"Invalid date for {what}: {str(value)[:40]!r} (use YYYY-MM-DD).")
    return found[:10]
