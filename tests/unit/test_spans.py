"""The choice among the n-best spans (rag.spans): features that know what was asked, the ranker,
and a figure quoted with its qualifier.

Pure functions of text and scores: no model, no index.
"""

from __future__ import annotations

import numpy as np
import pytest

from rag.spans import SpanCandidate, SpanRanker, features, qualified_start, question_type, shape


@pytest.mark.parametrize("question, kind", [
    ("When did Rosneft buy Yugansk?", "when"),
    ("How many jobs will go?", "how_many"),
    ("How much did the deal cost?", "how_much"),
    ("How did he win?", "how"),
    ("Whose shares fell?", "who"),
    ("In which constituency did she stand?", "which"),
    ("Name the winner.", "other"),
])
def test_question_type(question, kind):
    assert question_type(question) == kind


def test_span_shapes():
    assert shape("$9.3bn")["currency"] == 1.0 and shape("$9.3bn")["digit"] == 1.0
    assert shape("December 2004")["date"] == 1.0 and shape("December 2004")["year"] == 1.0
    assert shape("12%")["percent"] == 1.0
    assert shape("Tony Blair")["capitalised"] == 1.0 and shape("the prime minister")["capitalised"] == 0.0
    assert shape("the bank")["currency"] == 0.0  # a currency word needs a number


def test_features_cross_the_question_with_the_span():
    cands = [SpanCandidate("$9.3bn", 4.0, 1.0, 1), SpanCandidate("December", 3.0, 0.5, 2),
             SpanCandidate("Rosneft", 1.0, 1.0, 1)]
    names, X = features("When did Rosneft buy the Yugansk unit?", cands)
    f = {n: X[:, i] for i, n in enumerate(names)}
    assert list(f["when_x_date"]) == [0.0, 1.0, 0.0]
    assert list(f["how_much_x_currency"]) == [0.0, 0.0, 0.0]  # not a "how much" question
    assert list(f["all_in_question"]) == [0.0, 0.0, 1.0]  # "Rosneft" only repeats the question
    assert list(f["gap"]) == [0.0, 1.0, 3.0] and list(f["first_passage"]) == [1.0, 0.0, 1.0]


def test_agreement_counts_other_candidates_stating_the_same_answer():
    cands = [SpanCandidate("$9.3bn", 4.0, 1.0, 1), SpanCandidate("$9.3bn", 2.0, 0.8, 2),
             SpanCandidate("Yukos", 3.0, 1.0, 1)]
    names, X = features("How much was paid?", cands)
    agree = X[:, names.index("agree")]
    assert agree[0] == agree[1] == pytest.approx(np.log(2)) and agree[2] == 0.0


def test_ranker_without_weights_keeps_the_models_order_and_with_weights_uses_them():
    cands = [SpanCandidate("$9.3bn", 4.0, 1.0, 1), SpanCandidate("December", 3.0, 0.5, 2)]
    assert list(SpanRanker(None).scores("When?", cands)) == [4.0, 3.0]
    assert not SpanRanker(None)
    names, X = features("When did it happen?", cands)
    spec = {"features": ["when_x_date", "margin"], "weights": [5.0, 1.0], "bias": 0.0,
            "mean": [0.0, 0.0], "scale": [1.0, 1.0]}
    scores = SpanRanker(spec).scores("When did it happen?", cands)
    assert scores[1] > scores[0]  # the date wins for a "when" question
    assert scores[1] == pytest.approx(5.0 + 3.0)


def test_a_span_of_punctuation_only_agrees_with_nothing():
    names, X = features("Who?", [SpanCandidate("--", 1.0, 1.0, 1), SpanCandidate("Blair", 0.5, 1.0, 1)])
    assert X[0, names.index("agree")] == 0.0


def _quoted(text: str, span: str, floor: int = 0) -> str:
    a = text.index(span)
    return text[qualified_start(text, a, a + len(span), floor) : a + len(span)]


@pytest.mark.parametrize(("text", "span", "quoted"), [
    ("shares slumped almost 23% to 2.05 euros", "23%", "almost 23%"),
    ("it will pay up to 259.7m euros for the stake", "259.7m euros", "up to 259.7m euros"),
    ("More than 1,000 people marched", "1,000 people", "More than 1,000 people"),
    ("revenue is only about $35 million, and", "$35 million", "about $35 million"),  # "only" judges, not qualifies
    ("out for at least six weeks", "six weeks", "at least six weeks"),
    ("priced at under £80,000.", "£80,000", "under £80,000"),
    # a negation or an intensifier belongs to the qualifier: without it the meaning flips
    ("no more than 5 people", "5 people", "no more than 5 people"),
    ("not less than 300 staff", "300 staff", "not less than 300 staff"),
    ("well over 40% of voters", "40%", "well over 40%"),
    ("shares fell over 20% on Monday", "20%", "over 20%"),
    # not a figure, a qualifier of another sentence or line or inside a word, none at all: as read
    ("they talked about Paris today", "Paris", "Paris"),
    ("a song about One Direction's tour", "One Direction", "One Direction"),
    ("he said about. 23 rivals", "23 rivals", "23 rivals"),
    ("Talks are over\n\n23 people died", "23 people", "23 people"),
    ("moreover 3 people came", "3 people", "3 people"),
    ("output reached 4.2 million tonnes", "4.2 million tonnes", "4.2 million tonnes"),
    # a particle of the verb before it, or a preposition before a date: not a qualifier
    ("she handed over 2,000 pages", "2,000 pages", "2,000 pages"),
    ("the firm took over 3 rivals", "3 rivals", "3 rivals"),
    ("he spoke about 9/11 again", "9/11", "9/11"),
    ("it was passed under 2003 legislation", "2003 legislation", "2003 legislation"),
])
def test_a_figure_keeps_its_qualifier(text, span, quoted):
    assert _quoted(text, span) == quoted


def test_a_qualifier_before_what_was_read_is_left_out():
    text = "nearly 40 fans"
    assert _quoted(text, "40 fans", floor=3) == "40 fans"
    assert _quoted(text, "40 fans", floor=0) == "nearly 40 fans"
