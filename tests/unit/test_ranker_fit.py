"""The listwise span ranker fit by ``rag.training.calibrate``: it learns what the model's order
misses, and with a strong pull it stays the model's order (scores in the model's own units)."""

from __future__ import annotations

import random

import numpy as np

from rag.spans import SpanCandidate, SpanRanker
from rag.training.calibrate import Row, fit_ranker, rerank


def _rows(n: int, seed: int) -> list[Row]:
    """'How many' questions whose model order prefers a word over the right number half the time."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        number, word = f"{rng.randint(2, 900)} jobs", rng.choice(["Leeds", "the union", "Monday talks"])
        cands = [SpanCandidate(number, rng.uniform(0, 3), 1.0, 1), SpanCandidate(word, rng.uniform(0, 3), 1.0, 1)]
        cands.sort(key=lambda c: -c.margin)
        rows.append(Row(f"How many jobs will go at plant {i}?", (number,), cands[0].text, cands[0].margin, 1.0, 1,
                        {"margin": cands[0].margin}, cands))
    return rows


def _right(rows: list[Row]) -> float:
    return float(np.mean([r.candidate == r.answers[0] for r in rows]))


def test_the_ranker_learns_the_answer_shape_the_model_order_misses():
    train, test = _rows(200, 1), _rows(200, 2)
    spec = fit_ranker({"dev": train}, retrieval_weight=2.0, l2=0.1)
    assert spec and spec["l2"] == 0.1
    before, after = _right(test), _right(rerank(test, SpanRanker(spec)))
    assert before < 0.65 and after > 0.95, (before, after)


def test_a_strong_pull_keeps_the_model_order_in_its_units():
    rows = _rows(100, 3)
    spec = fit_ranker({"dev": rows}, retrieval_weight=2.0, l2=1e6)
    ranker = SpanRanker(spec)
    for r in rows[:20]:
        got = ranker.scores(r.question, r.spans)
        want = np.array([c.margin + 2.0 * c.retrieval for c in r.spans])
        np.testing.assert_allclose(got, want, atol=1e-3)
