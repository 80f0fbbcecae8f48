"""rag train's report names the held-out marks a new reader fixed and broke."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rag.training.learn import changed_line, changed_marks, model_card


def _result(question, answerable, answer, right):
    """A scored ask: ``answer`` None = abstained; ``right`` = contains a gold answer (answerable)."""
    item = SimpleNamespace(question=question, answerable=answerable)
    return SimpleNamespace(item=item, answer=answer, abstained=answer is None, answer_correct=bool(answerable and right))


def test_fixed_and_broken_marks_with_both_answers():
    before = [_result("How many jobs?", True, None, False),          # refused, then answered right: fixed
              _result("Who won?", True, "Smith", True),               # right both times: not listed
              _result("Which constituency?", False, "Wales", False),  # unanswerable, answered, then abstained: fixed
              _result("When did it open?", True, "2004", True)]       # right, then a wrong answer: broken
    after = [_result("How many jobs?", True, "3,000", True),
             _result("Who won?", True, "John Smith", True),
             _result("Which constituency?", False, None, False),
             _result("When did it open?", True, "£5m", False)]
    assert changed_marks(before, after) == [
        {"question": "How many jobs?", "change": "fixed", "before": None, "after": "3,000"},
        {"question": "Which constituency?", "change": "fixed", "before": "Wales", "after": None},
        {"question": "When did it open?", "change": "broken", "before": "2004", "after": "£5m"},
    ]
    with pytest.raises(ValueError):  # the same marks, asked twice: a length mismatch is a bug
        changed_marks(before, after[:2])


def test_the_version_card_lists_them():
    card = {"name": "v1", "base": "shipped", "heldout": {"n": 3, "right_before": 0, "right_after": 1, "changed": [
        {"question": "How many jobs?", "change": "fixed", "before": None, "after": "3,000"}]}, "eval": {}}
    text = model_card(card)
    assert "held-out marks right: 0 -> 1 of 3" in text
    assert '  - fixed: How many jobs? (no answer -> "3,000")' in text


def test_the_cli_and_the_chat_show_one_line_each():
    fixed = {"question": "How many jobs?", "change": "fixed", "before": None, "after": "3,000"}
    assert changed_line(fixed) == "fixed: “How many jobs?” (no answer -> “3,000”)"
    assert changed_line({**fixed, "change": "broken", "before": "Smith", "after": None}, "→") == \
        "broken: “How many jobs?” (“Smith” → no answer)"
