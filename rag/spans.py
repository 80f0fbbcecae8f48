"""The choice among the reader's n-best spans: features that know what was asked, and a learned ranker.

The span model scores where an answer starts and ends; it does not check that a "when"
question gets a date or that "who beat X?" is not answered "X". Each candidate span gets
features of its shape (digits, currency, a year or month, capitalised words), the question's
wh-word, both crossed, its overlap with the question, its score against the best candidate's,
its passage's retrieval rank and score, and how many passages give the same answer. A linear
model over them (logistic regression, fit on the dev questions by ``rag.training.calibrate``:
the news dev part and the SQuAD dev split; weights in ``calibration.json`` beside the model)
ranks the candidates. Without fitted weights the candidates keep the model's own order.

Pure functions of text and scores: no model is loaded here.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

WH = ("who", "when", "where", "how_many", "how_much", "how", "which", "what", "why", "other")
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_MONTH = re.compile(rf"\b({_MONTHS})\b", re.I)
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)s?\b")
_DAY = re.compile(r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|yesterday|tomorrow)\b", re.I)
_CURRENCY = re.compile(r"[£$€¥]|\b(bn|billion|million|m|pounds?|dollars?|euros?|pence|p|cents?)\b", re.I)
_PERCENT = re.compile(r"%|\bper ?cent\b", re.I)
_NUMWORD = re.compile(r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
                      r"fifty|hundred|thousand|million|billion|dozen|half)\b", re.I)
_WORD = re.compile(r"\w+")
_STOP = frozenset("a an the of in on at to for by with from and or is was were be been are did does do has have "
                  "had what which who whom whose when where why how that this these those it its as".split())


def question_type(question: str) -> str:
    """The question's wh-word ("how many" and "how much" apart; "other" if none)."""
    words = [w.lower() for w in _WORD.findall(question)]
    for i, w in enumerate(words):
        if w == "how":
            nxt = words[i + 1] if i + 1 < len(words) else ""
            return "how_many" if nxt == "many" else "how_much" if nxt in ("much", "long", "old", "big", "far") else "how"
        if w in ("whom", "whose"):
            return "who"
        if w in WH:
            return w
    return "other"


def _content(text: str) -> set[str]:
    return {w for w in (x.lower() for x in _WORD.findall(text)) if w not in _STOP}


def shape(span: str) -> dict[str, float]:
    words = span.split()
    caps = [w for w in words if w[:1].isupper()]
    return {
        "digit": float(any(ch.isdigit() for ch in span)),
        "number_word": float(bool(_NUMWORD.search(span))),
        "currency": float(bool(_CURRENCY.search(span)) and any(ch.isdigit() for ch in span)),
        "percent": float(bool(_PERCENT.search(span))),
        "year": float(bool(_YEAR.search(span))),
        "date": float(bool(_MONTH.search(span) or _DAY.search(span))),
        "capitalised": len(caps) / len(words) if words else 0.0,
        "length": math.log1p(len(words)),
    }


@dataclass(slots=True)
class SpanCandidate:
    """What the ranker knows of one candidate span."""

    text: str
    margin: float  # span score minus the no-answer score
    retrieval: float  # its passage's retrieval score relative to the top passage's, [0, 1]
    passage_rank: int  # 1-based


# Crossed features: (wh-word, shape feature) pairs a question of that kind wants or refuses.
_CROSS = [("when", "year"), ("when", "date"), ("when", "digit"), ("how_many", "digit"), ("how_many", "number_word"),
          ("how_much", "currency"), ("how_much", "digit"), ("how_much", "percent"), ("who", "capitalised"),
          ("where", "capitalised"), ("which", "capitalised"), ("what", "digit"), ("why", "length"),
          ("other", "capitalised")]


def features(question: str, candidates: list[SpanCandidate]) -> tuple[list[str], np.ndarray]:
    """Feature names and a (candidates, features) matrix for one question's candidates."""
    qtype = question_type(question)
    qwords = _content(question)
    best = max((c.margin for c in candidates), default=0.0)
    norms = [normalise(c.text) for c in candidates]
    rows = []
    names: list[str] = []
    for c, key in zip(candidates, norms):
        sh = shape(c.text)
        words = _content(c.text)
        f = {
            "margin": c.margin,
            "gap": best - c.margin,
            "retrieval": c.retrieval,
            "first_passage": float(c.passage_rank == 1),
            "in_question": len(words & qwords) / len(words) if words else 1.0,
            "all_in_question": float(bool(words) and words <= qwords),
            "agree": math.log1p(max(0, sum(1 for k in norms if k and key and (k in key or key in k)) - 1)),
            **{f"shape_{k}": v for k, v in sh.items()},
            **{f"{q}_x_{k}": float(qtype == q) * sh[k] for q, k in _CROSS},
            **{f"q_{q}": float(qtype == q) for q in WH},
        }
        if not names:
            names = list(f)
        rows.append([f[n] for n in names])
    return names, np.asarray(rows, dtype=np.float64).reshape(len(candidates), len(names))


