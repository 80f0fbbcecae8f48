"""Pure functions that turn pipeline results into safe HTML and Markdown for the chat app.

Safety rules (everything the articles, the user or a file name contribute is *text*):

* ``esc`` turns text into HTML that Streamlit's Markdown renderer leaves alone: entities for ``& < > " '``
  plus numeric entities for every character Markdown, LaTeX or Streamlit's own directives react
  to (``$ * _ ` # [ ] ( ) ! ~ | \\ : { } + - . =``), and newlines as ``<br>``. The only tags in
  the output are the ones built here.
* Every HTML string meant for ``st.markdown(..., unsafe_allow_html=True)`` is one line that starts
  with ``<div``: a single CommonMark HTML block, so no Markdown or math parsing reaches the text.
* ``md_escape`` is for places that render Markdown without HTML (``st.error``, ``st.info``).
* Highlights are placed by character offsets into ``Article.text``; the text is never searched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

# Characters that Markdown (CommonMark + GFM), remark-math ($) or Streamlit's directives
# (:red[...], :material/icon:, emoji shortcodes) could interpret. Encoded as numeric entities,
# they display as themselves and never reach a parser as syntax.
_MD_SPECIAL = "$*_`#[]()!~|\\:{}+-.=^"
# One pass over the raw text: HTML's own specials and the Markdown ones together (escaping in
# two passes would re-escape the '#' of the first pass's entities).
_ENTITY = {ord(c): f"&#{ord(c)};" for c in _MD_SPECIAL + "&<>\"'"}
_NEWLINES = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def esc(text: object) -> str:
    """Text -> HTML that shows exactly that text, inert for HTML, Markdown and LaTeX."""
    s = _CONTROL.sub("", str(text))
    s = s.translate(_ENTITY)
    # Markdown treats a line break as the end of an HTML block: keep everything on one line.
    return _NEWLINES.sub("<br>", s)


def esc_attr(text: object) -> str:
    """Text for an HTML attribute value (quoted with double quotes); newlines become spaces."""
    return esc(" ".join(str(text).split()))


_MD_ESCAPE = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&=^\"'])")


def md_escape(text: object) -> str:
    """Text for Markdown without HTML (``st.error``/``st.info``/``st.caption``): every
    punctuation mark that means something is backslash-escaped; newlines become spaces."""
    s = " ".join(_CONTROL.sub("", str(text)).split())
    return _MD_ESCAPE.sub(r"\\\1", s)


# -- highlighting -----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    cls: str = "rag-hl"


def _clip(spans: Iterable[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """Spans clipped to [lo, hi), empty ones dropped, overlaps merged, sorted."""
    out: list[tuple[int, int]] = []
    for a, b in sorted((max(lo, int(a)), min(hi, int(b))) for a, b in spans):
        if a >= b:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def highlight(
    text: str,
    marks: Sequence[tuple[int, int]] = (),
    *,
    base: int = 0,
    context: tuple[int, int] | None = None,
    mark_id: str | None = None,
    mark_class: str = "rag-hl",
) -> str:
    """Escaped HTML of ``text`` with ``<mark>`` around each span of ``marks``.

    ``marks`` and ``context`` are absolute offsets into the article; ``base`` is the article
    offset of ``text[0]`` (0 when ``text`` is the whole article). ``context`` (optional) is shown
    as a softer background (the sentence or passage around the quote). Spans outside ``text``
    are clipped; overlapping marks are merged. The first mark gets ``id=mark_id``.
    """
    n = len(text)
    rel_marks = _clip(((a - base, b - base) for a, b in marks), 0, n)
    rel_ctx = _clip([(context[0] - base, context[1] - base)], 0, n) if context else []
    cuts = sorted({0, n, *(p for s in rel_marks for p in s), *(p for s in rel_ctx for p in s)})
    parts: list[str] = []
    first = True
    for a, b in zip(cuts, cuts[1:]):
        if a >= b:
            continue
        piece = esc(text[a:b])
        in_mark = any(x <= a and b <= y for x, y in rel_marks)
        in_ctx = any(x <= a and b <= y for x, y in rel_ctx)
        if in_mark:
            ident = f' id="{esc_attr(mark_id)}"' if (mark_id and first) else ""
            first = False
            piece = f'<mark class="{mark_class}"{ident}>{piece}</mark>'
        if in_ctx:
            piece = f'<span class="rag-ctx">{piece}</span>'
        parts.append(piece)
    return "".join(parts)


# -- answer pieces ----------------------------------------------------------------------


def confidence_label(confidence: float) -> str:
    """'high' (>= 0.75), 'medium' (>= 0.5) or 'low'."""
    if confidence >= 0.75:
        return "high"
    if confidence >= 0.5:
        return "medium"
    return "low"


def confidence_html(confidence: float) -> str:
    label = confidence_label(confidence)
    return (
        f'<span class="rag-conf rag-conf-{label}" title="Reader confidence, 0 to 1">'
        f"{label.capitalize()} confidence · {confidence:.2f}</span>"
    )


def _norm(s: str) -> str:
    return " ".join(str(s).split())


def searched_for(question: str, query: str) -> str | None:
    """The query to show when the pipeline searched for something other than the question."""
    if query and _norm(query) != _norm(question):
        return query
    return None


def searched_for_html(query: str) -> str:
    return f'<div class="rag-searched">Searched for: <q>{esc(query)}</q></div>'


def _refs(n: int) -> str:
    return "".join(f'<span class="rag-ref">[{i}]</span>' for i in range(1, n + 1))


def date_label(published: str | None) -> str:
    """'14 Mar 2024' from an ISO date (the input back when it cannot be read); 'undated' for None."""
    if not published:
        return "undated"
    try:
        dt = datetime.fromisoformat(published[:10])
        return f"{dt.day} {dt:%b %Y}"
    except ValueError:
        return published


def _date_html(published: str | None) -> str:
    if not published:
        return '<span class="rag-date rag-undated">undated</span>'
    return f'<time class="rag-date" datetime="{esc_attr(published)}">{esc(date_label(published))}</time>'


def disagreement_card_html(answer) -> str:
    """The card of an answer whose articles disagree: every version with its articles and dates,
    newest first, numbered like the citations listed under it."""
    items, n = [], 0
    for v in answer.disagreements:
        refs = "".join(f'<span class="rag-ref">[{n + i}]</span>' for i in range(1, len(v.citations) + 1))
        n += len(v.citations)
        where = "".join(
            f'<span class="rag-version-src">{esc(c.title)}<span class="rag-dot">·</span>'
            f'<span class="rag-file">{esc(c.file)}</span><span class="rag-dot">·</span>{_date_html(c.published)}</span>'
            for c in v.citations
        )
        items.append(
            f'<li class="rag-version" data-testid="rag-version" data-published="{esc_attr(v.published or "")}">'
            f'<div class="rag-version-answer">{esc(v.answer)}{refs}</div>'
            f'<div class="rag-meta">{where}</div></li>'
        )
    return (
        '<div class="rag-card rag-answer rag-disagree" data-testid="rag-disagreement">'
        '<div class="rag-card-label">The articles disagree</div>'
        f'<div class="rag-disagree-text">{len(answer.disagreements)} different answers, newest first:</div>'
        f'<ol class="rag-versions">{"".join(items)}</ol>'
        f'<div class="rag-meta">{confidence_html(answer.confidence)}</div></div>'
    )


def shown_citations(answer) -> list:
    """The citations listed under an answer: its own, or every version's when articles disagree."""
    if getattr(answer, "disagreement", False) and getattr(answer, "disagreements", None):
        return [c for v in answer.disagreements for c in v.citations]
    return list(answer.citations)


