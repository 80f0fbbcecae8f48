"""Extractive reader: best sentence, shortest answering span, confidence, abstention, citations.

1. **Question type** from its wording: how much / how many -> number, when / what year -> date,
   who -> person or organisation, where -> place, otherwise a sentence answer.
2. **Sentence choice.** Every sentence of the retrieved passages is scored by a weighted sum of
   its similarity to the question (its own vector, pooled from the passage's token vectors at
   build time), the IDF-weighted share of the question's terms it contains, the passage's
   rank, and whether it holds a span of the asked type.
3. **Span choice.** Inside the chosen sentence, candidate spans of the asked type (money,
   percentages, counts, dates, names, places) are scored by closeness to the question's words
   in the sentence; a span that repeats the question's own words is not an answer. No span
   -> the whole sentence is the answer.
4. **Confidence** is a logistic function of those features (coefficients fit on the dev split
   of ``eval/seeds_qa.jsonl`` by ``eval/calibrate.py``); below the ``abstain_threshold`` setting
   the reader abstains and gives no answer.
5. **Corroboration.** The same answer found in other retrieved articles (or in near-duplicate
   passages folded into a hit) is cited too, one citation per article, best first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .index import IndexData, _stemmer, bm25_tokenize
from .retrieve import query_terms
from .types import Citation, Hit, SourceCount

# --- question analysis -------------------------------------------------------------------

_TYPE_RULES: list[tuple[str, re.Pattern]] = [
    ("date", re.compile(r"\b(when|what (year|date|day|month|time)|which (year|month|day|date)|since when|how long ago)\b")),
    (
        "number",
        re.compile(
            r"\b(how (much|many|large|big|far|long|old|often)|what (percentage|percent|share|proportion|stake|"
            r"amount|number|price|value|sum|figure|valuation|revenue|profit|loss|rank)|"
            r"how much money|at what (price|valuation)|by how much|what portion)\b"
        ),
    ),
    ("who", re.compile(r"\b(who|whom|whose|which (company|companies|person|people|executive|firm|startup|rival|"
                       r"partner|customer|customers|investor|investors|ceo|analytics company|agency))\b")),
    ("where", re.compile(r"\b(where|which (city|country|town|state|place)|what (city|country|town|state|place))\b")),
]

_MONTHS = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
_MOD = r"(?:(?:about|around|nearly|almost|over|more than|less than|fewer than|at least|up to|approximately|roughly|some|only|just)\s+)?"
_CUR = r"(?:US\s?\$|\$|£|€|¥)"
_SCALE = r"(?:trillion|billion|million|thousand|hundred|bn|mn|m|k)"
_NUM = r"\d[\d,]*(?:\.\d+)?"
_SPAN_PATTERNS: dict[str, re.Pattern] = {
    "number": re.compile(
        rf"{_MOD}(?:{_CUR}\s?{_NUM}(?:\s?{_SCALE}\b)?(?:\s?(?:US\s)?dollars)?"
        rf"|{_NUM}\s?(?:%|percent\b|per cent\b)"
        rf"|{_NUM}(?:\s?{_SCALE}\b)?(?:\s(?:US\s)?(?:dollars|pounds|euros|yuan)\b)?(?:-dollar)?"
        rf"|(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a dozen|dozens|hundreds|thousands|millions|billions)"
        rf"(?:\s{_SCALE}\b)?)",
        re.IGNORECASE,
    ),
    "date": re.compile(
        rf"(?:(?:early|late|mid|last|next|this)\s+)?(?:{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
        rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}(?:\s+\d{{4}})?"
        rf"|{_MONTHS}(?:\s+\d{{4}})?"
        rf"|(?:19|20)\d\d(?:s)?"
        rf"|(?:last|this|next) (?:year|month|week|spring|summer|autumn|fall|winter))\b"
    ),
    "who": re.compile(
        r"(?<![\w'])(?:[A-Z][\w&.\-']*(?:\s+(?:of|de|van|von|and|&)\s+[A-Z][\w&.\-']*|\s+[A-Z][\w&.\-']*){0,3})"
    ),
    "where": re.compile(r"(?<![\w'])(?:[A-Z][\w.\-']*(?:,?\s+[A-Z][\w.\-']*){0,2})"),
}
_TYPE_REQUIRES_SPAN = {"number", "date", "who", "where"}

_QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how much many does did do is are was were has have had the a an "
    "of in on to for by with and or it its their they them he she his her this that these those".split()
)


def question_type(question: str) -> str:
    q = question.lower()
    for name, rule in _TYPE_RULES:
        if rule.search(q):
            return name
    return "other"


# --- features and confidence ----------------------------------------------------------------

# Logistic coefficients over the features below; fit by eval/calibrate.py on the dev split.
CONFIDENCE_WEIGHTS = {
    "bias": -6.0,
    "sent_cos": 5.0,
    "coverage": 4.0,
    "passage_cos": 3.0,
    "type_ok": 1.0,
    "margin": 2.0,
}
# Weights of the sentence ranking score (not a probability; only the order matters).
SENTENCE_WEIGHTS = {"sent_cos": 1.0, "coverage": 0.8, "passage_cos": 0.5, "type_ok": 0.25, "rank": 0.1}


@dataclass
class _Sentence:
    hit: Hit
    start: int
    end: int
    cos: float
    coverage: float
    type_ok: bool
    score: float = 0.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def confidence_from(features: dict[str, float], weights: dict[str, float] | None = None) -> float:
    w = weights or CONFIDENCE_WEIGHTS
    z = w["bias"] + sum(w[k] * v for k, v in features.items() if k in w)
    return _sigmoid(z)


class Reader:
    """Stateless over a loaded index; safe to share between threads."""

    def __init__(self, data: IndexData):
        self.data = data
        self._df = self._document_frequencies(data)
        self._n = max(1, len(data.chunks))

    @staticmethod
    def _document_frequencies(data: IndexData) -> dict[str, int]:
        if data.bm25 is None:
            return {}
        indptr = np.asarray(data.bm25.scores["indptr"])
        return {t: int(indptr[i + 1] - indptr[i]) for t, i in data.bm25.vocab_dict.items() if i + 1 < len(indptr)}

    def idf(self, term: str) -> float:
        df = self._df.get(term, 0)
        return math.log(1 + (self._n - df + 0.5) / (df + 0.5))

    def read(self, question: str, query: str, qvec: np.ndarray, hits: list[Hit], threshold: float) -> dict:
        qtype = question_type(question)
        terms = [t for t in dict.fromkeys(query_terms(query)) if t not in _QUESTION_WORDS]
        weights = {t: self.idf(t) for t in terms}
        total = sum(weights.values()) or 1.0
        pattern = _SPAN_PATTERNS.get(qtype)
        qwords = _surface_words(query)

        sentences: list[_Sentence] = []
        row_of = {c.id: i for i, c in enumerate(self.data.chunks)} if hits else {}
        texts: list[str] = []
        for hit in hits:
            row = row_of[hit.chunk.id]
            vecs = self.data.chunk_sentence_vectors(row)
            text = self.data.articles[hit.chunk.article_id].text
            for (s, e), vec in zip(hit.chunk.sentences, vecs):
                texts.append(text[s:e])
                type_ok = bool(pattern and _spans(pattern, texts[-1], qwords, qtype))
                sentences.append(_Sentence(hit, s, e, float(vec @ qvec), 0.0, type_ok))
        for sent, stems in zip(sentences, bm25_tokenize(texts) if texts else []):
            present = set(stems)
            sent.coverage = sum(w for t, w in weights.items() if t in present) / total
        if not sentences:
            return {"answer": None, "confidence": 0.0, "kind": "none", "qtype": qtype, "citations": []}

        w = SENTENCE_WEIGHTS
        for s in sentences:
            s.score = (
                w["sent_cos"] * s.cos
                + w["coverage"] * s.coverage
                + w["passage_cos"] * (s.hit.dense_score or 0.0)
                + w["type_ok"] * s.type_ok
                + w["rank"] / s.hit.rank
            )
        sentences.sort(key=lambda s: -s.score)
        best = sentences[0]
        second = next((s for s in sentences[1:] if (s.hit.chunk.article_id, s.start) != (best.hit.chunk.article_id, best.start)), None)
        margin = best.score - (second.score if second else 0.0)
        features = {
            "sent_cos": best.cos,
            "coverage": best.coverage,
            "passage_cos": best.hit.dense_score or 0.0,
            "type_ok": float(best.type_ok) if qtype in _TYPE_REQUIRES_SPAN else 1.0,
            "margin": margin,
        }
        confidence = confidence_from(features)

        text = self.data.articles[best.hit.chunk.article_id].text
        span = None
        if pattern is not None:
            found = _spans(pattern, text[best.start : best.end], qwords, qtype)
            if found:
                # The user's own words place the span; terms carried from an earlier turn
                # (follow-ups) only help find the sentence.
                own = set(query_terms(question))
                own_weights = {t: w for t, w in weights.items() if t in own}
                span = _best_span(found, text[best.start : best.end], own_weights, weights)
        if span:
            a, b = best.start + span[0], best.start + span[1]
            kind = "span"
        else:
            a, b = best.start, best.end
            kind = "sentence"
        answer_text = text[a:b]
        citations = self._citations(best, a, b, answer_text, kind, sentences)
        return {
            "answer": answer_text,
            "confidence": confidence,
            "kind": kind,
            "qtype": qtype,
            "citations": citations,
            "features": features,
        }

    def _citation(self, article_id: str, a: int, b: int, s: int, e: int, rank: int | None) -> Citation:
        art = self.data.articles[article_id]
        return Citation(
            article=art.file,
            article_id=art.id,
            title=art.title,
            start=a,
            end=b,
            quote=art.text[a:b],
            sentence_start=s,
            sentence_end=e,
            sentence=art.text[s:e],
            passage_rank=rank,
        )

    def _citations(self, best: _Sentence, a: int, b: int, answer_text: str, kind: str, ranked: list[_Sentence]) -> list[Citation]:
        """The chosen span, then the same answer stated by other articles, one per article."""
        cites = [self._citation(best.hit.chunk.article_id, a, b, best.start, best.end, best.hit.rank)]
        seen = {best.hit.chunk.article_id}
        key = _norm(answer_text)
        best_sentence = _norm(self.data.articles[best.hit.chunk.article_id].text[best.start : best.end])

        def supports(sent: str) -> int | None:
            """Offset of the answer inside ``sent`` if this sentence states the same answer."""
            if kind == "sentence":
                return 0 if _norm(sent) == best_sentence else None
            idx = sent.find(answer_text)
            return idx if idx >= 0 else None

        # Other retrieved sentences that state the answer, in score order, if they are on topic.
        for s in ranked[1:]:
            aid = s.hit.chunk.article_id
            if aid in seen or s.coverage < 0.5 * best.coverage or s.cos < best.cos - 0.2:
                continue
            sent = self.data.articles[aid].text[s.start : s.end]
            off = supports(sent)
            if off is None:
                continue
            length = len(answer_text) if kind == "span" else len(sent)
            cites.append(self._citation(aid, s.start + off, s.start + off + length, s.start, s.end, s.hit.rank))
            seen.add(aid)
        # Near-duplicate passages folded into retrieved hits (their articles say the same thing).
        for s in ranked:
            for dup in s.hit.duplicates:
                if dup.article_id in seen:
                    continue
                text = self.data.articles[dup.article_id].text
                window = text[dup.start : dup.end]
                needle = answer_text if kind == "span" else self.data.articles[best.hit.chunk.article_id].text[best.start : best.end]
                idx = window.find(needle)
                if idx < 0 or key == "":
                    continue
                ca = dup.start + idx
                ss, se = _sentence_around(text, ca, ca + len(needle))
                cites.append(self._citation(dup.article_id, ca, ca + len(needle), ss, se, s.hit.rank))
                seen.add(dup.article_id)
        return cites


def _sentence_around(text: str, a: int, b: int) -> tuple[int, int]:
    from .chunk import split_sentences

    line_start = text.rfind("\n", 0, a) + 1
    line_end = text.find("\n", b)
    line_end = len(text) if line_end < 0 else line_end
    for s, e in split_sentences(text, line_start, line_end):
        if s <= a and b <= e:
            return s, e
    return line_start, line_end


def _norm(s: str) -> str:
    return " ".join(re.sub(r"[^\w%$.]+", " ", s.lower()).split())


def _surface_words(question: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[\w'%$.-]+", question)} - _QUESTION_WORDS


def _spans(pattern: re.Pattern, sentence: str, qwords: set[str], qtype: str) -> list[tuple[int, int]]:
    """Candidate answer spans of the asked type that do not merely repeat the question."""
    out = []
    for m in pattern.finditer(sentence):
        a, b = m.start(), m.end()
        while b > a and sentence[b - 1] in " ,.;:'’":
            b -= 1
        while a < b and sentence[a] == " ":
            a += 1
        if b <= a:
            continue
        words = {w.lower() for w in re.findall(r"[\w'%$.-]+", sentence[a:b])}
        if not words or words <= qwords:
            continue
        if qtype in ("who", "where"):
            # A capitalised word that only starts the sentence, or a question word, is no name.
            first = sentence[a:b].split()[0]
            if a == 0 and len(sentence[a:b].split()) == 1 and first.lower() in _COMMON_STARTS:
                continue
            if len(words & qwords) == len(words):
                continue
        if qtype == "number" and not re.search(r"\d|one|two|three|four|five|six|seven|eight|nine|ten|dozen|hundred|thousand|million|billion", sentence[a:b], re.I):
            continue
        out.append((a, b))
    return out


_COMMON_STARTS = frozenset(
    "the a an in on at for however but and or so this that these those it its there here when while after before "
    "since during although though if as with without by from to of according some many most other another such "
    "what which who why how last next first second third currently recently now today earlier later meanwhile "
    "despite nonetheless additionally concurrently subsequently ultimately generally".split()
)


def _best_span(
    spans: list[tuple[int, int]], sentence: str, own: dict[str, float], carried: dict[str, float]
) -> tuple[int, int]:
    """The span closest to where the question's own terms occur in the sentence (or, when
    none of them does, the terms carried over from an earlier turn)."""
    stem = _stemmer().stemWord
    words = [(m.start(), stem(m.group().lower())) for m in re.finditer(r"\w+", sentence)]
    positions = [(p, own[t]) for p, t in words if t in own]
    if not positions:
        positions = [(p, carried[t]) for p, t in words if t in carried]
    if not positions:
        return spans[0]

    def distance(span: tuple[int, int]) -> float:
        a, b = span
        return sum(w * min(abs(p - a), abs(p - b)) for p, w in positions) / sum(w for _, w in positions)

    return min(spans, key=distance)


def source_counts(citations: list[Citation], hits: list[Hit]) -> list[SourceCount]:
    """Each cited article with the number of retrieved passages (near-duplicates included) it has."""
    counts: dict[str, int] = {}
    for h in hits:
        counts[h.chunk.article_id] = counts.get(h.chunk.article_id, 0) + 1
        for d in h.duplicates:
            counts[d.article_id] = counts.get(d.article_id, 0) + 1
    out = []
    for c in citations:
        if all(s.article_id != c.article_id for s in out):
            out.append(SourceCount(article=c.article, article_id=c.article_id, title=c.title, passages=max(1, counts.get(c.article_id, 0))))
    return out
