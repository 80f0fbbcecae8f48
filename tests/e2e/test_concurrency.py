"""Many threads asking one shared Pipeline while a rebuild switches the index version under them.

Every answer must equal the single-threaded answer for the index version it reports: same answer,
same abstention, same citations (article and character offsets), same confidence.
"""

from __future__ import annotations

import json
import threading
import time
import traceback


from rag.pipeline import Pipeline

from ..conftest import ROOT, make_settings

THREADS = 8
ASKS_PER_THREAD = 20
QUESTIONS_USED = 20
SWITCH_AFTER = 40  # answers completed before the writer starts its rebuild
HARD_LIMIT = 300.0  # seconds: the whole run, or the test fails instead of hanging

NEW_ARTICLE = (
    "Zorblax opens plant in Leeds\n"
    "The robotics firm Zorblax said on Monday it will open a plant in Leeds employing 740 people.\n"
    "Its chief executive, Marta Quillon, said the plant would open in March 2026.\n"
)
# Questions whose answer changes with the new article: the switch must be visible in the answers.
CHANGING = ["How many people will the Zorblax plant employ?", "Who is the chief executive of Zorblax?"]


def eval_questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "eval" / "seeds_qa.jsonl").read_text().splitlines() if line.strip()]
    return [r["question"] for r in rows[:n]]


def fingerprint(a) -> tuple:
    return (
        a.index_version,
        a.answer,
        a.abstained,
        round(a.confidence, 5),
        tuple((c.article_id, c.file, c.start, c.end, c.sentence_start, c.sentence_end, c.quote) for c in a.citations),
        tuple((h.chunk.id, h.chunk.start, h.chunk.end) for h in a.passages),
    )


def test_threads_and_a_rebuild_give_single_threaded_answers(articles_copy, tmp_path, seeds_pipeline):
    pipe = Pipeline(make_settings(articles_dir=articles_copy, index_dir=tmp_path / "index"), embedder=seeds_pipeline.embedder)
    pipe.build()
    questions = eval_questions(QUESTIONS_USED) + CHANGING

    # Single-threaded reference for the first version.
    v1 = pipe.index().version
    reference: dict[str, dict[str, tuple]] = {v1: {q: fingerprint(pipe.ask(q)) for q in questions}}
    assert all(f[0] == v1 for f in reference[v1].values())

    src = tmp_path / "incoming"
    src.mkdir()
    (src / "zorblax.txt").write_text(NEW_ARTICLE)

    results: list[tuple[str, tuple]] = []
    errors: list[str] = []
    lock = threading.Lock()
    switch_now = threading.Event()
    switched = threading.Event()
    deadline = time.monotonic() + HARD_LIMIT
    writer_report = {}

    def asker(tid: int) -> None:
        for i in range(ASKS_PER_THREAD):
            if time.monotonic() > deadline:
                errors.append(f"thread {tid}: hard time limit reached")
                return
            if i == ASKS_PER_THREAD - 4:
                # The last few asks of every thread come after the switch: the new version is seen.
                switched.wait(timeout=max(0.0, deadline - time.monotonic()))
            q = questions[(tid * 7 + i) % len(questions)]
            try:
                a = pipe.ask(q)
            except Exception:  # noqa: BLE001 - any exception is a failure we want to see
                with lock:
                    errors.append(f"thread {tid} ask {q!r}:\n{traceback.format_exc()}")
                continue
            with lock:
                results.append((q, fingerprint(a)))
                if len(results) >= SWITCH_AFTER:
                    switch_now.set()

    def writer() -> None:
        try:
            switch_now.wait(timeout=HARD_LIMIT)
            writer_report["report"] = pipe.add([src / "zorblax.txt"], wait=60)
        except Exception:  # noqa: BLE001
            errors.append(f"writer:\n{traceback.format_exc()}")
        finally:
            switched.set()

    threads = [threading.Thread(target=asker, args=(t,), daemon=True) for t in range(THREADS)]
    threads.append(threading.Thread(target=writer, daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic() + 5))
    assert not any(t.is_alive() for t in threads), "threads still running after the hard limit"
    assert not errors, "\n".join(errors)
    assert len(results) == THREADS * ASKS_PER_THREAD

    # Single-threaded reference for the second version, on the same pipeline after the run.
    v2 = writer_report["report"].version
    assert v2 and v2 != v1 and pipe.index().version == v2
    reference[v2] = {q: fingerprint(pipe.ask(q)) for q in questions}

    seen = {f[0] for _, f in results}
    assert seen == {v1, v2}, f"both versions answered during the run, got {seen}"
    mismatches = [(q, f, reference[f[0]][q]) for q, f in results if reference[f[0]][q] != f]
    assert not mismatches, f"{len(mismatches)} answers differ from the single-threaded one, e.g. {mismatches[0]}"

    # The switch is visible: the new article answers a question the old version could not.
    new = reference[v2][CHANGING[0]]
    assert new[1] and "740" in new[1] and any(c[1] == "zorblax.txt" for c in new[4])
    assert reference[v1][CHANGING[0]] != new
    counts = {v: sum(1 for _, f in results if f[0] == v) for v in (v1, v2)}
    print(f"\n{len(results)} answers from {THREADS} threads: {counts[v1]} on {v1}, {counts[v2]} on {v2}")


def test_concurrent_first_load_is_shared(articles_copy, tmp_path, seeds_pipeline):
    """Threads that all ask before the index is loaded get the same version and answers."""
    index = tmp_path / "index"
    Pipeline(make_settings(articles_dir=articles_copy, index_dir=index), embedder=seeds_pipeline.embedder).build()
    pipe = Pipeline(make_settings(articles_dir=articles_copy, index_dir=index), embedder=seeds_pipeline.embedder)
    q = "What share of OpenAI does Microsoft hold?"
    out: list = []
    errors: list = []
    barrier = threading.Barrier(THREADS)

    def run():
        try:
            barrier.wait(timeout=60)
            out.append(fingerprint(pipe.ask(q)))
        except Exception:  # noqa: BLE001
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=run, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]
    assert len(out) == THREADS and len(set(out)) == 1
    assert "49%" in out[0][1]