CORRECTED_HTML = ('<span class="rag-conf rag-conf-corrected" data-testid="rag-corrected" '
                  'title="The answer marked for this question in the chat, not the reader\'s">From a correction in the chat</span>')


def _meta_html(answer) -> str:
    return CORRECTED_HTML if getattr(answer, "corrected", False) else confidence_html(answer.confidence)


def answer_card_html(answer) -> str:
    """The card at the top of an answer (or of an abstention)."""
    if answer.abstained or answer.answer is None:
        why = ("This question was marked “no answer in the articles” in the chat, and the same articles "
               "were found now." if getattr(answer, "corrected", False) else
               "None of the indexed articles states an answer with enough confidence, so none is given.")
        return (
            '<div class="rag-card rag-abstain" data-testid="rag-abstain">'
            '<div class="rag-card-label">No answer</div>'
            "<div class=\"rag-abstain-title\">The articles don&#39;t answer this.</div>"
            f'<div class="rag-abstain-text">{esc(why)} The closest passages are listed below for reference; '
            "they are not an answer.</div>"
            f'<div class="rag-meta">{_meta_html(answer)}</div>'
            "</div>"
        )
    if getattr(answer, "disagreement", False) and getattr(answer, "disagreements", None):
        return disagreement_card_html(answer)
    n_src = answer.n_sources or len({c.article_id for c in answer.citations})
    src = f"{n_src} article{'s' if n_src != 1 else ''}" if n_src else ""
    long = " rag-answer-long" if len(answer.answer) > 60 else ""  # a long span wraps as text, not as a headline
    return (
        '<div class="rag-card rag-answer" data-testid="rag-answer">'
        '<div class="rag-card-label">Answer</div>'
        f'<div class="rag-answer-text{long}">{esc(answer.answer)}{_refs(len(answer.citations))}</div>'
        f'<div class="rag-meta">{_meta_html(answer)}'
        + (f'<span class="rag-dot">·</span><span>stated in {src}</span>' if src else "")
        + "</div></div>"
    )


