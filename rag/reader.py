"""Extractive reader: the span model reads the best retrieved passages and quotes its answer.

1. **What it reads.** The top ``read_passages`` retrieved passages. With ``read_sentences`` > 0
   only the sentences of each passage closest to the question (the cosine of each sentence's
   stored vector, pooled at build time, to the question vector) and ``read_context`` sentences
   around them are read, which keeps the model's input short; 0 reads whole passages.
2. **Spans.** Every window (question + passage text, at most ``read_window_pieces`` word
   pieces) goes through the model in one batch. A span lies inside one sentence and holds at
   most ``max_answer_pieces`` word pieces. Its *margin* is its start + end score minus the
   no-answer score: for a model trained with shared normalisation (``rag.training.data``) one
   no-answer score over all windows read, so margins compare across windows; for an older
   model, its own window's.
3. **Choice.** Candidates are ordered by margin plus ``retrieval_weight`` x the passage's
   retrieval score relative to the top passage's; then, when ``calibration.json`` has one, the
   learned span ranker (``rag.spans``) reorders them by what was asked (a date for "when", a
   number for "how many", not the question's own words).
4. **Confidence** is a calibrated probability: a logistic function of the chosen span's scores
   (Platt scaling, fit on the dev sets by ``rag.training.calibrate``); the pipeline abstains
   below the threshold calibrated with it (``calibration.json``; the ``abstain_threshold``
   setting overrides it).
5. **Corroboration.** Other articles whose best span states the same answer (or near-duplicate
   passages folded into a hit that contain it) are cited too, one citation per article.
6. **Disagreement.** Each other article's own best span (margin > 0) is an *alternative*, with
   the confidence the reader would give it; :func:`disagreements` groups them by what they say, and
   when two or more different answers each clear the abstention threshold the answer shows
   them all, newest first. Near-duplicate passages of other articles folded into the hits read
   (an updated story is often a near-copy with a new figure) are read too, in a second model
   call, for this only: they never change the chosen answer or its confidence.

Every citation's offsets come from the tokenizer's offset mapping into the stored article
text, so ``article.text[start:end] == quote``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from .config import Settings
from .index import IndexData
from .span_model import SpanModel, best_spans
from .spans import SpanCandidate, SpanRanker, qualified_start
from .spans import normalise as _norm
from .types import Citation, DisagreeingAnswer, Hit, SourceCount


@dataclass(slots=True)
class _Passage:
    """A piece of a hit's chunk that the model reads: article text [start, end)."""

    hit: Hit
    start: int
    end: int
    sentences: list[tuple[int, int]]  # absolute sentence spans inside it


@dataclass(slots=True)
class _Candidate:
    passage: _Passage
    start: int  # absolute article offsets
    end: int
    score: float  # start + end logit
    null: float  # the window's no-answer score
    retrieval: float  # passage score relative to the top hit's
    combined: float = 0.0  # margin + retrieval_weight x retrieval: the model's own order
    rank_score: float = 0.0  # the span ranker's score (rag.spans), or ``combined`` without one

    @property
    def margin(self) -> float:
        return self.score - self.null

    @property
    def article_id(self) -> str:
        return self.passage.hit.chunk.article_id


@dataclass
class Reading:
    """What the reader found: the best span (before any abstention), its confidence, citations."""

    answer: str | None
    confidence: float
    citations: list[Citation] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    windows: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)  # tokenize, model, spans
    # Each article's own best span, best first: (confidence for it alone, its citation).
    alternatives: list[tuple[float, Citation]] = field(default_factory=list)


SPANS_PER_WINDOW = 5  # each window's best spans that become candidates
N_BEST = 30  # candidates the span ranker compares (in practice all: read_passages x windows x SPANS_PER_WINDOW)

# The reading settings the confidence was calibrated with (rag/config.py; calibration.json).
_DEFAULTS = {k: Settings.model_fields[k].default for k in
             ("read_passages", "read_sentences", "read_context", "max_answer_pieces", "retrieval_weight")}


