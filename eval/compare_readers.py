"""Two readers on every eval set in one run: the before/after table of a reader change.

    python -m eval.compare_readers --old ~/.cache/rag/reader-v2 --new rag/models/reader --old-env RAG_READ_SENTENCES=1
    python -m eval.compare_readers --old A --new B --sets seeds bbc_qa     # some sets only
    python -m eval.compare_readers --old-root /tmp/prev --old /tmp/prev/rag/models/reader --new rag/models/reader
                                        # two commits: the old reader runs with /tmp/prev's code

Each (reader, set) is one ``rag eval`` run (``RAG_READER_DIR`` names the reader; each reader
uses its own calibrated threshold), its JSON and Markdown report (with the coverage and
reliability chart) under ``--out-dir/<reader>/``. Sets: the seeds set; ``bbc_qa``, both halves of
``bbc_heldout_qa`` and the news dev part of ``bbc-news-qa`` over all BBC articles (skipped
when the ``corpora_dir`` setting has no ``bbc/``); the SQuAD ``test`` split. Printed: a Markdown table of
contains, answer F1, abstention F1, SQuAD 2.0 F1, ECE and p50 latency per set and reader.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from rag.config import Settings

ROOT = Path(__file__).resolve().parent.parent
BBC = Settings().corpora_dir / "bbc" / "articles"
SQUAD = Settings().datasets_dir / "squad-explorer" / "train.json"


def news_dev_file(path: Path) -> Path:
    """The news dev part of bbc-news-qa as a Q&A JSON Lines file over the BBC articles."""
    from rag.training.calibrate import news_dev_set

    items, _ = news_dev_set(Path.home() / ".cache" / "rag")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for it in items:
            fh.write(json.dumps({"id": it.id, "question": it.question, "answers": list(it.answers),
                                 "sources": list(it.sources), "type": it.type, "split": "dev"}) + "\n")
    return path


def sets(out_dir: Path, bbc_index: Path) -> dict[str, list[str]]:
    # absolute paths: with --old-root the old reader runs in another checkout, on this one's sets
    bbc = ["--articles", str(BBC), "--index", str(bbc_index)]
    ev = ROOT / "eval"
    out = {"seeds": ["--qa", str(ev / "seeds_qa.jsonl"), "--articles", str(ROOT / "seeds")]}
    if BBC.is_dir():
        out["bbc_qa"] = ["--qa", str(ev / "bbc_qa.jsonl"), *bbc]
        out["bbc_heldout-dev"] = ["--qa", str(ev / "bbc_heldout_qa.jsonl"), "--split", "dev", *bbc]
        out["bbc_heldout-heldout"] = ["--qa", str(ev / "bbc_heldout_qa.jsonl"), "--split", "heldout", *bbc]
        out["news-dev"] = ["--qa", str(news_dev_file(out_dir / "news-dev.jsonl")), *bbc]
    if SQUAD.is_file():
        out["squad-test"] = ["--qa", str(SQUAD), "--split", "test"]
    return out


def row(report: dict) -> dict:
    ans, ab = report["answer"], report["abstention"]
    return {"n": report["n"], "contains": ans["contains"], "f1": ans["f1"], "abst_f1": ab.get("f1"),
            "squad2_f1": ans["squad2"]["f1"], "ece": (ans.get("reliability") or {}).get("ece"),
            "p50_ms": report["latency_ms"].get("p50"), "threshold": ans.get("threshold")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=Path, required=True, help="reader folder (reader.onnx, calibration.json)")
    ap.add_argument("--new", type=Path, required=True)
    ap.add_argument("--old-env", nargs="*", default=[], metavar="RAG_X=V",
                    help="settings for the old reader's runs, e.g. the reading it was calibrated with: RAG_READ_SENTENCES=1")
    ap.add_argument("--new-env", nargs="*", default=[], metavar="RAG_X=V")
    ap.add_argument("--old-root", type=Path, default=ROOT,
                    help="checkout whose code runs the old reader (a git worktree of an earlier commit); default this one")
    ap.add_argument("--bbc-index", type=Path, default=Path.home() / ".cache" / "rag" / "dev-indexes" / "bbc")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "eval" / "reports" / "readers")
    ap.add_argument("--sets", nargs="+", default=None)
    ap.add_argument("--reuse", nargs="*", default=[], choices=["old", "new"],
                    help="take these readers' figures from the reports an earlier run left in --out-dir")
    args = ap.parse_args(argv)
    args.out_dir, args.bbc_index = args.out_dir.resolve(), args.bbc_index.resolve()

    table: dict[str, dict[str, dict]] = {}
    for name, cli in sets(args.out_dir, args.bbc_index).items():
        if args.sets and name not in args.sets:
            continue
        for label, reader, extra in (("old", args.old, args.old_env), ("new", args.new, args.new_env)):
            out = args.out_dir / label
            out.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "rag.cli", "eval", *cli, "--json", str(out / f"{name}.json"),
                   "--report", str(out / f"{name}.md")]
            if label not in args.reuse or not (out / f"{name}.json").is_file():
                print(f"{label} reader, {name}: {' '.join(cmd[2:])}", flush=True)
                env = {**os.environ, "RAG_READER_DIR": str(reader.resolve()), **dict(kv.split("=", 1) for kv in extra)}
                root = args.old_root.resolve() if label == "old" else ROOT
                done = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL)
                if done.returncode != 0:
                    raise SystemExit(f"rag eval failed for {name} with the {label} reader")
            table.setdefault(name, {})[label] = row(json.loads((out / f"{name}.json").read_text()))
    lines = ["| set | n | reader | contains | answer F1 | abstention F1 | SQuAD2 F1 | ECE | p50 ms | threshold |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    for name, by in table.items():
        for label, r in by.items():
            lines.append(f"| {name} | {r['n']} | {label} | " + " | ".join(
                fmt(r[k]) for k in ("contains", "f1", "abst_f1", "squad2_f1", "ece")) +
                f" | {r['p50_ms']:.1f} | {fmt(r['threshold'])} |")
    text = "\n".join(lines) + "\n"
    (args.out_dir / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