def citation_html(number: int, citation, article_text: str | None = None) -> str:
    """A numbered citation: title, file, and its sentence with the quoted span marked.

    The sentence is taken from ``article_text`` by offsets when the article is at hand, else
    from ``citation.sentence`` (which starts at ``citation.sentence_start``).
    """
    s0, s1 = citation.sentence_start, citation.sentence_end
    if article_text is not None and 0 <= s0 <= citation.start <= citation.end <= s1 <= len(article_text):
        sentence = article_text[s0:s1]
        before = s0 > 0
        after = s1 < len(article_text)
    else:
        sentence = citation.sentence
        before = after = True
    body = highlight(sentence, [(citation.start, citation.end)], base=s0)
    lead = '<span class="rag-ell">…</span>' if before else ""
    tail = '<span class="rag-ell">…</span>' if after else ""
    rank = (
        f'<span class="rag-dot">·</span><span>retrieved passage #{citation.passage_rank}</span>'
        if citation.passage_rank
        else ""
    )
    page = getattr(citation, "page", None)
    rank = (f'<span class="rag-dot">·</span><span>page {page}</span>' if page else "") + rank
    dated = f'<span class="rag-dot">·</span>{_date_html(getattr(citation, "published", None))}'

    return (
        f'<div class="rag-cite" data-testid="rag-cite" data-file="{esc_attr(citation.file)}">'
        f'<div class="rag-cite-head"><span class="rag-num">[{number}]</span>'
        f'<span class="rag-title" title="{esc_attr(citation.title)}">{esc(citation.title)}</span></div>'
        f'<div class="rag-quote">{lead}{body}{tail}</div>'
        f'<div class="rag-meta"><span class="rag-file">{esc(citation.file)}</span>{dated}{rank}</div>'
        "</div>"
    )


def sources_html(answer) -> str:
    """Every article that supports the answer, with how many retrieved passages it had."""
    if not answer.sources:
        return ""
    rows = []
    for s in answer.sources:
        n = s.passages
        rows.append(
            '<li class="rag-source">'
            f'<span class="rag-title" title="{esc_attr(s.title)}">{esc(s.title)}</span>'
            f'<span class="rag-meta"><span class="rag-file">{esc(s.file)}</span>'
            f'<span class="rag-dot">·</span>{_date_html(getattr(s, "published", None))}'
            f'<span class="rag-dot">·</span>{n} passage{"s" if n != 1 else ""}</span></li>'
        )
    n = len(answer.sources)
    return (
        '<div class="rag-sources" data-testid="rag-sources">'
        f'<div class="rag-section">Sources · {n} article{"s" if n != 1 else ""}</div>'
        f'<ul>{"".join(rows)}</ul></div>'
    )


def related_html(number: int, hit) -> str:
    """A retrieved passage shown after an abstention: visibly *not* an answer."""
    return (
        '<div class="rag-related" data-testid="rag-related">'
        f'<div class="rag-cite-head"><span class="rag-num rag-num-muted">{number}</span>'
        f'<span class="rag-title" title="{esc_attr(hit.title)}">{esc(hit.title)}</span></div>'
        f'<div class="rag-related-text">{esc(hit.chunk.text)}</div>'
        f'<div class="rag-meta"><span class="rag-file">{esc(hit.file)}</span>'
        f'<span class="rag-dot">·</span>{_date_html(getattr(hit, "published", None))}'
        f'<span class="rag-dot">·</span><span>characters {hit.chunk.start:,}–{hit.chunk.end:,}</span></div>'
        "</div>"
    )


