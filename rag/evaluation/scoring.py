"""Scoring: one asked question -> a ``QuestionResult``; results -> the report's blocks
(retrieval, answers, abstention, latency, misses); a report against a baseline report.

The metric definitions live in :mod:`rag.evaluation.metrics`; see ``eval/README.md``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..types import Answer
from . import metrics
from .qa_sets import QAItem

RETRIEVAL_KS = (1, 3, 5, 10)
NDCG_K = 10
COMPARE_COLUMNS = ("hit@1", "hit@5", "mrr", "ndcg@10", "em", "f1", "contains", "abstention_f1", "p50_ms")
SET_COLUMNS = ("n", "hit@5", "em", "f1", "contains", "abstention_f1", "squad2_f1", "p50_ms")


@dataclass
class QuestionResult:
    item: QAItem
    answer: str | None
    candidate: str | None
    abstained: bool
    confidence: float
    relevance: list[frozenset[str]]
    retrieved_files: list[str]
    latency_ms: float
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def first_relevant_rank(self) -> int | None:
        return next((i for i, r in enumerate(self.relevance, start=1) if r), None)

    @property
    def answer_correct(self) -> bool:
        return self.item.answerable and not self.abstained and metrics.contains_answer(self.answer, self.item.answers)

    @property
    def candidate_correct(self) -> bool:
        return self.item.answerable and metrics.contains_answer(self.candidate, self.item.answers)


def score_answer(
    item: QAItem,
    answer: Answer,
    latency_ms: float,
    aliases: Callable[[str], Iterable[str]] | None = None,
) -> QuestionResult:
    """Turn one ``rag.types.Answer`` (or any object with the same attributes) into a result.

    ``aliases(file)`` may return other file names with identical content, so a gold source
    that was deduplicated at ingest still counts as retrieved.
    """
    passages = []
    for hit in answer.passages:
        files = [hit.file, *(d.file for d in getattr(hit, "duplicates", []) or [])]
        if aliases is not None:
            files += [a for f in list(files) for a in aliases(f)]
        passages.append((hit.chunk.text, files))
    abstained = bool(answer.abstained)
    given = None if abstained else answer.answer
    candidate = getattr(answer, "candidate", None)
    if candidate is None and not abstained:
        candidate = answer.answer
    return QuestionResult(
        item=item,
        answer=given,
        candidate=candidate,
        abstained=abstained,
        confidence=float(answer.confidence),
        relevance=metrics.passage_relevance(passages, item.sources, item.answers),
        retrieved_files=[h.file for h in answer.passages],
        latency_ms=latency_ms,
        timings_ms=dict(getattr(answer, "timings_ms", {}) or {}),
    )


# --------------------------------------------------------------------------- scoring


def _by(results: Sequence[QuestionResult], key: Callable[[QuestionResult], str | None]) -> dict[str, list[QuestionResult]]:
    groups: dict[str, list[QuestionResult]] = defaultdict(list)
    for r in results:
        groups[str(key(r))].append(r)
    return dict(sorted(groups.items()))


def _retrieval(results: Sequence[QuestionResult]) -> dict:
    return metrics.retrieval_metrics(
        [r.relevance for r in results], [len(r.item.sources) if r.item.answerable else 0 for r in results],
        ks=RETRIEVAL_KS, ndcg_k=NDCG_K,
    )


def _answers(results: Sequence[QuestionResult]) -> dict:
    return metrics.answer_metrics([r.answer for r in results], [r.item.answers for r in results])


def _abstention(results: Sequence[QuestionResult]) -> dict:
    return metrics.abstention_metrics([r.abstained for r in results], [not r.item.answerable for r in results])


def score_results(results: Sequence[QuestionResult], *, k: int, threshold: float) -> dict:
    """Score per-question results into the report blocks (everything but ``config``).

    ``threshold`` is the abstention threshold the answers were produced with (marked on the
    coverage curve; the curve itself is recomputed from candidates and confidences).
    """
    answerable = [r for r in results if r.item.answerable]
    unanswerable = [r for r in results if not r.item.answerable]

    retrieval = {"k": k, **_retrieval(results)}
    retrieval["by_type"] = {t: _retrieval(g) for t, g in _by(answerable, lambda r: r.item.type).items()}

    curve = metrics.coverage_curve(
        [r.confidence for r in results],
        [r.candidate_correct for r in results],
        [not r.item.answerable for r in results],
        has_candidate=[r.candidate is not None for r in results],
    )
    answer = {**_answers(results)}
    answer["coverage"] = sum(not r.abstained for r in results) / len(results) if results else 0.0
    answer["threshold"] = threshold
    answer["by_type"] = {t: _answers(g) for t, g in _by(answerable, lambda r: r.item.type).items()}
    if len({r.item.split for r in results}) > 1:
        answer["by_split"] = {s: _answers(g) for s, g in _by(results, lambda r: r.item.split).items()}
    answer["recommended_threshold"] = metrics.recommend_threshold(curve)
    answer["coverage_curve"] = curve
    answer["squad2"] = metrics.squad2_metrics([r.answer for r in results], [r.item.answers for r in results])
    answer["reliability"] = metrics.reliability([r.confidence for r in results], [r.candidate_correct for r in results])

    abstention = {"n": len(unanswerable), "threshold": threshold, **_abstention(results)}
    abstention["abstained"] = sum(r.abstained for r in results)
    if len({r.item.split for r in results}) > 1:
        abstention["by_split"] = {s: _abstention(g) for s, g in _by(results, lambda r: r.item.split).items()}
    abstention["by_type"] = {
        t: {"n": len(g), "abstained": sum(r.abstained for r in g), "rate": sum(r.abstained for r in g) / len(g)}
        for t, g in _by(results, lambda r: r.item.type).items()
    }

    latency = metrics.latency_stats([r.latency_ms for r in results])
    stages: dict[str, list[float]] = defaultdict(list)
    for r in results:
        for name, ms in r.timings_ms.items():
            stages[name].append(float(ms))
    if stages:
        latency["stages_p50"] = {name: metrics.percentile(v, 50) for name, v in stages.items()}

    answer["questions"] = [
        {"id": r.item.id, "type": r.item.type, "split": r.item.split, "question": r.item.question,
         "answer": r.answer, "candidate": r.candidate, "abstained": r.abstained, "confidence": r.confidence}
        for r in results
    ]
    misses = []
    for r in results:
        label = metrics.classify_miss(
            answerable=r.item.answerable,
            retrieved_relevant=r.first_relevant_rank is not None,
            abstained=r.abstained,
            answer_correct=r.answer_correct,
            candidate_correct=r.candidate_correct,
        )
        if label is None:
            continue
        misses.append(
            {
                "id": r.item.id,
                "label": label,
                "type": r.item.type,
                "split": r.item.split,
                "question": r.item.question,
                "gold": list(r.item.answers),
                "sources": list(r.item.sources),
                "answer": r.answer,
                "candidate": r.candidate,
                "abstained": r.abstained,
                "confidence": r.confidence,
                "first_relevant_rank": r.first_relevant_rank,
                "retrieved": r.retrieved_files[:3],
            }
        )
    return {
        "n": len(results),
        "retrieval": retrieval,
        "answer": answer,
        "abstention": abstention,
        "latency_ms": latency,
        "misses": misses,
    }


def compare_row(mode: str, fusion: str, scored: dict) -> dict:
    """One row of the mode comparison table from a :func:`score_results` dict."""
    return {
        "mode": mode,
        "fusion": fusion if mode == "hybrid" else None,
        "hit@1": scored["retrieval"]["hit@1"],
        "hit@5": scored["retrieval"]["hit@5"],
        "mrr": scored["retrieval"]["mrr"],
        "ndcg@10": scored["retrieval"][f"ndcg@{NDCG_K}"],
        "em": scored["answer"]["em"],
        "f1": scored["answer"]["f1"],
        "contains": scored["answer"]["contains"],
        "abstention_f1": scored["abstention"]["f1"],
        "p50_ms": scored["latency_ms"]["p50"],
    }


def set_row(rep: dict) -> dict:
    return {"n": rep["n"], "hit@5": rep["retrieval"]["hit@5"], "em": rep["answer"]["em"], "f1": rep["answer"]["f1"],
            "contains": rep["answer"]["contains"], "abstention_f1": rep["abstention"]["f1"],
            "squad2_f1": rep["answer"]["squad2"]["f1"], "p50_ms": rep["latency_ms"]["p50"]}


#: Headline figures compared with a baseline report: (block, key, label).
HEADLINES = (
    ("retrieval", "hit@1", "hit@1"), ("retrieval", "hit@5", "hit@5"), ("retrieval", "mrr", "MRR"),
    ("answer", "em", "EM"), ("answer", "f1", "F1"), ("answer", "contains", "contains"),
    ("answer", "coverage", "coverage"), ("abstention", "f1", "abstention F1"),
    ("squad2", "f1", "SQuAD2 F1"), ("latency_ms", "p50", "latency p50 ms"),
)
CHANGE_KINDS = ("fixed", "broken", "still wrong", "still right")


def _headline(report: dict, block: str, key: str) -> float | None:
    if block == "squad2":
        return (report.get("answer", {}).get("squad2") or {}).get(key)
    return report.get(block, {}).get(key)


def compare_reports(new: dict, old: dict) -> dict:
    """Per question: fixed / broken / still wrong / still right against ``old``, and the change
    of every headline figure.

    A question is *right* when it is not among the report's misses (answered correctly, or
    abstained on when unanswerable), so a baseline written before reports listed every question
    (``answer.questions``) still compares; its answers to the questions it got right are then
    unknown (``None``). Questions are matched by id; ones in only one report are counted apart.
    """
    def table(rep: dict) -> dict[str, dict]:
        rows = {q["id"]: {**q, "right": True} for q in rep.get("answer", {}).get("questions", [])}
        for m in rep.get("misses", []):
            rows[m["id"]] = {**rows.get(m["id"], {}), **{k: m.get(k) for k in ("id", "type", "split", "question", "answer",
                                                                            "candidate", "abstained", "confidence")},
                             "gold": m.get("gold"), "right": False}
        return rows

    a, b = table(new), table(old)
    old_lists_all = bool(old.get("answer", {}).get("questions"))
    rows, only_now = [], []
    for qid, q in a.items():
        if qid in b:
            o = b[qid]
        elif not old_lists_all:  # an old-style report lists only its misses: the rest were right
            o = {"right": True, "answer": None, "abstained": False}
        else:
            only_now.append(qid)
            continue
        kind = {(False, True): "fixed", (True, False): "broken", (False, False): "still wrong",
                (True, True): "still right"}[(o["right"], q["right"])]
        rows.append({"id": qid, "kind": kind, "type": q.get("type"), "split": q.get("split"),
                     "question": q.get("question"), "gold": q.get("gold") or o.get("gold"),
                     "old": o.get("answer"), "old_abstained": bool(o.get("abstained")),
                     "new": q.get("answer"), "new_abstained": bool(q.get("abstained"))})
    counts = {k: sum(r["kind"] == k for r in rows) for k in CHANGE_KINDS}
    by_type: dict[str, dict[str, int]] = defaultdict(lambda: {k: 0 for k in CHANGE_KINDS})
    for r in rows:
        by_type[str(r["type"])][r["kind"]] += 1
    figures = []
    for block, key, label in HEADLINES:
        x, y = _headline(old, block, key), _headline(new, block, key)
        figures.append({"figure": label, "baseline": x, "now": y,
                        "change": (y - x) if isinstance(x, (int, float)) and isinstance(y, (int, float)) else None})
    return {"baseline_qa_file": old.get("config", {}).get("qa_file"), "n_compared": len(rows),
            "only_now": only_now, "only_baseline": sorted(set(b) - set(a)),
            "counts": counts, "by_type": dict(sorted(by_type.items())), "figures": figures,
            "questions": [r for r in rows if r["kind"] in ("fixed", "broken")]}
