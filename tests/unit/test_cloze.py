"""Cloze questions from news articles (rag.training.cloze): what the reader may be trained on."""

import random
import re

from rag.training.cloze import cloze_articles, cloze_questions

ARTICLE = """Rover sales rise in Europe

Car maker Rover said sales rose 12% in Europe last year, helped by strong demand in Germany.
The Longbridge firm said its new models had sold well in Germany and France despite the strong pound.
Chief executive Kevin Howe said the rise showed the brand was recovering after years of decline.
Rover expects demand in Germany to rise again when its new small car arrives in the spring, Kevin Howe added.
Analysts were cautious about the forecast."""


def _all(text, seed=1, n=10):
    return cloze_questions("business_999", text, random.Random(seed), per_article=n)


def test_question_is_a_sentence_with_a_recurring_name_replaced_and_the_passage_lacks_that_sentence():
    arts = _all(ARTICLE)
    assert arts, "the article has recurring names in sentences that share words"
    for art in arts:
        (para,) = art.paragraphs
        (q,) = para.questions
        answer, start = q.answers[0]
        assert not q.impossible
        assert para.context[start : start + len(answer)] == answer  # the offset points at the answer
        assert "what" in q.question and q.question.endswith("?")
        # the question's own sentence is gone from the passage: the answer must be read elsewhere
        sentence = q.question[:-1].replace("what", answer, 1)
        assert sentence not in para.context
        assert re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", para.context)
        assert art.title.startswith("business_999#")


def test_no_question_from_a_name_that_appears_once_or_from_a_first_word():
    arts = _all(ARTICLE)
    answers = {a.paragraphs[0].questions[0].answers[0][0] for a in arts}
    assert "Longbridge" not in answers and "France" not in answers  # appear only once
    assert "Analysts" not in answers and "Car" not in answers


def test_possessive_is_not_part_of_the_answer():
    text = ("Intro line\n\nShares in Acme Corp rose after Acme Corp's results beat forecasts for the quarter.\n"
            "Acme Corp's results showed profits beat forecasts in the quarter, the firm said on Monday.")
    answers = {a.paragraphs[0].questions[0].answers[0][0] for a in _all(text)}
    assert answers and all(not a.endswith("'s") for a in answers)


OTHER = """Chelsea win the cup

Chelsea beat Arsenal 2-1 in the final at Cardiff on Sunday to lift the League Cup.
Jose Mourinho said his Chelsea side had deserved the cup after a hard final against a young team.
The Portuguese manager praised Arsenal, whose young team pushed Chelsea all the way in the final.
Fans in Cardiff celebrated until late."""


def test_articles_kept_out_and_their_copies_are_never_used(tmp_path):
    (tmp_path / "business_001.txt").write_text(ARTICLE)
    (tmp_path / "sport_002.txt").write_text(OTHER)
    (tmp_path / "tech_003.txt").write_text(ARTICLE)  # a reprint of the kept-out article under another name
    (tmp_path / "tech_004.txt").write_text(ARTICLE.replace("Analysts were cautious", "Analysts were wary"))
    arts = cloze_articles(tmp_path, {"business_001.txt"}, n_questions=50, seed=3)
    assert arts and {a.title.split("#")[0] for a in arts} == {"sport_002"}
    assert len(cloze_articles(tmp_path, set(), n_questions=1, seed=3)) == 1


def test_no_answer_at_the_start_of_a_sentence_or_a_quote_nor_inside_a_longer_word():
    text = ("Japanese carmakers\n\nRover said: \"Rover will open a plant in Japan this year\", the firm said on Monday.\n"
            "\"Rover is back,\" said Japanese analyst Ken Ito, who expects a plant in Japan soon after Monday.\n"
            "The firm said the Japan plant would open on Monday, as Ken Ito expected.")
    answers = {a.paragraphs[0].questions[0].answers[0][0] for a in _all(text)}
    assert "Rover" not in answers  # only ever first in a sentence or a quote
    assert "Japan" not in answers  # also inside "Japanese" in every passage: its labels would be wrong
    assert answers and answers <= {"Ken Ito", "Monday"}
