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


def test_a_corrected_question_asked_again_gets_the_marked_words(pipe):
    """The chat's marks answer the same question next time (rag.corrections): the words marked,
    cited and highlighted in their article; rag eval and rag train's scoring still read."""
    data = pipe.index()
    q = "How much revenue did OpenAI make in 2022?"
    before = pipe.ask(q)
    art = next(x for x in data.articles.values() if "about $35 million" in x.text)
    start = art.text.index("$35 million")
    pipe.feedback(before, "wrong", span=GoldSpan(art.id, start, start + len("$35 million")))
    again = pipe.ask("how much revenue did OpenAI  make in 2022?")  # the feedback file's key: case and spaces
    assert again.answer == "$35 million" and not again.abstained and again.confidence == 1.0
    c = again.citations[0]
    assert (c.article_id, c.start, c.end) == (art.id, start, start + len("$35 million"))
    assert any("Answered from a correction marked on" in n for n in again.notes)
    other = pipe.ask("How much revenue does OpenAI expect in 2024?")  # another question: the reader reads
    assert not any("correction" in n for n in other.notes)
    # the reader alone (how rag train scores readers) does not see the marks
    alone = pipe.with_reader(pipe.settings.reader_dir).ask(q)
    assert not any("correction" in n for n in alone.notes) and alone.features.get("correction") is None


def test_a_question_marked_unanswered_abstains_while_the_same_articles_are_found(pipe):
    q = "Who won the 1998 football World Cup?"
    first = pipe.ask(q)
    pipe.feedback(first, "no_answer")
    again = pipe.ask(q)
    assert again.abstained and again.answer is None
    assert any("Marked “no answer in the articles”" in n for n in again.notes)
    # marks whose words are no longer in their article answer nothing: the reader reads
    data = pipe.index()
    recs = FeedbackStore(pipe.settings.feedback_file).lines()
    art = next(iter(data.articles.values()))
    gone = {**recs[0], "id": "f-gone", "question": "What is gone?", "answers": ["words that are not there"],
            "type": "feedback", "feedback": {"verdict": "wrong", "gold_span": {
                "article": art.file, "start": 0, "end": 23, "text": "words that are not there"}}}
    FeedbackStore(pipe.settings.feedback_file)._write([*recs, gone])
    from rag.corrections import Corrections, statuses

    assert Corrections(pipe.settings.feedback_file).lookup("What is gone?", data) is None
    assert "no longer in it" in statuses([gone], data)[0][1]
    assert not any("correction" in n for n in pipe.ask("What is gone?").notes)


def test_corrections_can_be_switched_off(pipe):
    q = "How much revenue did OpenAI make in 2022?"
    pipe.feedback(pipe.ask(q), "wrong", typed="$35 million")
    assert pipe.ask(q).corrected
    before = pipe.settings
    pipe.settings = before.model_copy(update={"answer_from_corrections": False})
    try:
        off = pipe.ask(q)
        assert not off.corrected and not any("correction" in n for n in off.notes)
    finally:
        pipe.settings = before


def test_rag_eval_on_the_marks_measures_the_reader_not_the_marks(pipe):
    from rag.evaluation import run_eval

    q = "How much revenue did OpenAI make in 2022?"
    reader = pipe.ask(q)
    marked = next(t for t in ("about $35 million", "$35 million") if t != reader.answer)  # words the reader did not give
    pipe.feedback(reader, "wrong", typed=marked)
    assert pipe.ask(q).answer == marked  # the chat: the marked words
    report = run_eval(pipe.settings.feedback_file, pipe.settings, k=5)
    row = next(r for r in report["answer"]["questions"] if r["question"] == q)
    assert row["answer"] == reader.answer  # the eval: the reader's own answer


