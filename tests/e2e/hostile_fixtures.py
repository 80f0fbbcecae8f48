"""Shared hostile payloads: article text, questions and file names that try to break out.

Every payload is meant to come back as literal text: never executed, loaded or rendered as markup.
"""

from __future__ import annotations

# A fact the browser and hostile-render tests ask about, in an article full of payloads.
FACT_SENTENCE = "The Quillon Institute has 412 researchers."
FACT_QUESTION = "How many researchers does the Quillon Institute have?"
FACT_ANSWER = "412"

# Payload lines of the hostile article. Each must appear verbatim (as text) wherever it is shown.
SCRIPT = "<script>alert('xss-script')</script>"
IMG_ONERROR = "<img src=x onerror=alert('xss-img')>"
JS_LINK = "[click me](javascript:alert('xss-link'))"
JS_HREF = "<a href=\"javascript:alert('xss-href')\">open</a>"
MD_IMAGE = "![x](http://evil.example/x.png)"
MD_IMAGE_REF = "![pixel][p]\n[p]: https://evil.example/track.gif"
AUTOLINK = "<https://evil.example/autolink>"
IFRAME = "<iframe src=\"https://evil.example/frame\"></iframe>"
STYLE_IMPORT = "<style>@import url(https://evil.example/s.css);</style>"
SVG_ONLOAD = "<svg onload=alert('xss-svg')>"
INLINE_MATH = "The cost was $x^2$ dollars and $y$ cents."
DISPLAY_MATH = "$$\\int_0^1 f(x)\\,dx$$"
ST_COLOR = ":red[RED ALERT] and :blue-background[blue]"
ST_ICON = ":material/warning: :rocket:"
BOLD = "**bold claim** and __underlined__ and ~~struck~~"
HEADING = "# Not a heading"
HTML_ENTITY = "&lt;b&gt;entity&lt;/b&gt; &amp; &#x3C;i&#x3E;"
TABLE = "| a | b |\n|---|---|\n| 1 | 2 |"

HOSTILE_LINES = [
    SCRIPT,
    IMG_ONERROR,
    JS_LINK,
    JS_HREF,
    MD_IMAGE,
    AUTOLINK,
    IFRAME,
    STYLE_IMPORT,
    SVG_ONLOAD,
    INLINE_MATH,
    DISPLAY_MATH,
    ST_COLOR,
    ST_ICON,
    BOLD,
    HEADING,
    HTML_ENTITY,
]

# Strings that must show up literally on the page (a distinctive part of each payload).
LITERAL_MARKERS = [
    "<script>alert('xss-script')</script>",
    "<img src=x onerror=alert('xss-img')>",
    "javascript:alert('xss-link')",
    "![x](http://evil.example/x.png)",
    "$x^2$",
    "$$",
    ":red[RED ALERT]",
    "**bold claim**",
]


def hostile_article() -> str:
    """A .txt article: title, the fact, every payload on its own line, and more prose.

    The payloads sit in the same sentences as the fact and around it so that they appear in the
    citation, the related passages and the full-article view.
    """
    lines = [
        "Quillon Institute staff count <script>alert('xss-title')</script> $t$ :red[t]",
        f"{FACT_SENTENCE} {SCRIPT} {IMG_ONERROR} {MD_IMAGE} {INLINE_MATH} {ST_COLOR} {BOLD}",
        *HOSTILE_LINES,
        MD_IMAGE_REF,
        TABLE,
        "The institute was founded in Leeds in 1987 and studies marine robotics.",
        f"A spokesperson said: {JS_LINK} {DISPLAY_MATH} {ST_ICON} {JS_HREF}.",
    ]
    return "\n".join(lines) + "\n"


# Questions: every one must get an Answer (answer or abstention), never a traceback.
LONG_QUESTION = "What share of OpenAI does Microsoft hold? " * 2500  # ~105,000 characters
HOSTILE_QUESTIONS = {
    "empty": "",
    "whitespace": "   \t\n\r  \u00a0\u3000 ",
    "100k-chars": ("x" * 100_000),
    "100k-sentence": LONG_QUESTION,
    "punctuation": "?!?!...,,,;;:::---***",
    "emoji": "😀🚀🔥 👩‍👩‍👧‍👦 🇬🇧",
    "emoji+words": "How much 💰 did Microsoft 🤝 invest in OpenAI?",
    "rtl-arabic": "ما هي حصة مايكروسوفت في OpenAI؟",
    "rtl-hebrew": "כמה משקיעה מיקרוסופט ב-OpenAI?",
    "bidi-override": "\u202eWhat share of OpenAI does Microsoft hold?\u202c",
    "control-chars": "\x00\x01\x1b[31mWhat\x07 share\x08 of OpenAI\x7f?",
    "c1-controls": "What\x85 share\x9b of OpenAI?",
    "zero-width": "\u200bWhat\u200c share\u200d of\ufeff OpenAI?",
    "combining": "Wha\u0301t\u0301 sha\u0308re of O\u0327penAI?",
    "lone-surrogate": "What share \ud800 of OpenAI?",
    "french": "Quelle part d'OpenAI Microsoft détient-elle ?",
    "chinese": "微软持有OpenAI多少股份？",
    "chinese-999": "微" * 999,
    "russian": "Какую долю OpenAI держит Microsoft?",
    "markdown": "$$x$$ :red[hi] **b** ![x](http://evil.example/x.png)",
    "html": "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "only-digits": "0",
    "line-separators": "\u2028\u2029\x85",
    "50k-words": " ".join(["word"] * 50_000),
    "sql-ish": "'; DROP TABLE articles; --",
    "format-string": "{0} %s %(x)s {__class__}",
    "path": "../../../../etc/passwd",
}
