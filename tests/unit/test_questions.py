"""Question handling before search (rag/questions.py): cleaning, follow-ups, date ranges."""

from __future__ import annotations

import pytest

from rag.errors import RagError
from rag.questions import clean, date_range, range_note, resolve_followup
from rag.types import Answer


def test_clean_puts_the_question_on_one_line_and_cuts_it():
    assert clean("  What\x00 is\n\tit?\x85 ", 100) == ("What is it?", False)
    assert clean("abcdef", 4) == ("abcd", True)
    assert clean("a\ud800b", 10) == ("a\ufffdb", False)
    assert clean(42, 10) == ("42", False)


def test_a_standalone_question_is_not_rewritten():
    assert resolve_followup("Who is Microsoft's AI chief?", ["How much did OpenAI lose?"]) == "Who is Microsoft's AI chief?"
    assert resolve_followup("What about Google?", None) == "What about Google?"


def test_a_followup_carries_the_previous_turns_terms():
    prev = Answer(question="How much did OpenAI lose in 2024?", query="How much did OpenAI lose in 2024?",
                  answer=None, abstained=True, confidence=0.0)
    assert resolve_followup("And Anthropic?", [prev]) == "And Anthropic? OpenAI lose 2024"
    assert resolve_followup("What did it earn?", [{"role": "user", "content": "Zorblax plant Leeds"}]) == \
        "What did it earn? Zorblax plant Leeds"


def test_date_range_checks_its_ends():
    assert date_range("2024-03-01", None) == ("2024-03-01", None)
    assert date_range(None, "") == (None, None)
    with pytest.raises(RagError, match="date range is empty"):
        date_range("2024-05-01", "2024-03-01")
    with pytest.raises(RagError, match="Invalid date for since"):
        date_range("not a date", None)


def test_range_note_says_what_was_searched():
    assert range_note("2024-01-01", "2024-12-31", 1, 0) == "Searched only the 1 article published from 2024-01-01 to 2024-12-31."
    assert range_note("2024-01-01", None, 2_000, 3) == (
        "Searched only the 2,000 articles published from 2024-01-01 on (3 without a date left out).")
    assert range_note(None, "2024-12-31", 5, 0) == "Searched only the 5 articles published up to 2024-12-31."