def private_seeds(seeds_pipeline, tmp_path, reprint: str | None = None):
    """A pipeline over a copy of the seeds (with a reprint of the article holding ``reprint``), its
    own index and marks file; returns it and the articles folder."""
    import shutil

    from rag.pipeline import Pipeline

    articles = tmp_path / "articles"
    shutil.copytree(seeds_pipeline.settings.articles_dir, articles)
    if reprint:
        src = next(p for p in sorted(articles.iterdir()) if reprint in p.read_text(encoding="utf-8"))
        (articles / "zz_reprint.txt").write_text(src.read_text(encoding="utf-8") + "\nThis story was reprinted.\n",
                                                  encoding="utf-8")
    s = seeds_pipeline.settings.model_copy(update={"articles_dir": articles, "index_dir": tmp_path / "index",
                                                   "feedback_file": tmp_path / "fb.jsonl"})
    pipe = Pipeline(s, embedder=seeds_pipeline.embedder)
    pipe.build()
    return pipe, articles


def test_a_correction_in_a_near_duplicate_article_is_used(seeds_pipeline, tmp_path):
    """Retrieval folds near-duplicates into one passage: a mark in the folded article still answers."""
    pipe, _ = private_seeds(seeds_pipeline, tmp_path, reprint="about $35 million")
    q = "How much revenue did OpenAI make in 2022?"
    first = pipe.ask(q)
    folded = [d.article_id for h in first.passages for d in h.duplicates]
    assert folded, [(h.file, h.duplicates) for h in first.passages]  # one copy is folded into the other's passage
    data = pipe.index()
    aid = folded[0]
    start = data.articles[aid].text.index("$35 million")
    pipe.feedback(first, "wrong", span=GoldSpan(aid, start, start + len("$35 million")))
    again = pipe.ask(q)
    assert again.answer == "$35 million" and again.citations[0].article_id == aid


def test_a_damaged_feedback_file_never_fails_a_question(pipe):
    """A hand-edited line (offsets null, passages not objects) is left out with its reason; asks go on."""
    q = "How much revenue did OpenAI make in 2022?"
    pipe.feedback(pipe.ask(q), "wrong", typed="$35 million")
    rec = FeedbackStore(pipe.settings.feedback_file).lines()[0]
    bad = {**rec, "id": "f-bad", "question": "Broken?",
           "feedback": {**rec["feedback"], "gold_span": {**rec["feedback"]["gold_span"], "start": None}}}
    bad_none = {"id": "f-bad2", "question": "Broken too?", "answers": [], "type": "unanswerable",
                "feedback": {"verdict": "no_answer", "passages": ["not an object"]}}
    FeedbackStore(pipe.settings.feedback_file)._write([rec, bad, bad_none, "not even a mark"])
    from rag.corrections import statuses

    why = statuses(FeedbackStore(pipe.settings.feedback_file).lines(), pipe.index())
    assert why[0][1] is None and why[1][1].startswith("malformed mark") and why[2][1].startswith("malformed mark")
    assert pipe.ask(q).corrected  # the good mark still answers
    assert not pipe.ask("Broken?").corrected and not pipe.ask("Broken too?").corrected


def test_a_mark_made_on_a_follow_up_is_not_reused_for_the_bare_question(pipe):
    first = pipe.ask("What share of OpenAI does Microsoft hold?")
    follow = pipe.ask("And who is its chief executive?", history=[first])
    assert follow.query != follow.question  # rewritten with the earlier turn's words
    pipe.feedback(follow, "no_answer")
    again = pipe.ask("And who is its chief executive?")
    assert not again.corrected
    from rag.corrections import statuses

    assert "follow-up" in statuses(FeedbackStore(pipe.settings.feedback_file).lines(), pipe.index())[0][1]


def test_a_no_answer_mark_lets_the_reader_read_an_article_edited_since(seeds_pipeline, tmp_path):
    pipe, articles = private_seeds(seeds_pipeline, tmp_path)
    q = "How much revenue did OpenAI make in 2022?"
    first = pipe.ask(q)
    pipe.feedback(first, "no_answer")
    assert pipe.ask(q).corrected and pipe.ask(q).abstained
    top = articles / first.passages[0].file
    top.write_text(top.read_text(encoding="utf-8") + "\nOpenAI's 2022 revenue was restated on Friday.\n", encoding="utf-8")
    pipe.build()
    assert not pipe.ask(q).corrected  # the article read then is not the article read now: the reader reads