def related_header_html(n: int) -> str:
    return (
        '<div class="rag-section rag-section-related">Related passages (not an answer)'
        f'<span class="rag-count">{n}</span></div>'
    )


def empty_chat_html() -> str:
    """The welcome note of a chat without questions yet."""
    return (
        '<div class="rag-empty"><div class="rag-empty-title">Ask the news archive</div>'
        '<div class="rag-empty-text">Answers are quoted from the indexed articles, with every quote '
        "highlighted in its source. When the articles don&#39;t say, you will be told so.</div></div>"
    )


def user_text_html(text: str) -> str:
    return f'<div class="rag-user">{esc(text)}</div>'


def footer_html(answer, mode: str | None = None) -> str:
    total = answer.timings_ms.get("total")
    bits = []
    if total is not None:
        bits.append(f"{total / 1000:.2f} s")
    bits.append(f"{len(answer.passages)} passages searched")
    if mode:
        bits.append(esc(mode))
    return f'<div class="rag-footer">{" · ".join(bits)}</div>'


# -- index panel ------------------------------------------------------------------------


def built_when(iso: str | None) -> str:
    """'2026-11-22 00:32 UTC' from an ISO timestamp (the input back when it cannot be read)."""
    if not iso:
        return "unknown"
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    tz = dt.strftime("%Z") or ""
    if tz in ("UTC+00:00", "+00:00"):
        tz = "UTC"
    return f"{dt:%Y-%m-%d %H:%M} {tz}".strip()


def brand_html() -> str:
    return (
        '<div class="rag-brand"><div class="rag-brand-name">News Q&amp;A</div>'
        '<div class="rag-brand-sub">Offline, extractive answers quoted from your articles</div></div>'
    )


def article_header_html(title: str, file: str, n_chars: int, published: str | None = None,
                        byline: str | None = None, url: str | None = None) -> str:
    extra = f'<span class="rag-dot">·</span>{_date_html(published)}'
    if byline:
        extra += f'<span class="rag-dot">·</span><span>{esc(byline)}</span>'
    if url:
        extra += f'<span class="rag-dot">·</span><span class="rag-file">{esc(url)}</span>'
    return (
        f'<div class="rag-art-head" data-testid="rag-art-head"><div class="rag-title-full">{esc(title)}</div>'
        f'<div class="rag-meta"><span class="rag-file">{esc(file)}</span>{extra}<span class="rag-dot">·</span>'
        f"<span>{n_chars:,} characters</span></div></div>"
    )


def index_info_html(info) -> str:
    rows = [
        ("Articles", f"{info.n_articles:,}"),
        ("Passages", f"{info.n_chunks:,}"),
        ("Model", info.model_name),
        ("Built", built_when(info.built_at)),
    ]
    if getattr(info, "n_dated", 0):
        rows.insert(2, ("Published", f"{date_label(info.published_from)} – {date_label(info.published_to)} "
                                     f"({info.n_dated:,} dated)"))
    cells = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    return f'<div class="rag-index" data-testid="rag-index"><dl>{cells}</dl></div>'


def feed_report_html(report) -> str:
    """A feed poll: counts, then every item added, skipped (with the reason) or unchanged."""
    def row(cls: str, label: str, e) -> str:
        what = esc(e.title or e.url or "(no title)")
        detail = e.file if cls == "added" else e.reason
        return (f'<li class="rag-feed-{cls}" data-testid="rag-feed-{cls}"><b>{label}</b> {what}'
                f'<div class="rag-meta">{esc(detail or "")}</div></li>')

    rows = ([row("added", "Added", e) for e in report.added] + [row("skipped", "Skipped", e) for e in report.skipped]
            + [row("unchanged", "Unchanged", e) for e in report.unchanged])
    return (
        '<div class="rag-feed" data-testid="rag-feed">'
        f'<div class="rag-section">{esc(report.title or report.feed)}</div>'
        f'<div>{len(report.added)} added · {len(report.skipped)} skipped · {len(report.unchanged)} unchanged</div>'
        f'<ul>{"".join(rows)}</ul></div>'
    )


# -- the whole article ------------------------------------------------------------------


ARTICLE_MARK_ID = "rag-mark"


