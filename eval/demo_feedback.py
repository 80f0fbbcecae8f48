"""The feedback loop end to end, as a newsroom would run it: marks on questions the reader got
wrong -> ``rag train`` -> held-out marks and eval sets before / after -> ``rag reader rollback``.

    python -m eval.demo_feedback --marks 30 --minutes 10
    python -m eval.compare_readers --old rag/models/reader --new ~/.cache/rag/demo-feedback/readers/versions/<version> \
        --sets seeds bbc_qa bbc_heldout-dev bbc_heldout-heldout squad-test

The questions are the bbc-news-qa dev part: 240 news questions on 40 BBC articles that the
shipped reader was never trained on and that no eval set uses (``eval/*.jsonl`` hold other
articles). They are asked, in a seeded order, over the index of all 2,225 BBC articles (the
``corpora_dir`` setting; without it, over the dev articles alone) with the reader in use; each
answer that is wrong is marked the way the chat marks it (``Pipeline.feedback``):

* an answerable question answered wrongly or refused: "wrong", with the gold words selected in
  the article (the occurrence nearest the dataset's offset);
* a question the article does not answer, answered anyway: "no answer in the articles".

Then ``rag train`` runs as a user runs it (the CLI, in a subprocess), and the script prints its
report, ``rag reader list``, ``rag status``, the marked questions asked again (right by the
reader in use alone, and as the chat answers them: the marks first, ``rag.corrections``),
``rag reader rollback`` and ``rag status`` again.
Everything lives under ``--work`` (readers folder, marks file; the int8 copies of the readers go
to the usual ``cache_dir``): the repository's reader and the user's own readers folder are never
touched. ``compare_readers`` (above) gives the eval sets' before / after with the trained version
(not its news-dev row: the marks are news-dev questions). A "no answer" mark is given when the
question's own article does not answer it (the dataset says so), as a user who knows the
article would; another of the 2,225 articles could in principle answer it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def news_dev_questions():
    """(question, answers [(text, start)], article file) of the bbc-news-qa dev part."""
    from rag.evaluation.squad import load_squad
    from rag.training.data import split_news
    from rag.config import Settings
    from rag.training.data import training_sets

    out = []
    for a in split_news(load_squad(training_sets(Settings())[1]), "dev"):
        for p in a.paragraphs:
            for q in p.questions:
                out.append((q.question, [] if q.impossible else list(q.answers), f"{a.title}.txt"))
    return out


def nearest(text: str, words: str, start: int) -> int:
    from rag.training.marks import _occurrences

    return min(_occurrences(text, words), key=lambda j: abs(j - start), default=-1)


def mark_wrong_answers(pipe, n: int, seed: int) -> dict:
    """Ask the dev questions until ``n`` answers were wrong; mark each as the chat does."""
    from rag.evaluation.metrics import contains_answer
    from rag.feedback import GoldSpan

    data = pipe.index()
    questions = news_dev_questions()
    random.Random(seed).shuffle(questions)
    asked = marked = right = 0
    kinds = {"wrong span": 0, "refused an answerable question": 0, "answered an unanswerable question": 0}
    for question, answers, file in questions:
        if marked >= n:
            break
        aid = data.file_to_id.get(file)
        if aid is None:
            continue
        asked += 1
        ans = pipe.ask(question)
        if answers:
            if not ans.abstained and contains_answer(ans.answer, [t for t, _ in answers]):
                right += 1
                continue
            text = data.articles[aid].text
            words, start = answers[0]
            i = nearest(text, words, start)
            if i < 0:
                continue
            pipe.feedback(ans, "wrong", span=GoldSpan(aid, i, i + len(words)))
            kinds["refused an answerable question" if ans.abstained else "wrong span"] += 1
        else:
            if ans.abstained:
                right += 1
                continue
            pipe.feedback(ans, "no_answer")
            kinds["answered an unanswerable question"] += 1
        marked += 1
    return {"asked": asked, "right": right, "marked": marked, "kinds": kinds}


def asked_again(pipe) -> dict:
    """The marked questions asked again, trained-on and held-out marks apart: how many the reader
    in use gets right alone (how rag train scores it) and as the chat answers them (the marks
    first, ``rag.corrections``)."""
    from rag.feedback import FeedbackStore
    from rag.training.learn import count_right, mark_items
    from rag.training.marks import resolve_marks

    examples, _ = resolve_marks(FeedbackStore(pipe.settings.feedback_file).lines(), pipe.index(),
                                pipe.settings.train_heldout_share)
    alone = pipe.with_reader(pipe.readers.active().path)
    out = {}
    for part, held in (("trained on", False), ("held out", True)):
        items = mark_items([e for e in examples if e.heldout == held])
        out[part] = {"n": len(items), "reader": count_right(alone, items), "chat": count_right(pipe, items)}
    return out


def rag(*args: str, env: dict) -> str:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    out = (done.stdout + done.stderr).strip()
    print(f"$ rag {' '.join(args)}   ({time.perf_counter() - t:.0f} s, exit {done.returncode})\n{out}\n", flush=True)
    if done.returncode != 0:
        raise SystemExit(f"rag {' '.join(args)} failed (exit {done.returncode})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--marks", type=int, default=30)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "rag" / "demo-feedback")
    ap.add_argument("--bbc-index", type=Path, default=Path.home() / ".cache" / "rag" / "dev-indexes" / "bbc")
    args = ap.parse_args(argv)

    from rag.config import Settings
    from rag.pipeline import Pipeline
    from rag.training.calibrate import news_dev_set

    marker = args.work / ".demo-feedback"
    if args.work.exists() and any(args.work.iterdir()) and not marker.is_file():
        raise SystemExit(f"{args.work} is not empty and was not made by this script: choose another --work")
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    marker.touch()
    _, articles = news_dev_set(Settings().cache_dir)
    index = args.bbc_index if articles.name == "articles" and articles.parent.name == "bbc" else args.work / "index"
    env = {**os.environ, "RAG_ARTICLES_DIR": str(articles), "RAG_INDEX_DIR": str(index),
           "RAG_FEEDBACK_FILE": str(args.work / "marks.jsonl"), "RAG_READERS_DIR": str(args.work / "readers")}
    os.environ.update(env)
    pipe = Pipeline(Settings())
    pipe.build(wait=600)
    t0 = time.perf_counter()
    found = mark_wrong_answers(pipe, args.marks, args.seed)
    print(f"Asked {found['asked']} news questions with the reader in use ({pipe.reader_name()}): {found['right']} "
          f"right; {found['marked']} wrong ones marked ({', '.join(f'{v} {k}' for k, v in found['kinds'].items())}) "
          f"in {time.perf_counter() - t0:.0f} s.\n", flush=True)
    rag("train", "--minutes", str(args.minutes), env=env)
    rag("reader", "list", env=env)
    rag("status", env=env)
    runs = sorted((args.work / "readers").glob("runs/*.json"))
    record = json.loads(runs[-1].read_text()) if runs else {}
    again = asked_again(pipe)
    print(f"The marked questions asked again (reader in use: {pipe.reader_name()}): " + "; ".join(
        f"{part} {d['reader']} of {d['n']} right by the reader alone, {d['chat']} of {d['n']} as the chat answers "
        "them (marks first)" for part, d in again.items()) + "\n", flush=True)
    (args.work / "demo.json").write_text(json.dumps({"marking": found, "train": record, "asked_again": again},
                                                    indent=2) + "\n")
    if record.get("kept"):
        rag("reader", "rollback", env=env)
        rag("status", env=env)
        print(f"Trained version kept: {args.work / 'readers' / 'versions' / record['version']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
