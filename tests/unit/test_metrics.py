"""Hand-computed cases for rag.evaluation.metrics and the pure parts of rag.evaluation (scoring, reports)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace as NS

import pytest

from rag.evaluation import REPORT_KEYS, QAItem, load_qa, metrics, parse_qa_lines, score_answer, score_results, write_outputs

# ----------------------------------------------------------------------------- normalization / EM / F1


@pytest.mark.parametrize(
    "raw, norm",
    [
        ("The Cat", "cat"),
        ("  a  quick,   brown fox! ", "quick brown fox"),
        ("An apple and THE pear.", "apple and pear"),
        ("$35 million", "35 million"),
        ("49%", "49"),
        ("U.S.", "us"),
        ("“Theatre”", "theatre"),  # typographic quotes; 'the' inside a word is kept
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_answer(raw, norm):
    assert metrics.normalize_answer(raw) == norm


def test_exact_match():
    assert metrics.exact_match("the 49%", ["49%"]) == 1.0
    assert metrics.exact_match("49 percent", ["49%"]) == 0.0
    assert metrics.exact_match("WalkMe.", ["Stripe", "walkme"]) == 1.0  # max over golds
    assert metrics.exact_match(None, ["x"]) == 0.0  # abstention
    assert metrics.exact_match("x", []) == 0.0


def test_f1_hand_computed():
    # pred "about 35 million dollars" (4 tokens) vs gold "$35 million" -> "35 million" (2 tokens):
    # common 2 -> P = 2/4, R = 2/2, F1 = 2*0.5*1/1.5 = 2/3
    assert metrics.f1_score("about $35 million dollars", ["$35 million"]) == pytest.approx(2 / 3)
    # max over golds: second gold matches exactly
    assert metrics.f1_score("about $35 million", ["$35 million", "about $35 million"]) == 1.0
    # duplicates counted with multiplicity: pred "a b b" vs gold "b": P=1/2 (after 'a' article dropped:
    # pred tokens ['b','b'], gold ['b'] -> common 1, P=1/2, R=1 -> 2/3)
    assert metrics.f1_score("a b b", ["b"]) == pytest.approx(2 / 3)
    assert metrics.f1_score("nothing shared", ["gold"]) == 0.0
    assert metrics.f1_score(None, ["gold"]) == 0.0


def test_contains():
    assert metrics.contains_answer("Microsoft holds 49% of OpenAI's shares.", ["49%"]) is True
    assert metrics.contains_answer("It is the WalkMe company", ["walkme"]) is True
    assert metrics.contains_answer("Stripe", ["WalkMe"]) is False
    assert metrics.contains_answer(None, ["WalkMe"]) is False
    assert metrics.contains_answer("anything", ["!!!"]) is False  # gold normalizes to "" -> never matches


def test_answer_metrics_skip_unanswerable_and_abstention_scores_zero():
    preds = ["WalkMe", None, "Paris", "the blue car"]
    golds = [["WalkMe"], ["James Dyett"], [], ["blue car"]]
    # q3 is unanswerable: not counted, even though the system answered it.
    # q2 abstained on an answerable question: 0 on all three.
    m = metrics.answer_metrics(preds, golds)
    assert m["n"] == 3 and m["answered"] == 2
    assert m["em"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["contains"] == pytest.approx(2 / 3)
    # only unanswerable questions -> nothing scored, no division by zero
    assert metrics.answer_metrics(["x"], [[]]) == {"n": 0, "answered": 0, "em": 0.0, "f1": 0.0, "contains": 0.0}


# ----------------------------------------------------------------------------- retrieval


def test_passage_relevance_needs_gold_article_and_answer_text():
    passages = [
        ("Microsoft holds 49% of OpenAI.", ["other.txt"]),  # answer but not a gold article
        ("Nothing here.", ["a.txt"]),  # gold article, no answer
        ("It holds 49% of OPENAI's shares.", ["a.txt"]),  # relevant
        ("copy: 49% stake", ["x.txt", "b.txt"]),  # relevant through a folded duplicate's file
    ]
    rel = metrics.passage_relevance(passages, ["a.txt", "b.txt"], ["49% of openai"])
    assert rel == [frozenset(), frozenset(), frozenset({"a.txt"}), frozenset()]  # case-insensitive match
    rel = metrics.passage_relevance(passages, ["a.txt", "b.txt"], ["49%"])
    assert rel == [frozenset(), frozenset(), frozenset({"a.txt"}), frozenset({"b.txt"})]
    assert metrics.passage_relevance(passages, [], []) == [frozenset()] * 4  # unanswerable


def test_hit_and_mrr():
    A = frozenset({"a"})
    rel = [frozenset(), frozenset(), A, frozenset()]
    assert [metrics.hit_at_k(rel, k) for k in (1, 2, 3, 10)] == [0.0, 0.0, 1.0, 1.0]
    assert metrics.reciprocal_rank(rel) == pytest.approx(1 / 3)
    assert metrics.reciprocal_rank(rel, k=2) == 0.0
    assert metrics.reciprocal_rank([frozenset()] * 3) == 0.0


def test_ndcg_hand_computed():
    A, B = frozenset({"a"}), frozenset({"b"})
    none = frozenset()
    # one gold article, found at rank 1 -> 1
    assert metrics.ndcg_at_k([A, none], 10, 1) == 1.0
    # one gold article at rank 2 -> 1/log2(3)
    assert metrics.ndcg_at_k([none, A], 10, 1) == pytest.approx(1 / math.log2(3))
    # two gold articles at ranks 1 and 3: (1 + 1/2) / (1 + 1/log2 3)
    assert metrics.ndcg_at_k([A, none, B], 10, 2) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # two gold articles, only one found at rank 1: 1 / (1 + 1/log2 3)
    assert metrics.ndcg_at_k([A, none], 10, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # nothing relevant / unanswerable
    assert metrics.ndcg_at_k([none, none], 10, 1) == 0.0
    assert metrics.ndcg_at_k([A], 10, 0) == 0.0
    # cut at k: relevant at rank 3 is outside @2
    assert metrics.ndcg_at_k([none, none, A], 2, 1) == 0.0


def test_ndcg_duplicate_relevant_item_does_not_exceed_one():
    A = frozenset({"a"})
    # the same relevant chunk (or two chunks of the same gold article) retrieved twice:
    # the second counts 0, so nDCG is exactly 1, not (1 + 1/log2 3) / 1
    assert metrics.ndcg_at_k([A, A, A], 10, 1) == 1.0
    # duplicate before the second gold article: gains at ranks 1 and 3 only
    B = frozenset({"b"})
    assert metrics.ndcg_at_k([A, A, B], 10, 2) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # one passage that folds both gold articles (near-duplicates): 1 rank is all that is possible
    assert metrics.ndcg_at_k([frozenset({"a", "b"}), A, B], 10, 2) == 1.0


def test_retrieval_metrics_average_over_answerable_only():
    A = frozenset({"a"})
    none = frozenset()
    rels = [[A], [none, A], [none, none], [A]]
    n_golds = [1, 1, 1, 0]  # last one unanswerable: skipped
    m = metrics.retrieval_metrics(rels, n_golds, ks=(1, 3), ndcg_k=10)
    assert m["n"] == 3
    assert m["hit@1"] == pytest.approx(1 / 3)
    assert m["hit@3"] == pytest.approx(2 / 3)
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 3)


# ----------------------------------------------------------------------------- abstention


def test_abstention_metrics_hand_computed():
    abstained = [True, True, False, False, True]
    unanswerable = [True, False, True, False, True]
    # tp=2 (q1,q5), fp=1 (q2), fn=1 (q3), tn=1 -> P=2/3, R=2/3, F1=2/3
    m = metrics.abstention_metrics(abstained, unanswerable)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # never abstaining: zero denominators give 0.0
    m = metrics.abstention_metrics([False, False], [True, False])
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)


# ----------------------------------------------------------------------------- coverage curve


def test_coverage_curve_endpoints_and_values():
    conf = [0.9, 0.4, 0.7, 0.2, 1.0]
    correct = [True, True, False, False, False]  # candidate contains gold (answerable only)
    unans = [False, False, False, True, True]
    curve = metrics.coverage_curve(conf, correct, unans)
    assert len(curve) == 101
    assert curve[0]["threshold"] == 0.0 and curve[-1]["threshold"] == 1.0
    # t = 0: everything answered; right = q1, q2 -> accuracy 2/5; abstains on nothing -> F1 0
    c0 = curve[0]
    assert c0["coverage"] == 1.0 and c0["accuracy"] == pytest.approx(2 / 5)
    assert c0["accuracy_all"] == pytest.approx(2 / 3) and c0["abstention_f1"] == 0.0
    # t = 1: only confidence >= 1.0 answered (q5, unanswerable -> wrong)
    c1 = curve[-1]
    assert c1["coverage"] == pytest.approx(1 / 5) and c1["accuracy"] == 0.0
    # abstains on q1..q4: tp=1 (q4), fp=3, fn=1 (q5) -> P=1/4, R=1/2, F1=1/3
    assert c1["abstention_f1"] == pytest.approx(1 / 3)
    # t = 0.5: answered q1, q3, q5 -> coverage 3/5, accuracy 1/3; abstain q2, q4 -> P=1/2 R=1/2
    c50 = curve[50]
    assert c50["threshold"] == 0.5
    assert c50["coverage"] == pytest.approx(3 / 5) and c50["accuracy"] == pytest.approx(1 / 3)
    assert c50["abstention_f1"] == pytest.approx(0.5)
    # a question without a candidate is never answered; nothing answered -> accuracy None
    curve = metrics.coverage_curve([0.0], [False], [True], has_candidate=[False])
    assert curve[0]["coverage"] == 0.0 and curve[0]["accuracy"] is None and curve[0]["abstention_f1"] == 1.0
    # coverage is non-increasing in t
    covs = [p["coverage"] for p in metrics.coverage_curve(conf, correct, unans)]
    assert all(a >= b for a, b in zip(covs, covs[1:]))


def test_recommend_threshold_middle_of_best_run():
    # answerable right at 0.8 and 0.6; unanswerable at 0.3 and 0.1
    conf = [0.8, 0.6, 0.3, 0.1]
    curve = metrics.coverage_curve(conf, [True, True, False, False], [False, False, True, True])
    rec = metrics.recommend_threshold(curve)
    # perfect separation for 0.31 <= t <= 0.60: objective 1 -> middle 0.455 -> rounded 0.46 (banker's: 0.46)
    assert rec["range"] == [0.31, 0.6]
    assert rec["objective"] == 1.0
    assert 0.45 <= rec["threshold"] <= 0.46
    assert metrics.recommend_threshold([]) == {}


# ----------------------------------------------------------------------------- latency, misses


def test_percentile_and_latency():
    xs = [10.0, 20.0, 30.0, 40.0]
    assert metrics.percentile(xs, 50) == 25.0
    assert metrics.percentile(xs, 95) == pytest.approx(38.5)  # 30 + 0.85 * 10
    assert metrics.percentile([5.0], 95) == 5.0
    assert metrics.percentile([], 50) == 0.0
    s = metrics.latency_stats(xs)
    assert (s["n"], s["p50"], s["mean"], s["max"]) == (4, 25.0, 25.0, 40.0)


def test_classify_miss():
    c = metrics.classify_miss
    kw = dict(answerable=True, retrieved_relevant=True, abstained=False, answer_correct=True, candidate_correct=True)
    assert c(**kw) is None
    assert c(**{**kw, "answer_correct": False, "candidate_correct": False}) == "reader"
    assert c(**{**kw, "retrieved_relevant": False, "answer_correct": False, "candidate_correct": False}) == "retrieval"
    assert c(**{**kw, "abstained": True, "answer_correct": False}) == "threshold"
    assert c(**{**kw, "abstained": True, "answer_correct": False, "candidate_correct": False}) == "reader"
    un = dict(answerable=False, retrieved_relevant=False, answer_correct=False, candidate_correct=False)
    assert c(**un, abstained=True) is None
    assert c(**un, abstained=False) == "threshold"


# ----------------------------------------------------------------------------- Q&A loading


def test_malformed_lines_reported_with_line_numbers_rest_load(tmp_path):
    good = {"id": "q1", "question": "Who?", "answers": ["Ann"], "sources": ["a.txt"], "type": "who", "split": "dev"}
    lines = [
        json.dumps(good),
        "{not json",
        "",
        json.dumps(["a list"]),
        json.dumps({"id": "q2", "question": "Q?", "answers": "Ann", "sources": []}),
        json.dumps({"id": "q1", "question": "dup?", "answers": [], "sources": []}),
        json.dumps({"id": "q3", "question": "Unanswerable?", "answers": [], "sources": [], "split": "heldout", "extra": 1}),
        json.dumps({"question": "no id", "answers": [], "sources": []}),
        json.dumps({"id": "q4", "question": "no sources", "answers": ["x"], "sources": []}),
    ]
    p = tmp_path / "qa.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items, warnings = load_qa(p)
    assert [q.id for q in items] == ["q1", "q3"]
    assert items[1].type == "unanswerable" and not items[1].answerable
    bad_lines = sorted(int(w.split("line ")[1].split(":")[0].split(" ")[0]) for w in warnings)
    assert bad_lines == [2, 4, 5, 6, 8, 9]
    assert any("line 2" in w and "invalid JSON" in w for w in warnings)
    assert any("line 6" in w and "duplicate" in w for w in warnings)
    # split filter
    items, _ = load_qa(p, split="heldout")
    assert [q.id for q in items] == ["q3"]


def test_real_qa_files_load_cleanly():
    for name, n in (("eval/seeds_qa.jsonl", 79), ("eval/bbc_qa.jsonl", 25)):
        items, warnings = load_qa(name)
        assert len(items) == n and warnings == []


# ----------------------------------------------------------------------------- scoring fake answers end to end


def _hit(file, text, dups=()):
    return NS(file=file, chunk=NS(text=text), duplicates=[NS(file=d) for d in dups])


def _answer(answer, candidate, conf, passages, abstained=None):
    abstained = answer is None if abstained is None else abstained
    return NS(answer=answer, candidate=candidate, confidence=conf, abstained=abstained, passages=passages,
              timings_ms={"retrieve": 1.0, "read": 2.0})


def test_score_results_and_reports(tmp_path):
    items, _ = parse_qa_lines(
        [
            json.dumps({"id": "a", "question": "Q a", "answers": ["WalkMe"], "sources": ["x.txt"], "type": "who"}),
            json.dumps({"id": "b", "question": "Q b", "answers": ["49%"], "sources": ["x.txt", "y.txt"], "type": "number"}),
            json.dumps({"id": "c", "question": "Q c | pipe", "answers": ["Paris"], "sources": ["z.txt"], "type": "where"}),
            json.dumps({"id": "d", "question": "Q d", "answers": ["1999"], "sources": ["z.txt"], "type": "date"}),
            json.dumps({"id": "u", "question": "Q u", "answers": [], "sources": []}),
        ]
    )
    answers = [
        _answer("WalkMe", "WalkMe", 0.9, [_hit("x.txt", "at WalkMe"), _hit("x.txt", "at walkme again")]),
        _answer(None, "49%", 0.3, [_hit("q.txt", "49%"), _hit("x.txt", "held 49%", dups=["y.txt"])]),  # threshold
        _answer("London", "London", 0.8, [_hit("q.txt", "Paris")]),  # retrieval
        _answer("2001", "2001", 0.7, [_hit("z.txt", "in 1999")]),  # reader
        _answer("Rome", "Rome", 0.6, [_hit("q.txt", "Rome")]),  # threshold (answered unanswerable)
    ]
    results = [score_answer(q, a, 10.0 * (i + 1)) for i, (q, a) in enumerate(zip(items, answers))]
    s = score_results(results, k=10, threshold=0.5)
    r = s["retrieval"]
    assert r["n"] == 4
    assert r["hit@1"] == pytest.approx(2 / 4) and r["hit@3"] == pytest.approx(3 / 4)
    # a: rank 1 (second chunk of same article adds nothing) -> 1; b: rank 2 folds x and y -> 1/log2(3) / 1
    assert r["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 0 + 1) / 4)
    assert r["mrr"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    a = s["answer"]
    assert (a["n"], a["em"], a["contains"]) == (4, 0.25, 0.25)
    assert a["coverage"] == pytest.approx(4 / 5)
    ab = s["abstention"]
    assert (ab["tp"], ab["fp"], ab["fn"], ab["tn"]) == (0, 1, 1, 3)
    labels = {m["id"]: m["label"] for m in s["misses"]}
    assert labels == {"b": "threshold", "c": "retrieval", "d": "reader", "u": "threshold"}
    assert s["latency_ms"]["p50"] == 30.0 and s["latency_ms"]["stages_p50"] == {"retrieve": 1.0, "read": 2.0}
    # the curve at the run's own threshold reproduces the run's coverage
    at = next(p for p in a["coverage_curve"] if p["threshold"] == 0.5)
    assert at["coverage"] == a["coverage"]

    report = {**s, "config": {"qa_file": "x.jsonl", "split": None, "mode": "hybrid", "fusion": "rrf", "k": 10,
                              "threshold": 0.5, "model": "m", "backend": "torch", "articles_dir": "seeds",
                              "warnings": ["x.jsonl line 3: invalid JSON; skipped"]}}
    report = {k: report[k] for k in REPORT_KEYS}
    j, md, png = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "r-coverage.png"
    write_outputs(report, json_out=j, report_out=md, chart_out=png)
    assert list(json.loads(j.read_text())) == list(REPORT_KEYS)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = md.read_text()
    assert "![coverage, accuracy and reliability](r-coverage.png)" in text
    assert "Q c \\| pipe" in text and "line 3" in text
    for label in ("retrieval", "reader", "threshold"):
        assert f"| {label} |" in text


def test_qaitem_answerable():
    q = QAItem(id="x", question="?", answers=(), sources=(), type="unanswerable", split=None, line=1)
    assert not q.answerable


def test_squad2_metrics_hand_computed():
    # answerable right, answerable half right, answerable abstained, unanswerable abstained, unanswerable answered
    preds = ["Einstein GPT", "the big red dog", None, None, "Microsoft"]
    golds = [["Einstein GPT"], ["red dog barks"], ["49%"], [], []]
    m = metrics.squad2_metrics(preds, golds)
    f1_half = 2 * (2 / 3) * (2 / 3) / (4 / 3)  # "big red dog" vs "red dog barks": 2 of 3 tokens each side
    assert m["HasAns_total"] == 3 and m["NoAns_total"] == 2 and m["total"] == 5
    assert m["HasAns_exact"] == pytest.approx(1 / 3)
    assert m["HasAns_f1"] == pytest.approx((1 + f1_half) / 3)
    assert m["NoAns_exact"] == m["NoAns_f1"] == pytest.approx(0.5)
    assert m["exact"] == pytest.approx((1 + 1) / 5)
    assert m["f1"] == pytest.approx((1 + f1_half + 1) / 5)
    assert metrics.squad2_metrics([], [])["f1"] == 0.0


def test_reliability_bins_and_ece():
    conf = [0.05, 0.15, 0.95, 0.95, 1.0, 0.55]
    right = [False, False, True, True, False, True]
    r = metrics.reliability(conf, right, bins=10)
    assert [b["n"] for b in r["bins"]] == [1, 1, 1, 3]
    top = r["bins"][-1]
    assert top["accuracy"] == pytest.approx(2 / 3) and top["confidence"] == pytest.approx((0.95 + 0.95 + 1.0) / 3)
    expected = (1 / 6) * 0.05 + (1 / 6) * 0.15 + (1 / 6) * 0.45 + (3 / 6) * abs(2.9 / 3 - 2 / 3)
    assert r["ece"] == pytest.approx(expected)
    with pytest.raises(ValueError):
        metrics.reliability([0.1], [])


def _report(rows, misses_ids, questions=True):
    """A minimal report: ``rows`` = (id, type, answer, abstained); the ids in ``misses_ids`` are misses."""
    qs = [{"id": i, "type": t, "split": None, "question": f"Q {i}", "answer": a, "candidate": a, "abstained": ab,
           "confidence": 0.5} for i, t, a, ab in rows]
    misses = [{**q, "label": "reader", "gold": ["g"]} for q in qs if q["id"] in misses_ids]
    return {"retrieval": {"hit@1": 0.5, "hit@5": 1.0, "mrr": 0.7}, "misses": misses, "config": {"qa_file": "x.jsonl"},
            "answer": {"em": 0.5, "f1": 0.6, "contains": 0.7, "coverage": 1.0, **({"questions": qs} if questions else {})},
            "abstention": {"f1": 0.4}, "latency_ms": {"p50": 10.0}}


def test_compare_reports_hand_checked():
    from rag.evaluation import compare_reports

    old = _report([("a", "who", "x", False), ("b", "who", "y", False), ("c", "date", "z", False),
                   ("d", "date", None, True)], {"a", "c"})
    new = _report([("a", "who", "x2", False), ("b", "who", None, True), ("c", "date", "z2", False),
                   ("d", "date", None, True), ("e", "who", "w", False)], {"b", "c"})
    new["answer"]["f1"] = 0.75
    ch = compare_reports(new, old)
    assert ch["counts"] == {"fixed": 1, "broken": 1, "still wrong": 1, "still right": 1}
    assert ch["by_type"]["who"] == {"fixed": 1, "broken": 1, "still wrong": 0, "still right": 0}
    assert ch["only_now"] == ["e"] and ch["n_compared"] == 4
    side = {q["id"]: q for q in ch["questions"]}
    assert set(side) == {"a", "b"}
    assert (side["a"]["kind"], side["a"]["old"], side["a"]["new"]) == ("fixed", "x", "x2")
    assert (side["b"]["kind"], side["b"]["new_abstained"]) == ("broken", True)
    f1 = next(f for f in ch["figures"] if f["figure"] == "F1")
    assert f1["change"] == pytest.approx(0.15)
    # a baseline that lists only its misses (reports before answer.questions): the rest were right
    legacy = compare_reports(new, _report([("a", "who", "x", False), ("c", "date", "z", False)], {"a", "c"}, questions=False))
    assert legacy["counts"] == {"fixed": 1, "broken": 1, "still wrong": 1, "still right": 2}


def test_eval_with_a_baseline_writes_the_changes(tmp_path):
    from rag.evaluation import compare_reports

    items, _ = parse_qa_lines([
        json.dumps({"id": "a", "question": "Q a", "answers": ["WalkMe"], "sources": ["x.txt"], "type": "who"}),
        json.dumps({"id": "b", "question": "Q b", "answers": ["49%"], "sources": ["x.txt"], "type": "number"}),
    ])
    hits = [_hit("x.txt", "WalkMe holds 49%")]

    def run(ans_a, ans_b):
        results = [score_answer(items[0], _answer(ans_a, ans_a, 0.9, hits), 5.0),
                   score_answer(items[1], _answer(ans_b, ans_b, 0.9, hits), 5.0)]
        rep = {**score_results(results, k=10, threshold=0.5),
               "config": {"qa_file": "x.jsonl", "split": None, "mode": "hybrid", "fusion": "rrf", "k": 10,
                          "threshold": 0.5, "model": "m", "backend": "onnx", "articles_dir": "seeds"}}
        return {k: rep[k] for k in REPORT_KEYS}

    old, new = run("Oracle", "49%"), run("WalkMe", "12%")
    new["answer"]["changes"] = {**compare_reports(new, old), "baseline_file": "old.json"}
    assert new["answer"]["changes"]["counts"] == {"fixed": 1, "broken": 1, "still wrong": 0, "still right": 0}
    write_outputs(new, json_out=tmp_path / "r.json", report_out=tmp_path / "r.md", chart_out=tmp_path / "r-coverage.png")
    md = (tmp_path / "r.md").read_text()
    assert "## Against the baseline" in md and "![changes by question type](r-changes.png)" in md
    assert "| a | fixed | who | Q a | WalkMe | Oracle | WalkMe |" in md
    assert "| b | broken | number | Q b | 49% | 49% | 12% |" in md
    assert (tmp_path / "r-changes.png").read_bytes()[:4] == b"\x89PNG"