class Reader:
    """Reads retrieved passages of one loaded index with the span model; safe to share between threads."""

    def __init__(
        self,
        data: IndexData,
        model: SpanModel,
        *,
        read_passages: int = _DEFAULTS["read_passages"],
        read_sentences: int = _DEFAULTS["read_sentences"],
        read_context: int = _DEFAULTS["read_context"],
        max_answer_pieces: int = _DEFAULTS["max_answer_pieces"],
        retrieval_weight: float = _DEFAULTS["retrieval_weight"],
    ):
        self.data = data
        self.model = model
        self.read_passages = read_passages
        self.read_sentences = read_sentences
        self.read_context = read_context
        self.max_answer_pieces = max_answer_pieces
        self.retrieval_weight = retrieval_weight
        self._row_of = {c.id: i for i, c in enumerate(data.chunks)}
        self.ranker = SpanRanker(model.calibration.get("ranker"))

    # -- what the model reads ---------------------------------------------------------
    def passages(self, hits: list[Hit], qvec: np.ndarray | None) -> list[_Passage]:
        out: list[_Passage] = []
        for hit in hits[: self.read_passages]:
            out.extend(self._hit_passages(hit, qvec))
        return out

    def folded_passages(self, hits: list[Hit], qvec: np.ndarray | None) -> list[_Passage]:
        """Passages of other articles folded as near-duplicates into the hits read."""
        out: list[_Passage] = []
        for hit in hits[: self.read_passages]:
            for dup in hit.duplicates:
                row = self._row_of.get(dup.chunk_id or "")
                if row is None or dup.article_id == hit.chunk.article_id:
                    continue
                twin = hit.model_copy(update={"chunk": self.data.chunks[row], "file": dup.file, "title": dup.title,
                                              "duplicates": []})
                out.extend(self._hit_passages(twin, qvec))
        return out

    def _hit_passages(self, hit: Hit, qvec: np.ndarray | None) -> list[_Passage]:
        out: list[_Passage] = []
        c = hit.chunk
        sents = list(c.sentences) or [(c.start, c.end)]
        if self.read_sentences <= 0 or qvec is None or len(sents) <= self.read_sentences:
            out.append(_Passage(hit, c.start, c.end, sents))
            return out
        vecs = self.data.chunk_sentence_vectors(self._row_of[c.id])
        if len(vecs) != len(sents):  # no stored sentence vectors to choose by: read it whole
            out.append(_Passage(hit, c.start, c.end, sents))
            return out
        cos = vecs @ qvec
        keep: set[int] = set()
        for i in np.argsort(-cos)[: self.read_sentences]:
            keep.update(range(max(0, i - self.read_context), min(len(sents), i + self.read_context + 1)))
        run: list[int] = []
        for i in sorted(keep):  # contiguous runs of kept sentences, each one passage
            if run and i != run[-1] + 1:
                out.append(self._run(hit, sents, run))
                run = []
            run.append(i)
        out.append(self._run(hit, sents, run))
        return out

    @staticmethod
    def _run(hit: Hit, sents: list[tuple[int, int]], run: list[int]) -> _Passage:
        spans = [sents[i] for i in run]
        return _Passage(hit, spans[0][0], spans[-1][1], spans)

    # -- reading ----------------------------------------------------------------------
    def candidates(self, question: str, hits: list[Hit], qvec: np.ndarray | None = None):
        """Every candidate span of the passages read, in the model's own order (best first), the
        windows' no-answer scores, the number of windows and the timings."""
        passages = self.passages(hits, qvec)
        if not passages:
            return [], np.zeros(0, np.float32), 0, {}
        top_score = max((h.score for h in hits), default=0.0)
        candidates, nulls, n_windows, timings = self._spans(question, passages, top_score)
        candidates.sort(key=lambda c: -c.combined)
        return candidates, nulls, n_windows, timings

    def read(self, question: str, hits: list[Hit], qvec: np.ndarray | None = None) -> Reading:
        candidates, nulls, n_windows, timings = self.candidates(question, hits, qvec)
        if not candidates:
            return Reading(answer=None, confidence=0.0, windows=n_windows, timings_ms=timings)
        top_score = max((h.score for h in hits), default=0.0)
        candidates = self._choose(question, candidates)
        best = candidates[0]
        text = self.data.articles[best.article_id].text
        features = {
            "margin": best.margin,
            "span_score": best.score,
            "null_score": best.null,
            "retrieval": best.retrieval,
            "passage_rank": float(best.passage.hit.rank),
            "null_min": float(nulls.min()),
            "passages_with_a_span": float(len({id(c.passage) for c in candidates if c.margin > 0})),
            "rank_score": best.rank_score,
        }
        confidence = self.model.confidence(features)
        # Each other article's own best span: from the passages read, and from near-duplicates of
        # other articles folded into them (read separately: the choice above stays as it was).
        others = candidates[1:]
        folded = self.folded_passages(hits, qvec)
        if folded:
            t = time.perf_counter()
            extra, _, n_extra, _ = self._spans(question, folded, top_score)
            if extra:
                extra.sort(key=lambda c: -c.combined)
                extra = self._choose(question, extra)  # their rank scores, for their confidence
            others = sorted(others + extra, key=lambda c: -c.combined)
            timings["folded"] = (time.perf_counter() - t) * 1000
            n_windows += n_extra
        alternatives = [(confidence, self.citation(best.article_id, best.start, best.end, best.passage.hit.rank))]
        seen = {best.article_id}
        for c in others:
            if c.article_id in seen or c.margin <= 0:
                continue
            seen.add(c.article_id)
            alt = {**features, "margin": c.margin, "span_score": c.score, "null_score": c.null,
                   "retrieval": c.retrieval, "passage_rank": float(c.passage.hit.rank), "rank_score": c.rank_score}
            alternatives.append((self.model.confidence(alt), self.citation(c.article_id, c.start, c.end,
                                                                             c.passage.hit.rank)))
        return Reading(
            answer=text[best.start : best.end],
            confidence=confidence,
            citations=self._citations(best, candidates, hits),
            features=features,
            windows=n_windows,
            timings_ms=timings,
            alternatives=alternatives,
        )

    def _choose(self, question: str, candidates: list[_Candidate]) -> list[_Candidate]:
        """The candidates, best first: by the learned span ranker (``rag.spans``) over the
        ``N_BEST`` best by the model's own order, when the model has one; the rest after them."""
        if not self.ranker:
            for c in candidates:
                c.rank_score = c.combined
            return candidates
        head, tail = candidates[:N_BEST], candidates[N_BEST:]
        scores = self.ranker.scores(question, [
            SpanCandidate(self.data.articles[c.article_id].text[c.start : c.end], c.margin, c.retrieval,
                          c.passage.hit.rank) for c in head])
        for c, sc in zip(head, scores):
            c.rank_score = float(sc)
        head.sort(key=lambda c: -c.rank_score)
        floor = head[-1].rank_score - 1.0  # below every ranked one, and finite (a confidence feature)
        for c in tail:
            c.rank_score = floor
        return head + tail

    def _spans(self, question: str, passages: list[_Passage], top_score: float):
        """Candidates of every window over ``passages`` (``SpanModel.logits``), the windows' no-answer
        scores, the number of windows and the timings."""
        t0 = time.perf_counter()
        texts = [self.data.articles[p.hit.chunk.article_id].text[p.start : p.end] for p in passages]
        windows = self.model.windows(question, texts)
        t1 = time.perf_counter()
        logits = self.model.logits(windows)
        t2 = time.perf_counter()
        nulls = logits.null()
        if self.model.normalisation == "shared":  # one no-answer score for everything read
            nulls = np.full(len(windows), logits.shared_null(), dtype=np.float32)
        candidates: list[_Candidate] = []
        for w, window in enumerate(windows):
            p = passages[window.passage]
            sentence_of = _sentence_of(window, p)
            spans = best_spans(window, logits.start[w], logits.end[w], sentence_of, self.max_answer_pieces)
            # relative to the top passage, in [0, 1] (a dense cosine can be negative)
            retrieval = min(1.0, max(0.0, p.hit.score / top_score)) if top_score > 0 else 1.0
            # The best span of each window, and the next ones for corroboration within it.
            for score, s, e in spans[:SPANS_PER_WINDOW]:
                b = int(window.offsets[e, 1])
                k = int(sentence_of[s])  # the qualifier stays in the span's sentence
                floor = p.sentences[k][0] - p.start if 0 <= k < len(p.sentences) else 0
                a = qualified_start(texts[window.passage], int(window.offsets[s, 0]), b, max(0, floor))
                a, b = p.start + a, p.start + b
                cand = _Candidate(p, a, b, score, float(nulls[w]), retrieval)
                cand.combined = cand.margin + self.retrieval_weight * retrieval
                candidates.append(cand)
        timings = {"tokenize": (t1 - t0) * 1000, "model": (t2 - t1) * 1000, "spans": (time.perf_counter() - t2) * 1000}
        return candidates, nulls, len(windows), timings

    # -- citations ----------------------------------------------------------------------
    def citation(self, article_id: str, a: int, b: int, rank: int | None) -> Citation:
        return citation(self.data, article_id, a, b, rank)

    def _citations(self, best: _Candidate, candidates: list[_Candidate], hits: list[Hit]) -> list[Citation]:
        """The chosen span, then the same answer in other articles, one citation per article."""
        answer = self.data.articles[best.article_id].text[best.start : best.end]
        key = _norm(answer)
        cites = [self.citation(best.article_id, best.start, best.end, best.passage.hit.rank)]
        seen = {best.article_id}
        # Other articles where the model itself prefers that answer to "no answer".
        for c in candidates[1:]:
            if c.article_id in seen or c.margin <= 0:
                continue
            if _norm(self.data.articles[c.article_id].text[c.start : c.end]) == key:
                cites.append(self.citation(c.article_id, c.start, c.end, c.passage.hit.rank))
                seen.add(c.article_id)
        # Near-duplicate passages folded into the hits read (their articles say the same thing).
        if key:
            for hit in hits[: self.read_passages]:
                for dup in hit.duplicates:
                    if dup.article_id in seen:
                        continue
                    text = self.data.articles[dup.article_id].text
                    idx = text.find(answer, dup.start, dup.end)
                    if idx >= 0:
                        cites.append(self.citation(dup.article_id, idx, idx + len(answer), hit.rank))
                        seen.add(dup.article_id)
        return cites


