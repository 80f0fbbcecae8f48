"""Feedback marks become gold Q&A lines: the format rag eval reads, replaced not duplicated,
offsets that quote the article, and safe with many writers at once."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.evaluation import load_qa
from rag.feedback import FeedbackStore, GoldSpan


@pytest.fixture()
def pipe(seeds_pipeline, tmp_path):
    before = seeds_pipeline.settings
    seeds_pipeline.settings = before.model_copy(update={"feedback_file": tmp_path / "fb.jsonl"})
    yield seeds_pipeline
    seeds_pipeline.settings = before


def test_marks_are_gold_lines_that_rag_eval_reads(pipe):
    data = pipe.index()
    ok = pipe.ask("Which chatbot did OpenAI build for Salesforce?")
    pipe.feedback(ok, "correct")
    wrong = pipe.ask("How much revenue did OpenAI make in 2022?")
    rec = pipe.feedback(wrong, "wrong", typed="$35 million")
    span = rec["feedback"]["gold_span"]
    art = next(a for a in data.articles.values() if a.file == span["article"])
    assert art.text[span["start"] : span["end"]] == "$35 million" == rec["answers"][0]
    none = pipe.ask("Who won the 1998 football World Cup?")
    pipe.feedback(none, "no_answer")
    items, warnings = load_qa(pipe.settings.feedback_file)
    assert warnings == [] and [q.answers for q in items] == [("Einstein GPT",), ("$35 million",), ()]
    assert items[0].sources and items[2].sources == ()
    line = json.loads(Path(pipe.settings.feedback_file).read_text().splitlines()[1])
    assert line["feedback"]["system_answer"] == wrong.answer and line["feedback"]["index_version"] == data.version
    assert line["feedback"]["settings"]["read_passages"] == pipe.settings.read_passages


def test_a_question_marked_again_replaces_its_line(pipe):
    a = pipe.ask("Which chatbot did OpenAI build for Salesforce?")
    pipe.feedback(a, "wrong", typed="Einstein GPT")
    pipe.feedback(pipe.ask("which chatbot did  OpenAI build for Salesforce?"), "correct")
    lines = FeedbackStore(pipe.settings.feedback_file).lines()
    assert len(lines) == 1 and lines[0]["feedback"]["verdict"] == "correct"


def test_a_selected_span_is_the_gold_answer(pipe):
    data = pipe.index()
    a = pipe.ask("How much revenue did OpenAI make in 2022?")
    art = next(x for x in data.articles.values() if "about $35 million" in x.text)
    start = art.text.index("about $35 million")
    rec = pipe.feedback(a, "wrong", span=GoldSpan(art.id, start, start + len("about $35 million")))
    assert rec["answers"] == ["about $35 million"] and rec["sources"] == [art.file]
    with pytest.raises(RagError, match="not in the indexed article"):
        pipe.feedback(a, "wrong", span=GoldSpan(art.id, 5, 10**9))


def test_a_typed_answer_must_be_in_the_articles(pipe):
    a = pipe.ask("How much revenue did OpenAI make in 2022?")
    with pytest.raises(RagError, match="not written like that"):
        pipe.feedback(a, "wrong", typed="$36 million")
    with pytest.raises(RagError, match="Give the right answer"):
        pipe.feedback(a, "wrong", typed="  ")
    assert not Path(pipe.settings.feedback_file).exists()  # nothing written by a refused mark


class _A:
    """Just what FeedbackStore.record reads of an Answer."""

    def __init__(self, q):
        self.question, self.answer, self.candidate, self.abstained = q, "x", "x", False
        self.confidence, self.index_version, self.citations, self.passages = 0.9, "v", [], []


def _writer(path: str, n: int, worker: int) -> None:
    store = FeedbackStore(path)
    for i in range(n):
        store.record(_A(f"question {worker}-{i}"), {}, "no_answer")


def test_ten_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "fb.jsonl"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), 5, w)) for w in range(10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 50
    assert {json.loads(x)["question"] for x in lines} == {f"question {w}-{i}" for w in range(10) for i in range(5)}
