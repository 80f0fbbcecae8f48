"""Evaluation metrics for extractive QA: pure functions, no I/O.

Conventions used throughout:

* A ratio whose denominator is zero (e.g. precision when nothing was abstained on) is ``0.0``,
  except where a function documents ``None`` (the accuracy of zero answered questions on the
  coverage curve is undefined and left as ``None`` so that a chart leaves a gap).
* Answer strings are compared after SQuAD normalization (:func:`normalize_answer`).
* Retrieval relevance is judged per passage and counted per *gold article* (see
  :func:`passage_relevance`), so retrieving the same article (or chunk) twice never counts twice.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = [
    "normalize_answer",
    "exact_match",
    "f1_score",
    "contains_answer",
    "passage_relevance",
    "hit_at_k",
    "reciprocal_rank",
    "ndcg_at_k",
    "retrieval_metrics",
    "answer_metrics",
    "abstention_metrics",
    "squad2_metrics",
    "reliability",
    "coverage_curve",
    "recommend_threshold",
    "percentile",
    "latency_stats",
    "classify_miss",
    "THRESHOLDS",
]

#: Thresholds of the coverage curve: 0.00, 0.01, ..., 1.00 (101 points, rounded to 2 decimals).
THRESHOLDS: tuple[float, ...] = tuple(round(i / 100, 2) for i in range(101))

_PUNCT = set(string.punctuation) | set("‘’“”–—…«»")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


# --------------------------------------------------------------------------- answers


def normalize_answer(text: str | None) -> str:
    """SQuAD normalization: lowercase, drop punctuation, drop the articles a/an/the,
    collapse whitespace. ``None`` normalizes to ``""``.

    Punctuation is ASCII punctuation plus typographic quotes and dashes, so
    ``"The U.S. economy"`` -> ``"us economy"`` and ``"“49%”"`` -> ``"49"``.
    """
    if not text:
        return ""
    s = text.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """1.0 if the normalized prediction equals a normalized gold answer, else 0.0.

    A ``None`` prediction (abstention) and an empty gold list both score 0.0.
    """
    if prediction is None or not golds:
        return 0.0
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(g) for g in golds))


def _f1_one(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    if not pred_tokens or not gold_tokens:
        # SQuAD: if either is empty, F1 is 1 when both are empty, else 0.
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str | None, golds: Sequence[str]) -> float:
    """SQuAD token F1 between the normalized prediction and each normalized gold answer,
    maximised over the gold answers. ``None`` (abstention) or no golds scores 0.0."""
    if prediction is None or not golds:
        return 0.0
    p = normalize_answer(prediction).split()
    return max(_f1_one(p, normalize_answer(g).split()) for g in golds)


def contains_answer(prediction: str | None, golds: Sequence[str]) -> bool:
    """True if the normalized prediction contains a normalized gold answer as a substring
    (so a longer answer that states the fact counts). Empty normalized golds never
    match; ``None`` (abstention) or no golds is False."""
    if prediction is None or not golds:
        return False
    p = normalize_answer(prediction)
    return any(g and g in p for g in (normalize_answer(x) for x in golds))


def answer_metrics(
    predictions: Sequence[str | None],
    golds: Sequence[Sequence[str]],
) -> dict[str, float | int]:
    """Mean EM, F1 and ``contains`` over the *answerable* questions only.

    ``predictions[i]`` is the given answer (``None`` when the system abstained, which scores 0
    on all three); ``golds[i]`` the gold answers (empty = unanswerable: skipped entirely, so
    unanswerable questions never count in EM/F1). Returns ``n`` (answerable questions scored),
    ``answered`` (of them, how many got an answer), ``em``, ``f1``, ``contains``.
    """
    if len(predictions) != len(golds):
        raise ValueError("predictions and golds differ in length")
    em = f1 = cont = 0.0
    n = answered = 0
    for pred, gold in zip(predictions, golds):
        if not gold:
            continue
        n += 1
        answered += pred is not None
        em += exact_match(pred, gold)
        f1 += f1_score(pred, gold)
        cont += contains_answer(pred, gold)
    d = n or 1
    return {"n": n, "answered": answered, "em": em / d, "f1": f1 / d, "contains": cont / d}


def squad2_metrics(predictions: Sequence[str | None], golds: Sequence[Sequence[str]]) -> dict[str, float | int]:
    """The official SQuAD 2.0 figures (``evaluate-v2.0.py``), unanswerable questions counted.

    An abstention is the empty prediction. An unanswerable question (no golds) scores 1 on
    exact and F1 when abstained on, else 0; an answerable one scores max EM / F1 over its golds
    (0 when abstained on). ``exact``/``f1`` average over all questions (in percent, as the
    official script prints them, divided by 100 here to match our other figures); ``HasAns_*``
    over answerable and ``NoAns_*`` over unanswerable questions.
    """
    if len(predictions) != len(golds):
        raise ValueError("predictions and golds differ in length")
    has_em = has_f1 = no = 0.0
    n_has = n_no = 0
    for pred, gold in zip(predictions, golds):
        if gold:
            n_has += 1
            has_em += exact_match(pred, gold)
            has_f1 += f1_score(pred, gold)
        else:
            n_no += 1
            no += pred is None
    n = n_has + n_no
    out: dict[str, float | int] = {
        "exact": (has_em + no) / n if n else 0.0,
        "f1": (has_f1 + no) / n if n else 0.0,
        "total": n,
        "HasAns_exact": has_em / n_has if n_has else 0.0,
        "HasAns_f1": has_f1 / n_has if n_has else 0.0,
        "HasAns_total": n_has,
        "NoAns_exact": no / n_no if n_no else 0.0,
        "NoAns_f1": no / n_no if n_no else 0.0,
        "NoAns_total": n_no,
    }
    return out


def reliability(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> dict:
    """Reliability of a confidence: per equal-width bin, the mean confidence against the share
    of right answers, and the expected calibration error (ECE: the bins' |gap|, weighted by
    their share of questions). Empty bins are left out of ``bins``."""
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct differ in length")
    rows = []
    ece = 0.0
    n = len(confidences)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if not idx:
            continue
        conf = sum(confidences[i] for i in idx) / len(idx)
        acc = sum(bool(correct[i]) for i in idx) / len(idx)
        ece += len(idx) / n * abs(conf - acc)
        rows.append({"low": lo, "high": hi, "n": len(idx), "confidence": conf, "accuracy": acc})
    return {"bins": rows, "ece": ece if n else 0.0, "n": n}


# --------------------------------------------------------------------------- retrieval


def passage_relevance(
    passages: Sequence[tuple[str, Iterable[str]]],
    gold_sources: Iterable[str],
    gold_answers: Sequence[str],
) -> list[frozenset[str]]:
    """For each ranked passage, the set of gold articles it makes *found* (empty = not relevant).

    ``passages[i] = (text, files)``: the passage text and every file it stands for (the hit's
    own article, the articles of near-duplicates folded into it, identical-content aliases).
    A passage is relevant when one of its files is a gold source AND a gold answer occurs in
    its text, compared case-insensitively (``str.casefold``, otherwise verbatim). It then covers
    all its gold files. Relevance is binary per rank; the *items* counted by
    :func:`ndcg_at_k` are gold articles, so a second passage from an already-found article
    (an overlapping chunk, the same chunk twice) adds nothing.
    """
    gold = set(gold_sources)
    answers = [a.casefold() for a in gold_answers if a]
    out: list[frozenset[str]] = []
    for text, files in passages:
        hit_gold = gold.intersection(files)
        if hit_gold and answers:
            t = text.casefold()
            if any(a in t for a in answers):
                out.append(frozenset(hit_gold))
                continue
        out.append(frozenset())
    return out


def hit_at_k(relevance: Sequence[frozenset[str] | bool], k: int) -> float:
    """1.0 if any of the first ``k`` passages is relevant, else 0.0."""
    return float(any(bool(r) for r in relevance[:k]))


def reciprocal_rank(relevance: Sequence[frozenset[str] | bool], k: int | None = None) -> float:
    """1 / (rank of the first relevant passage), 0.0 if none within the first ``k`` (all if None)."""
    for i, r in enumerate(relevance[:k] if k else relevance, start=1):
        if r:
            return 1.0 / i
    return 0.0


def ndcg_at_k(relevance: Sequence[frozenset[str]], k: int, n_gold: int) -> float:
    """Binary nDCG@k where the relevant *items* are the distinct gold articles.

    Gain at rank i (1-based) is 1 if the passage covers a gold article not covered by an
    earlier passage, else 0 (duplicates of an already-counted item count 0); discount is
    ``1 / log2(i + 1)``. The ideal DCG puts ``min(k, R)`` relevant items at ranks 1..R where
    ``R`` = the number of distinct relevant items actually possible: ``n_gold`` gold
    articles, minus the extra ones a single passage covered at once (a passage whose folded
    near-duplicates come from two gold articles shows both at one rank, so only one rank can
    be earned for them). Hence 0 <= nDCG <= 1 always. ``n_gold == 0`` gives 0.0.
    """
    if n_gold <= 0 or k <= 0:
        return 0.0
    seen: set[str] = set()
    dcg = 0.0
    folded_extra = 0
    for i, r in enumerate(relevance[:k], start=1):
        new = set(r) - seen
        if new:
            dcg += 1.0 / math.log2(i + 1)
            folded_extra += len(new) - 1
            seen |= new
    possible = max(1, min(k, n_gold - folded_extra))
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, possible + 1))
    return min(1.0, dcg / idcg)


def retrieval_metrics(
    relevances: Sequence[Sequence[frozenset[str]]],
    n_golds: Sequence[int],
    ks: Sequence[int] = (1, 3, 5, 10),
    ndcg_k: int = 10,
) -> dict[str, float | int]:
    """Mean ``hit@k`` for each k in ``ks``, ``mrr`` and ``ndcg@<ndcg_k>`` over answerable questions.

    ``relevances[i]`` is :func:`passage_relevance` of question i's ranked passages and
    ``n_golds[i]`` its number of distinct gold source articles; questions with ``n_golds == 0``
    (unanswerable) are skipped. MRR is computed over the whole ranked list given (MRR@k when the
    list was cut at k). ``n`` is the number of questions averaged.
    """
    keys = [f"hit@{k}" for k in ks] + ["mrr", f"ndcg@{ndcg_k}"]
    sums = dict.fromkeys(keys, 0.0)
    n = 0
    for rel, ng in zip(relevances, n_golds, strict=True):
        if ng <= 0:
            continue
        n += 1
        for k in ks:
            sums[f"hit@{k}"] += hit_at_k(rel, k)
        sums["mrr"] += reciprocal_rank(rel)
        sums[f"ndcg@{ndcg_k}"] += ndcg_at_k(rel, ndcg_k, ng)
    d = n or 1
    return {"n": n, **{key: v / d for key, v in sums.items()}}


# --------------------------------------------------------------------------- abstention


def abstention_metrics(abstained: Sequence[bool], unanswerable: Sequence[bool]) -> dict[str, float | int]:
    """Precision, recall and F1 of abstaining, with *unanswerable* as the positive class.

    precision = abstentions on unanswerable / all abstentions; recall = abstentions on
    unanswerable / unanswerable questions; F1 their harmonic mean. A zero denominator gives 0.0.
    Also returns the confusion counts ``tp fp fn tn``.
    """
    tp = fp = fn = tn = 0
    for a, u in zip(abstained, unanswerable, strict=True):
        if a and u:
            tp += 1
        elif a:
            fp += 1
        elif u:
            fn += 1
        else:
            tn += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


# --------------------------------------------------------------------------- coverage / threshold


def coverage_curve(
    confidences: Sequence[float],
    candidate_correct: Sequence[bool],
    unanswerable: Sequence[bool],
    has_candidate: Sequence[bool] | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
) -> list[dict[str, float | int | None]]:
    """What the system would score at each abstention threshold, over ALL questions.

    At threshold ``t`` a question is *answered* when it has a candidate and its confidence is
    ``>= t`` (the pipeline abstains below the threshold). For each ``t``:

    * ``coverage`` = answered / all questions;
    * ``accuracy`` = answered-and-right / answered, where right = answerable and the candidate
      ``contains`` a gold answer (``candidate_correct``); ``None`` when nothing is answered;
    * ``accuracy_all`` = answered-and-right / answerable questions (accuracy counting every
      abstention on an answerable question as wrong);
    * ``abstention_f1`` = :func:`abstention_metrics` F1 of "not answered" vs unanswerable;
    * ``objective`` = mean of ``accuracy_all`` and ``abstention_f1`` (see
      :func:`recommend_threshold`).

    ``has_candidate[i]`` False means no candidate at all (never answered); default all True.
    """
    n = len(confidences)
    if has_candidate is None:
        has_candidate = [True] * n
    if not (len(candidate_correct) == len(unanswerable) == len(has_candidate) == n):
        raise ValueError("coverage_curve inputs differ in length")
    n_answerable = sum(not u for u in unanswerable)
    out = []
    for t in thresholds:
        answered = [bool(h) and c >= t for c, h in zip(confidences, has_candidate)]
        n_ans = sum(answered)
        right = sum(a and ok and not u for a, ok, u in zip(answered, candidate_correct, unanswerable))
        ab = abstention_metrics([not a for a in answered], unanswerable)
        acc_all = right / n_answerable if n_answerable else 0.0
        out.append(
            {
                "threshold": t,
                "answered": n_ans,
                "coverage": n_ans / n if n else 0.0,
                "accuracy": right / n_ans if n_ans else None,
                "accuracy_all": acc_all,
                "abstention_f1": ab["f1"],
                "objective": (acc_all + ab["f1"]) / 2,
            }
        )
    return out


def recommend_threshold(curve: Sequence[dict]) -> dict[str, float | int | None]:
    """Recommend an abstention threshold from a :func:`coverage_curve`.

    Objective: maximise the mean of ``accuracy_all`` (share of answerable questions answered
    right) and ``abstention_f1`` (abstaining on exactly the unanswerable ones), weighting
    "answer what can be answered" and "abstain on what cannot" equally. The objective is a step
    function of the threshold, so several thresholds tie; the middle of the widest run of
    consecutive best thresholds is returned (the most margin either side against confidence
    drift), rounded to 2 decimals. Returns that curve point plus ``range`` = [low, high] of the
    run. An empty curve gives ``{}``.
    """
    if not curve:
        return {}
    best = max(p["objective"] for p in curve)
    runs: list[list[int]] = []
    for i, p in enumerate(curve):
        if abs(p["objective"] - best) <= 1e-12:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
    run = max(runs, key=len)  # first widest run on ties
    lo, hi = curve[run[0]]["threshold"], curve[run[-1]]["threshold"]
    mid = round((lo + hi) / 2, 2)
    # the point on the curve at (or just below) the midpoint describes what that threshold scores
    point = min((curve[i] for i in run), key=lambda p: (abs(p["threshold"] - mid), -p["threshold"]))
    return {**point, "threshold": mid, "range": [lo, hi]}


# --------------------------------------------------------------------------- latency


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks
    (NumPy's default method). Empty input gives 0.0."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def latency_stats(ms: Sequence[float]) -> dict[str, float | int]:
    """``p50``, ``p95``, ``mean``, ``max`` (milliseconds) and ``n`` of per-question wall times."""
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "mean": sum(ms) / len(ms) if ms else 0.0,
        "max": max(ms) if ms else 0.0,
    }


# --------------------------------------------------------------------------- misses


def classify_miss(
    *,
    answerable: bool,
    retrieved_relevant: bool,
    abstained: bool,
    answer_correct: bool,
    candidate_correct: bool,
) -> str | None:
    """Label why a question is not fully right, or ``None`` when it is.

    Fully right = an answerable question answered (not abstained) with a correct answer
    (``contains``), or an unanswerable one abstained on. Otherwise:

    * ``"threshold"``: an unanswerable question was answered, or an answerable one was
      abstained on although the candidate was right (the threshold is to blame);
    * ``"retrieval"``: answerable, and no relevant passage in the top k;
    * ``"reader"``: a relevant passage was retrieved but the answer (or, when abstaining, the
      candidate) is wrong.
    """
    if not answerable:
        return None if abstained else "threshold"
    if not abstained and answer_correct:
        return None
    if abstained and candidate_correct:
        return "threshold"
    if not retrieved_relevant:
        return "retrieval"
    return "reader"
