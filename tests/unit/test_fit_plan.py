"""rag train's step plan follows the pace so far within its time budget."""

from __future__ import annotations

from rag.training.learn import fit_plan


def test_a_slow_pace_cuts_the_plan_and_a_faster_one_restores_it():
    assert fit_plan(86, 3, 37.5, 600) == 48  # 12.5 s a step at the start (a busy machine): 48 fit in 10 minutes
    assert fit_plan(86, 30, 75.0, 600) == 86  # 2.5 s a step since: the whole plan fits again
    assert fit_plan(86, 40, 500.0, 600) == 48  # still slow: cut


def test_never_fewer_than_done_nor_more_than_planned():
    assert fit_plan(86, 70, 700.0, 600) == 70  # over budget already: stop at the steps done
    assert fit_plan(86, 3, 0.0, 600) == 86
    assert fit_plan(10, 3, 0.3, 600) == 10