def article_document(
    text: str,
    marks: Sequence[tuple[int, int]] = (),
    *,
    context: tuple[int, int] | None = None,
    title: str = "",
    file: str = "",
    theme: str | None = None,
) -> str:
    """A standalone HTML page (for an iframe) with the escaped article, the span marked and a
    tiny script that scrolls the mark (or the context) into view, also after the frame is
    resized from zero (a frame laid out while hidden). ``theme`` ("light"/"dark", the app's
    theme) sets the text colour; without it the browser's preference decides."""
    body = highlight(text, marks, context=context, mark_id=ARTICLE_MARK_ID)
    target = ARTICLE_MARK_ID if marks else "rag-ctx-start"
    if not marks and context:
        # Give the first context segment an id so that it can be scrolled to.
        body = body.replace('<span class="rag-ctx">', '<span class="rag-ctx" id="rag-ctx-start">', 1)
    script = (
        "<script>(function(){var id=" + json.dumps(target) + ",done=false;"
        "function go(){var el=document.getElementById(id);if(!el||done)return;"
        "if(window.innerHeight<20)return;"
        "el.scrollIntoView({block:'center'});done=true;}"
        "window.addEventListener('load',go);window.addEventListener('resize',go);"
        "document.addEventListener('DOMContentLoaded',go);go();})();</script>"
    )
    body_class = f' class="{theme}"' if theme in ("light", "dark") else ""
    head = ""
    if title or file:
        head = (
            f'<header><div class="t">{esc(title)}</div>'
            f'<div class="f">{esc(file)} · {len(text):,} characters</div></header>'
        )
    # Defence in depth behind the escaping: the frame may run only its own scroll script and
    # inline styles, and may load nothing at all.
    script_hash = base64.b64encode(hashlib.sha256(script[len("<script>") : -len("</script>")].encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'"
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<style>{ARTICLE_CSS}</style></head><body{body_class}>{head}"
        f'<article>{body}</article>{script}</body></html>'
    )


ARTICLE_CSS = """
:root{color-scheme:light dark}
body{margin:0;padding:4px 18px 24px 4px;font:16px/1.65 "Source Serif Pro",Georgia,"Times New Roman",serif;
 color:#1f2328;background:transparent}
@media (prefers-color-scheme: dark){body{color:#e6e6e6}}
body.light{color:#1f2328;color-scheme:light}
body.dark{color:#e6e6e6;color-scheme:dark}
header{margin:0 0 14px;padding-bottom:10px;border-bottom:1px solid rgba(128,128,128,.3)}
header .t{font:600 17px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif}
header .f{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;opacity:.65;margin-top:4px}
article{max-width:52em}
mark.rag-hl{background:#ffe066;color:#1a1a1a;padding:1px 2px;border-radius:3px;
 -webkit-box-decoration-break:clone;box-decoration-break:clone;
 box-shadow:0 0 0 1px rgba(191,144,0,.45);scroll-margin:40vh}
.rag-ctx{background:rgba(255,224,102,.28);border-radius:2px}
"""


APP_CSS = """
<style>
:root{--rag-accent:#2563eb;--rag-hl:#ffe066;--rag-line:rgba(128,128,128,.25);--rag-muted:rgba(128,128,128,.95)}
.rag-card{border:1px solid var(--rag-line);border-radius:12px;padding:14px 18px 12px;margin:2px 0 14px}
.rag-answer{border-left:5px solid var(--rag-accent);background:rgba(37,99,235,.06)}
.rag-abstain{border:1px dashed rgba(180,120,20,.7);border-left:5px solid #d97706;background:rgba(217,119,6,.07)}
.rag-card-label{font-size:.72rem;letter-spacing:.08em;text-transform:uppercase;font-weight:600;opacity:.7;margin-bottom:2px}
.rag-answer-text{font-size:1.6rem;font-weight:650;line-height:1.3;margin:2px 0 8px}
.rag-answer-long{font-size:1.15rem;font-weight:600;line-height:1.45}
.rag-abstain-title{font-size:1.2rem;font-weight:650;margin:2px 0 4px}
.rag-abstain-text{font-size:.92rem;opacity:.85;margin-bottom:8px}
.rag-ref{font-size:.8rem;font-weight:600;color:var(--rag-accent);vertical-align:super;margin-left:3px}
.rag-meta{font-size:.8rem;color:var(--rag-muted);display:flex;flex-wrap:wrap;gap:0 2px;align-items:center}
.rag-dot{margin:0 6px;opacity:.6}
.rag-conf{font-weight:600;padding:1px 8px;border-radius:999px;font-size:.78rem}
.rag-conf-high{background:rgba(22,163,74,.14);color:#15803d}
.rag-conf-medium{background:rgba(202,138,4,.16);color:#a16207}
.rag-conf-low{background:rgba(220,38,38,.12);color:#b91c1c}
.rag-conf-corrected{background:rgba(37,99,235,.12);color:#1d4ed8}
.rag-section{font-size:.74rem;letter-spacing:.07em;text-transform:uppercase;font-weight:650;opacity:.75;margin:10px 0 6px}
.rag-section-related{color:#b45309;opacity:1}
.rag-count{margin-left:6px;padding:0 6px;border-radius:999px;background:rgba(217,119,6,.15);font-size:.7rem}
.rag-cite{padding:0}
[class*="st-key-related-"]{border-style:dashed !important;background:rgba(128,128,128,.06)}
[class*="st-key-cite-"] button p,[class*="st-key-related-"] button p{font-size:.82rem}
[class*="st-key-cite-"] button,[class*="st-key-related-"] button{min-height:0;padding:0}
.rag-cite-head{display:flex;gap:8px;align-items:baseline;margin-bottom:4px}
.rag-num{font-weight:700;color:var(--rag-accent);font-size:.85rem;flex:none}
.rag-num-muted{color:var(--rag-muted);border:1px dashed var(--rag-muted);border-radius:999px;padding:0 6px;font-size:.72rem}
.rag-title{font-weight:600;font-size:.9rem;line-height:1.35;overflow:hidden;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical}
.rag-quote{font-family:"Source Serif Pro",Georgia,serif;font-size:1rem;line-height:1.6;margin:2px 0 6px}
.rag-ell{opacity:.5;margin:0 2px}
mark.rag-hl{background:var(--rag-hl);color:#1a1a1a;padding:1px 3px;border-radius:3px;
 -webkit-box-decoration-break:clone;box-decoration-break:clone;box-shadow:0 0 0 1px rgba(191,144,0,.35)}
.rag-file{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.76rem}
.rag-sources ul{list-style:none;padding:0;margin:0}
.rag-sources li{margin:0}
.rag-source{display:flex;flex-direction:column;padding:6px 0;border-top:1px solid var(--rag-line)}
.rag-source:first-child{border-top:none}
.rag-related{padding:0}
.rag-related-text{font-size:.9rem;line-height:1.55;opacity:.8;max-height:7.8em;overflow:auto;margin:2px 0 6px;padding-right:4px}
.rag-searched{font-size:.85rem;color:var(--rag-muted);margin:0 0 8px}
.rag-searched q{font-style:italic}
.rag-notes ul{margin:0 0 8px;padding-left:18px;font-size:.85rem}
.rag-footer{font-size:.74rem;color:var(--rag-muted);margin-top:8px}
.rag-index dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:0;font-size:.85rem}
.rag-index dt{opacity:.7}
.rag-brand{margin:-6px 0 14px}
.rag-brand-name{font-size:1.25rem;font-weight:700;letter-spacing:-.01em}
.rag-brand-sub{font-size:.8rem;opacity:.7}
.rag-art-head{margin:-6px 0 4px}
.rag-title-full{font-weight:650;font-size:1.05rem;line-height:1.4;margin-bottom:2px}
.rag-empty{border:1px solid var(--rag-line);border-radius:12px;padding:18px 20px;margin:8px 0 16px}
.rag-empty-title{font-size:1.25rem;font-weight:650;margin-bottom:4px}
.rag-empty-text{font-size:.92rem;opacity:.8}
.rag-index dd{margin:0;font-weight:600;overflow-wrap:anywhere}
.rag-date{font-variant-numeric:tabular-nums}
.rag-feed ul{list-style:none;padding:0;margin:6px 0 0;font-size:.85rem}
.rag-feed li{padding:4px 0;border-top:1px solid var(--rag-line)}
.rag-feed-added b{color:#15803d}.rag-feed-skipped b{color:#b91c1c}
.rag-undated{font-style:italic;opacity:.8}
.rag-disagree{border-left-color:#9333ea;background:rgba(147,51,234,.06)}
.rag-disagree-text{font-size:.9rem;opacity:.85;margin:2px 0 6px}
.rag-versions{margin:0 0 8px;padding-left:22px}
.rag-version{margin:4px 0 8px}
.rag-version-answer{font-size:1.25rem;font-weight:650;line-height:1.3}
.rag-version-src{display:inline-flex;flex-wrap:wrap;align-items:center;margin-right:10px}
</style>
"""
