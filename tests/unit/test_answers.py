"""Answer comparison and the grouping of disagreeing answers (rag/reader.py's pure functions)."""

from __future__ import annotations

from rag.reader import disagreements, same_answer, source_counts
from rag.types import Chunk, Citation, Hit, Source


def cite(article: str, quote: str, published: str | None = None) -> Citation:
    return Citation(file=f"{article}.txt", article_id=article, title=article.upper(), start=0, end=len(quote),
                    quote=quote, sentence_start=0, sentence_end=len(quote), sentence=quote, published=published)


def test_same_answer_inside_or_same_numbers():
    assert same_answer("49%", "49% of OpenAI's shares")
    assert same_answer("$10 billion", "10 billion dollars")
    assert same_answer("The  BBC", "the bbc")
    assert not same_answer("$10 billion", "$13 billion")
    assert not same_answer("Paris", "London")
    assert same_answer("", "") and not same_answer("", "x")


def test_agreeing_articles_are_no_disagreement():
    alts = [(0.9, cite("a", "49%")), (0.8, cite("b", "49% of the shares"))]
    assert disagreements(alts, threshold=0.4) == []


def test_disagreements_group_by_answer_newest_first():
    alts = [
        (0.9, cite("a", "$10 billion", "2024-01-05")),
        (0.7, cite("b", "$13 billion", "2024-06-01")),
        (0.6, cite("c", "10 billion dollars", "2024-03-01")),
        (0.2, cite("d", "$99 billion", "2025-01-01")),  # below the threshold: not an answer on its own
    ]
    groups = disagreements(alts, threshold=0.4)
    assert [g.answer for g in groups] == ["$13 billion", "$10 billion"]
    assert [g.published for g in groups] == ["2024-06-01", "2024-03-01"]
    assert [c.article_id for c in groups[1].citations] == ["c", "a"]  # newest first within a group
    assert groups[1].confidence == 0.9


def test_undated_answers_come_last_and_one_citation_per_article():
    alts = [(0.9, cite("a", "Paris")), (0.8, cite("a", "Paris")), (0.7, cite("b", "London", "2020-01-01"))]
    groups = disagreements(alts, threshold=0.5)
    assert [g.answer for g in groups] == ["London", "Paris"]
    assert len(groups[1].citations) == 1 and groups[1].published is None


def _hit(article_id: str, rank: int, duplicates: list[str] = ()) -> Hit:
    chunk = Chunk(id=f"{article_id}-{rank}", article_id=article_id, index=0, start=0, end=4, text="text", n_tokens=1)
    return Hit(chunk=chunk, file=f"{article_id}.txt", title="T", score=1.0, rank=rank,
               duplicates=[Source(article_id=d, file=f"{d}.txt", title="T", start=0, end=4) for d in duplicates])


def test_source_counts_count_passages_and_folded_duplicates_once_per_article():
    hits = [_hit("a", 1, ["b"]), _hit("a", 2), _hit("c", 3)]
    counts = source_counts([cite("a", "x"), cite("b", "x"), cite("a", "y")], hits)
    assert [(s.file, s.passages) for s in counts] == [("a.txt", 2), ("b.txt", 1)]