def citation(data: IndexData, article_id: str, a: int, b: int, rank: int | None) -> Citation:
    """The citation of characters ``a:b`` of an article: its sentence, title, date and page."""
    art = data.articles[article_id]
    s, e = _sentence_around(art.text, a, b)
    return Citation(
        file=art.file, article_id=art.id, title=art.title, start=a, end=b, quote=art.text[a:b],
        sentence_start=s, sentence_end=e, sentence=art.text[s:e], passage_rank=rank,
        published=art.published, page=art.page_of(a),
    )


def _sentence_of(window, p: _Passage) -> np.ndarray:
    """Sentence number of each token of ``window`` (-1 for question and special tokens)."""
    starts = np.array([s - p.start for s, _ in p.sentences])
    tok = window.offsets[:, 0]
    out = np.searchsorted(starts, tok, side="right") - 1
    out[tok < 0] = -1
    return out


def _sentence_around(text: str, a: int, b: int) -> tuple[int, int]:
    """The sentence around [a, b), split as the chunker splits (the whole line if none holds it)."""
    from .chunk import split_sentences

    line_start = text.rfind("\n", 0, a) + 1
    line_end = text.find("\n", b)
    line_end = len(text) if line_end < 0 else line_end
    for s, e in split_sentences(text, line_start, line_end):
        if s <= a and b <= e:
            return s, e
    return line_start, line_end


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
            out.append(SourceCount(file=c.file, article_id=c.article_id, title=c.title,
                                   passages=max(1, counts.get(c.article_id, 0)), published=c.published))
    return out


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def same_answer(a: str, b: str) -> bool:
    """Whether two spans state the same answer: equal or one inside the other once normalized
    ("49%" and "49% of OpenAI's shares"), or the same numbers ("$10 billion", "10 billion dollars")."""
    ka, kb = _norm(a), _norm(b)
    if not ka or not kb:
        return ka == kb
    if ka in kb or kb in ka:
        return True
    na = {n.replace(",", "") for n in _NUMBER.findall(ka)}
    nb = {n.replace(",", "") for n in _NUMBER.findall(kb)}
    return bool(na) and na == nb


