"""Escaping and highlighting of article text (ui/render.py): pure functions, no Streamlit."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ui import render  # noqa: E402

TAG = re.compile(r"<[^>]*>")


def plain(fragment: str) -> str:
    """What a browser would show as text: our <br> as newlines, our tags gone, entities decoded."""
    return html.unescape(TAG.sub("", fragment.replace("<br>", "\n")))


def marked(fragment: str) -> list[str]:
    return [plain(m) for m in re.findall(r"<mark[^>]*>(.*?)</mark>", fragment)]


HOSTILE = (
    "Price: $35 million and $10 **bold** _it_ `code` # head [x](javascript:alert(1)) "
    "![img](http://example.invalid/a.png) <script>alert(1)</script> <img src=x onerror=alert(1)> "
    "$$x^2$$ \\(y\\) :red[red] :smile: ~~s~~ | a | www.example.com {b} +1 -2 1. 3=3 ^up"
)


# -- esc ------------------------------------------------------------------------------------


def test_esc_leaves_no_markup_and_no_markdown_syntax():
    out = render.esc(HOSTILE)
    assert "<" not in out and ">" not in out
    for ch in "$*_`#[]()!~|\\:{}=^":
        assert ch not in out.replace("&#", "").replace(";", ""), ch
    assert plain(out) == HOSTILE


def test_esc_dollar_is_an_entity():
    assert render.esc("$35 million") == "&#36;35 million"
    assert render.esc("$x$") == "&#36;x&#36;"


def test_esc_quotes_and_ampersand_are_escaped_once():
    out = render.esc("Microsoft's \"deal\" & more &amp;")
    assert out == "Microsoft&#39;s &#34;deal&#34; &#38; more &#38;amp;"
    assert plain(out) == "Microsoft's \"deal\" & more &amp;"


def test_esc_newlines_become_br_and_output_is_one_line():
    out = render.esc("a\nb\r\nc\rd\n\ne")
    assert "\n" not in out and "\r" not in out
    assert out == "a<br>b<br>c<br>d<br><br>e"


def test_esc_drops_control_characters():
    assert render.esc("a\x00b\x1bc\x7fd\te") == "abcd\te"


def test_esc_unicode_is_kept():
    s = "Zürich — 東京 · naïve café 🚀 € ½"
    assert render.esc(s) == s


def test_esc_attr_is_single_line():
    assert render.esc_attr('a "b"\nc') == "a &#34;b&#34; c"


def test_md_escape_backslashes_markdown_and_math():
    out = render.md_escape("file $1$ **b** <x> :red[r] #h\nnext")
    assert out == r"file \$1\$ \*\*b\*\* \<x\> \:red\[r\] \#h next"


# -- highlight ----------------------------------------------------------------------------


TEXT = "49% of shares. Microsoft holds 49% of OpenAI."


def test_highlight_exact_span_by_offsets():
    start = TEXT.index("Microsoft holds 49%") + len("Microsoft holds ")
    out = render.highlight(TEXT, [(start, start + 3)])
    assert marked(out) == ["49%"]
    # the other "49%" (at 0) is not marked: offsets, not search
    assert out.startswith("49&#37;") or out.startswith("49%")
    assert plain(out) == TEXT


def test_highlight_at_start_and_end_of_text():
    out = render.highlight(TEXT, [(0, 3), (len(TEXT) - 7, len(TEXT))])
    assert out.startswith('<mark class="rag-hl">49%</mark>')
    assert out.endswith("</mark>")
    assert marked(out) == ["49%", "OpenAI."]
    assert plain(out) == TEXT


def test_highlight_whole_text_and_empty_text():
    assert marked(render.highlight("abc", [(0, 3)])) == ["abc"]
    assert render.highlight("", [(0, 0)]) == ""
    assert render.highlight("abc", []) == "abc"


def test_highlight_with_base_offset():
    article = "Intro. The revenue was $35 million in 2022. Outro."
    s0, s1 = 7, 43
    sentence = article[s0:s1]
    q0 = article.index("$35 million")
    out = render.highlight(sentence, [(q0, q0 + len("$35 million"))], base=s0)
    assert marked(out) == ["$35 million"]
    assert "&#36;35 million</mark>" in out
    assert "$" not in out
    assert plain(out) == sentence


def test_highlight_clips_and_merges():
    out = render.highlight("abcdef", [(-5, 2), (1, 4), (10, 20), (5, 5)])
    assert marked(out) == ["abcd"]
    assert plain(out) == "abcdef"


def test_highlight_escapes_inside_mark():
    text = "x <script>alert(1)</script> y"
    a = text.index("<script>")
    out = render.highlight(text, [(a, a + len("<script>alert(1)</script>"))])
    assert "<script" not in out
    assert marked(out) == ["<script>alert(1)</script>"]


def test_highlight_mark_spans_a_newline():
    text = "first line\nsecond line"
    out = render.highlight(text, [(6, 17)])
    assert "\n" not in out
    assert marked(out) == ["line\nsecond"]


def test_highlight_unicode_offsets_are_code_points():
    text = "🚀 Zürich: €5 — 東京"
    a = text.index("€5")
    out = render.highlight(text, [(a, a + 2)])
    assert marked(out) == ["€5"]
    assert plain(out) == text


def test_highlight_context_and_mark_id():
    text = "One. Two holds 49% here. Three."
    c0, c1 = 5, 24
    m0 = text.index("49%")
    out = render.highlight(text, [(m0, m0 + 3)], context=(c0, c1), mark_id="hl")
    assert out.count('id="hl"') == 1
    assert '<span class="rag-ctx"><mark class="rag-hl" id="hl">49%</mark></span>' in out
    assert plain(out) == text


safe_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list("\n$*_<>&#[]`")),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(text=safe_text, data=st.data())
def test_highlight_round_trips(text, data):
    n = len(text)
    a = data.draw(st.integers(0, n))
    b = data.draw(st.integers(a, n))
    out = render.highlight(text, [(a, b)])
    assert plain(out) == text
    assert marked(out) == ([text[a:b]] if b > a else [])
    assert "\n" not in out
    # nothing that Markdown or math would act on is left in the text parts
    text_parts = TAG.sub("", out)
    assert not re.search(r"[$*_<>`\[\]]", text_parts)


# -- answer pieces ----------------------------------------------------------------------------


def cite(**kw):
    base = dict(
        file="a$b.txt", article_id="id1", title="Title with $5 and **b**", start=10, end=13, quote="49%",
        sentence_start=0, sentence_end=20, sentence="Microsoft 49% share.", passage_rank=2,
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_citation_uses_article_offsets():
    article = "Microsoft has 49% of OpenAI. Next sentence."
    c = cite(start=14, end=17, sentence_start=0, sentence_end=28, sentence=article[:28])
    out = render.citation_html(1, c, article)
    assert marked(out) == ["49%"]
    assert "[1]" in out
    assert "a&#36;b&#46;txt" in out
    assert "Title with &#36;5 and &#42;&#42;b&#42;&#42;" in out
    assert "$" not in out
    assert out.startswith("<div") and "\n" not in out


def test_citation_falls_back_to_the_sentence_when_article_missing():
    c = cite(start=15, end=18, sentence_start=5, sentence_end=25, sentence="Microsoft 49% share.")
    assert marked(render.citation_html(2, c, None)) == ["49%"]


@pytest.mark.parametrize(
    "conf,label", [(0.0, "low"), (0.49, "low"), (0.5, "medium"), (0.74, "medium"), (0.75, "high"), (1.0, "high")]
)
def test_confidence_label(conf, label):
    assert render.confidence_label(conf) == label
    assert f"{conf:.2f}" in render.confidence_html(conf)


def answer(**kw):
    base = dict(
        question="q", query="q", answer="$35 million", abstained=False, confidence=0.9, citations=[cite()],
        sources=[SimpleNamespace(file="a.txt", article_id="id1", title="T <b>", passages=3)], n_sources=1,
        passages=[], notes=[], timings_ms={"total": 120.0},
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_answer_card_escapes_the_answer():
    out = render.answer_card_html(answer())
    assert "&#36;35 million" in out and "$" not in out
    assert "High confidence" in out and "0.90" in out
    assert "[1]" in out


def test_abstention_card():
    out = render.answer_card_html(answer(answer=None, abstained=True, confidence=0.1, citations=[]))
    assert "rag-abstain" in out
    assert "answer this" in plain(out) and "The articles don't answer this." in plain(out)
    assert "Low confidence" in out


def test_sources_list_every_article():
    out = render.sources_html(answer())
    assert "a&#46;txt" in out and "3 passages" in out and "T &#60;b&#62;" in out


def test_related_passage_is_escaped_and_labelled():
    hit = SimpleNamespace(
        title="<i>x</i>", file="f.txt",
        chunk=SimpleNamespace(text="$1 <script>bad()</script>\nline", start=0, end=30),
    )
    out = render.related_html(1, hit)
    assert "<script" not in out and "$" not in out and "<i>" not in out
    assert "rag-related" in out
    assert "not an answer" in plain(render.related_header_html(3))


def test_searched_for_only_when_the_query_differs():
    assert render.searched_for("And how much did it lose?", "And how much did it lose?") is None
    assert render.searched_for("What  is  it?", "What is it?") is None
    assert render.searched_for("And it?", "And it? revenue OpenAI") == "And it? revenue OpenAI"
    assert "&#36;" in render.searched_for_html("cost $5")


def test_built_when():
    assert render.built_when("2026-11-22T00:32:27+00:00") == "2026-11-22 00:32 UTC"
    assert render.built_when("garbage") == "garbage"
    assert render.built_when(None) == "unknown"


# -- the whole article ----------------------------------------------------------------------


def test_article_document_marks_and_scrolls():
    text = "Intro line.\n" * 200 + "The <b>revenue</b> was $35 million.\n" + "Outro.\n" * 50
    a = text.index("$35 million")
    doc = render.article_document(text, [(a, a + 11)], context=(a - 30, a + 12), title="T <x>", file="f$.txt")
    assert f'id="{render.ARTICLE_MARK_ID}"' in doc
    assert doc.count("<script>") == 1  # ours only
    assert "<b>" not in doc and "T &#60;x&#62;" in doc
    assert "scrollIntoView" in doc
    body = doc.split("<article>")[1].split("</article>")[0]
    assert plain(body) == text
    assert marked(body) == ["$35 million"]


def test_article_document_context_only():
    doc = render.article_document("abc def ghi", [], context=(4, 7))
    assert 'id="rag-ctx-start"' in doc and "<mark" not in doc


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_article_document_follows_the_app_theme(theme):
    assert f'<body class="{theme}">' in render.article_document("x", [(0, 1)], theme=theme)
    assert "<body>" in render.article_document("x", [(0, 1)], theme="<bad>")
