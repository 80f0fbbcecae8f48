"""The training schedule: whole groups packed into batches, one epoch's batches after another.

An epoch's batch count depends on its shuffle, so it may differ from the first epoch's; a loop
that found step i by dividing by the first epoch's count asked for the 24th batch of a 23-batch
epoch and spun for ever (a ``rag train`` run hung at step 71 of 72 on 30 marks).
"""

from __future__ import annotations

import random
from collections import Counter

from rag.training.data import Group, batches_for_epoch, schedule


def _groups(n: int, seed: int = 0) -> list[Group]:
    rng = random.Random(seed)
    return [Group(f"q{i}", [[0] * rng.randint(50, 256) for _ in range(rng.randint(1, 9))]) for i in range(n)]


def test_epochs_can_pack_into_different_batch_counts():
    groups = _groups(90)
    counts = {len(batches_for_epoch(groups, 16, 13, e)) for e in range(6)}
    assert len(counts) > 1  # the case the schedule must handle


def test_the_schedule_runs_every_group_once_per_epoch_and_ends_where_the_epochs_end():
    groups = _groups(90)
    steps, ends = schedule(groups, 16, 13, 3)
    assert ends[-1] == len(steps) and ends == sorted(ends)
    assert ends == [sum(len(batches_for_epoch(groups, 16, 13, e)) for e in range(k + 1)) for k in range(3)]
    start = 0
    for end in ends:
        seen = Counter(i for batch in steps[start:end] for i in batch)
        assert seen == Counter(range(len(groups)))  # each group exactly once in each epoch
        start = end
    for batch in steps:  # a batch holds at most 16 windows, unless one group alone is larger
        assert len(batch) == 1 or sum(len(groups[i]) for i in batch) <= 16
    assert schedule(groups, 16, 13, 3) == (steps, ends)  # same seed, same steps


def test_match_abstention_keeps_the_base_share_of_abstentions():
    import math

    from rag.training.learn import MAX_SHIFT, match_abstention, shift_calibration

    def abstains(confs, delta, t):  # after the shift: sigmoid(logit(c) + delta) < t
        out = 0
        for c in confs:
            z = math.log(max(c, 1e-6) / max(1 - c, 1e-6)) + delta
            out += 1 / (1 + math.exp(-z)) < t
        return out

    confs = [0.05, 0.1, 0.2, 0.25, 0.3, 0.32, 0.5, 0.7, 0.9, 0.95]  # a more cautious new reader: 6 below 0.35
    for base in (0, 2, 4, 6, 9):
        d = match_abstention(base, confs, 0.35)
        assert abstains(confs, d, 0.35) == base, (base, d)
    assert match_abstention(10, confs, 0.35) == -MAX_SHIFT  # 0.95 would need more than the bound
    assert match_abstention(6, confs, 0.35) == 0.0  # already abstains as often: left as it is
    assert match_abstention(3, [], 0.35) == 0.0
    assert abs(match_abstention(0, [0.0001, 0.0002], 0.9)) <= MAX_SHIFT  # bounded
    cal = {"bias": -5.0, "threshold": 0.35, "other_precisions": {"float": {"bias": -6.0, "threshold": 0.4}}}
    moved = shift_calibration(cal, 0.5)
    assert moved["bias"] == -4.5 and moved["other_precisions"]["float"]["bias"] == -5.5
    assert moved["threshold"] == 0.35 and moved["bias_shift"] == 0.5