class SpanRanker:
    """A linear score over :func:`features` (``{"features": [...], "weights": [...], "bias": b,
    "mean": [...], "scale": [...]}`` in ``calibration.json``; standardised features)."""

    def __init__(self, spec: dict | None):
        self.spec = spec or None

    def __bool__(self) -> bool:
        return self.spec is not None

    def scores(self, question: str, candidates: list[SpanCandidate]) -> np.ndarray:
        """Each candidate's score (the model's margin when there are no fitted weights)."""
        if not candidates:
            return np.zeros(0)
        if not self.spec:
            return np.array([c.margin for c in candidates])
        names, X = features(question, candidates)
        idx = [names.index(n) for n in self.spec["features"]]
        Z = (X[:, idx] - np.asarray(self.spec["mean"])) / np.asarray(self.spec["scale"])
        return Z @ np.asarray(self.spec["weights"]) + float(self.spec["bias"])


# A figure is quoted with the words that qualify it: "almost 23%", "up to 259.7m euros", "no more
# than 1,000", never the bare number, which would say more than the article does ("no" and "not"
# flip it, "well" and "just" move it; "only" judges it and stays out). The span model
# learnt SQuAD's habit of leaving such words out; news answers keep them (news-qa dev part contains
# 0.625 -> 0.644; rag/models/reader/README.md, "Figures quoted with their qualifier").
_QUALIFIER = re.compile(
    r"\b(?:(?:no|not|well|just)[^\S\n]+)?"
    r"(?:up to|more than|less than|fewer than|at least|at most|as (?:many|much|few) as|close to|in excess of|"
    r"upwards of|almost|nearly|approximately|roughly|about|around|some|under|over|below|above)[^\S\n]+$", re.I)
# One-word qualifiers that are also particles and prepositions ("took over 3 rivals", "spoke about
# 9/11", "passed under 2003 law"): not taken after these verbs, nor before a year or a date.
_AMBIGUOUS = frozenset("about around some under over below above".split())
_PARTICLE_VERBS = frozenset(
    "take takes took taken taking hand hands handed handing turn turns turned turning bring brings brought "
    "bringing come comes came coming set sets setting speak speaks spoke spoken speaking talk talks talked "
    "talking think thinks thought thinking worry worries worried care cares cared know knows knew asked ask "
    "asks fight fights fought argue argues argued pass passes passed passing go goes went going win wins won "
    "winning victory look looks looked looking read reads write writes wrote written say says said tell tells "
    "told hear hears heard learn learns learned learnt run runs ran running move moves moved hold holds held".split())
_DATE_LIKE = re.compile(rf"(?:1[5-9]\d\d|20\d\d)s?\b|\d+/\d+|\d+(?:st|nd|rd|th)?[^\S\n]+(?:{_MONTHS})\b", re.I)
# A figure: digits (after a currency sign) or a number word in lower case ("One Direction" is a name).
_QUANTITY = re.compile(r"(?:[£$€¥][^\S\n]?)?\d|(?:a |one )?(?:one|two|three|four|five|six|seven|eight|nine|ten|"
                       r"eleven|twelve|fifteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|"
                       r"thousand|half|a dozen|dozens|hundreds|thousands|millions|billions)\b")


def qualified_start(text: str, start: int, end: int, floor: int = 0) -> int:
    """Where the answer ``text[start:end]`` starts once the qualifier right before it is included
    ("almost", "up to", "no more than", ...), when the span is a figure; ``start`` otherwise. The
    qualifier stays on the span's line and at or after ``floor`` (the start of its sentence)."""
    if not _QUANTITY.match(text, start, end):
        return start
    m = _QUALIFIER.search(text, max(floor, start - 32), start)
    if not m:
        return start
    words = m.group().lower().split()
    if len(words) == 1 and words[0] in _AMBIGUOUS:
        before = _WORD.findall(text[max(floor, m.start() - 20) : m.start()])
        if (before and before[-1].lower() in _PARTICLE_VERBS) or _DATE_LIKE.match(text, start, end):
            return start
    return m.start()


def normalise(s: str) -> str:
    """An answer's text for comparing answers: NFKC, lower case, punctuation but % $ £ € . as spaces."""
    s = unicodedata.normalize("NFKC", s).lower()
    return " ".join(re.sub(r"[^\w%$£€.]+", " ", s).split())
