"""Which windows the reader runs together: by length, padding wastes at most 5%."""

from __future__ import annotations

import pytest

from rag.span_model import length_groups


def _waste(lengths, group):
    return max(lengths[i] for i in group) * len(group) / sum(lengths[i] for i in group) - 1


@pytest.mark.parametrize("lengths", [[202], [256, 256, 256], [140, 256, 202], [256, 120, 256, 250, 60, 61],
                                     [10] * 7 + [11] * 3, list(range(1, 40))])
def test_every_window_runs_once_and_padding_wastes_little(lengths):
    groups = length_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(_waste(lengths, g) <= 0.05 + 1e-9 for g in groups)


def test_full_windows_of_one_long_passage_run_as_one_batch_and_different_lengths_alone():
    assert length_groups([256, 256, 256]) == [[0, 1, 2]]
    assert sorted(map(sorted, length_groups([256, 140, 256, 202]))) == [[0, 2], [1], [3]]
    assert length_groups([]) == []
