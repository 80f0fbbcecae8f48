"""Rank fusion and near-duplicate folding (rag/retrieve.py): pure functions of rankings and vectors."""

from __future__ import annotations

import numpy as np
import pytest

from rag.retrieve import fold_duplicates, rrf, score_fusion


def test_rrf_sums_reciprocal_ranks():
    dense = [(7, 0.9), (3, 0.8)]
    lexical = [(3, 12.0), (5, 4.0)]
    fused = rrf([dense, lexical], k=60)
    assert fused[3] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[7] == pytest.approx(1 / 61)
    assert fused[5] == pytest.approx(1 / 62)
    # agreement beats one retriever's first place
    assert max(fused, key=fused.get) == 3


def test_rrf_ignores_scores_and_smaller_k_sharpens_the_head():
    a = rrf([[(1, 100.0), (2, 0.1)]], k=1)
    b = rrf([[(1, 0.2), (2, 0.1)]], k=1)
    assert a == b == {1: 1 / 2, 2: 1 / 3}


def test_rrf_of_no_rankings_is_empty():
    assert rrf([[], []], k=60) == {}


def test_score_fusion_min_max_normalizes_each_ranking():
    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]
    lexical = [(3, 20.0), (4, 10.0)]
    fused = score_fusion([dense, lexical])
    assert fused[1] == pytest.approx(1.0)
    assert fused[2] == pytest.approx(0.5)
    assert fused[3] == pytest.approx(0.0 + 1.0)  # worst dense, best lexical
    assert fused[4] == pytest.approx(0.0)


def test_score_fusion_weights_and_a_flat_or_empty_ranking():
    fused = score_fusion([[(1, 2.0), (2, 1.0)], [(2, 5.0)]], weights=[2.0, 1.0])
    assert fused == {1: pytest.approx(2.0), 2: pytest.approx(0.0)}  # one score: span 0 counts as 1 -> 0
    assert score_fusion([[], [(9, 3.0)]]) == {9: 0.0}


def _unit(*rows):
    v = np.array(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_fold_duplicates_folds_near_copies_into_the_better_ranked_row():
    vecs = _unit([1, 0, 0], [0.999, 0.04, 0], [0, 1, 0], [0, 0, 1])
    kept = fold_duplicates([0, 1, 2, 3], vecs, threshold=0.95, limit=5)
    assert kept == [(0, [1]), (2, []), (3, [])]


def test_fold_duplicates_respects_the_limit_but_still_folds_later_copies():
    vecs = _unit([1, 0, 0], [0, 1, 0], [0, 0, 1], [0.999, 0.04, 0])
    kept = fold_duplicates([0, 1, 2, 3], vecs, threshold=0.95, limit=2)
    assert kept == [(0, [3]), (1, [])]  # row 2 has no room; row 3 is a copy of a kept row


def test_fold_duplicates_threshold_one_keeps_distinct_rows():
    vecs = _unit([1, 0], [0.9, 0.1])
    assert fold_duplicates([1, 0], vecs, threshold=1.0, limit=3) == [(1, []), (0, [])]