def disagreements(alternatives: list[tuple[float, Citation]], threshold: float) -> list[DisagreeingAnswer]:
    """The different answers that articles give, each with the articles stating it, newest first.

    ``alternatives`` are each article's best span with the reader's confidence for it alone
    (``Reading.alternatives``). Only answers at or above ``threshold`` count: an article whose
    best span the reader would not give as an answer on its own does not make a disagreement.
    Returns an empty list when all articles that answer agree."""
    groups: list[DisagreeingAnswer] = []
    for conf, cite in sorted(alternatives, key=lambda x: -x[0]):
        if conf < threshold:
            continue
        for v in groups:
            if same_answer(v.answer, cite.quote):
                if all(c.article_id != cite.article_id for c in v.citations):
                    v.citations.append(cite)
                break
        else:
            groups.append(DisagreeingAnswer(answer=cite.quote, confidence=min(1.0, max(0.0, conf)), citations=[cite]))
    if len(groups) < 2:
        return []
    for v in groups:
        dates = [c.published for c in v.citations if c.published]
        v.published = max(dates) if dates else None
        v.citations.sort(key=lambda c: c.published or "", reverse=True)
    # newest first; undated answers last, in the reader's order
    return sorted(groups, key=lambda v: (v.published is not None, v.published or ""), reverse=True)
