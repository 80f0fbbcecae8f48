"""Time ``rag train`` on N marks: how long the chat's Train button takes on this machine.

    python -m eval.bench_train --marks 200 --minutes 10 --threads 2
    python -m eval.bench_train --marks 30 --minutes 2 --json eval/reports/bench_train.json

The marks are news questions of the bbc-news-qa dev part (never trained on by the shipped
reader; the dev part holds about 160 usable ones, the train part tops them up: this script
measures time, not quality) written as the chat writes them: "wrong" with the gold words selected in the article
(their first occurrence), and one in ten unanswerable questions as "no answer in the articles"
with the passages retrieval gives. The articles of those questions are indexed in a temporary
folder; the readers folder is temporary too, so the reader in use is never changed. Printed:
the time of each stage (reading the marks, replay sample, scoring before, training steps,
export, scoring after), the steps done in the budget and the held-out / eval figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def write_marks(n: int, folder: Path, marks_file: Path) -> int:
    from rag.feedback import feedback_id
    from rag.training.data import split_news
    from rag.evaluation.squad import load_squad
    from rag.config import Settings
    from rag.training.data import training_sets

    news = load_squad(training_sets(Settings())[1])
    articles = split_news(news, "dev") + split_news(news, "train")  # dev first; train tops it up (timing only)
    folder.mkdir(parents=True, exist_ok=True)
    recs, seen = [], set()
    for a in articles:
        text = a.paragraphs[0].context
        (folder / f"{a.title}.txt").write_text(text, encoding="utf-8")
    for a in articles:
        text = a.paragraphs[0].context
        for p in a.paragraphs:
            for q in p.questions:
                if len(recs) >= n or feedback_id(q.question) in seen:
                    continue
                if q.impossible:
                    if len(recs) % 10 == 9:
                        seen.add(feedback_id(q.question))
                        recs.append({"id": feedback_id(q.question), "question": q.question, "answers": [],
                                     "sources": [], "type": "unanswerable", "feedback": {"verdict": "no_answer"}})
                    continue
                words = q.answers[0][0]
                i = text.find(words)
                if i < 0:
                    continue
                seen.add(feedback_id(q.question))
                recs.append({"id": feedback_id(q.question), "question": q.question, "answers": [words],
                             "sources": [f"{a.title}.txt"], "type": "feedback",
                             "feedback": {"verdict": "wrong", "gold_span": {"article": f"{a.title}.txt", "start": i,
                                                                            "end": i + len(words), "text": words}}})
    marks_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return len(recs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--marks", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=10.0, help="the training steps' budget (rag train --minutes)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from rag.config import Settings
    from rag.pipeline import Pipeline
    from rag.training.learn import TrainOptions, train_reader

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    n = write_marks(args.marks, tmp / "articles", tmp / "marks.jsonl")
    s = Settings(articles_dir=tmp / "articles", index_dir=tmp / "index", readers_dir=tmp / "readers",
                 feedback_file=tmp / "marks.jsonl")
    t0 = time.perf_counter()
    pipe = Pipeline(s)
    pipe.build()
    t_index = time.perf_counter() - t0
    stages: dict[str, float] = {}
    last = [None, time.perf_counter()]

    def progress(stage, done, total, message):
        now = time.perf_counter()
        if last[0] is not None:
            stages[last[0]] = stages.get(last[0], 0.0) + now - last[1]
        last[0], last[1] = stage, now

    t1 = time.perf_counter()
    report = train_reader(pipe, TrainOptions(minutes=args.minutes, threads=args.threads, max_steps=args.max_steps,
                                             command=f"python -m eval.bench_train --marks {args.marks}"), progress)
    total = time.perf_counter() - t1
    progress("end", 0, 0, "")
    out = {"marks": n, "threads": args.threads, "minutes_budget": args.minutes, "index_seconds": round(t_index, 1),
           "run_seconds": round(total, 1), "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
           "report": report.to_dict()}
    print(json.dumps(out, indent=2, ensure_ascii=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
