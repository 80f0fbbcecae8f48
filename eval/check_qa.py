#!/usr/bin/env python3
"""Validate an extractive-QA evaluation file (JSON Lines).

Usage: python eval/check_qa.py QA_FILE ARTICLES_DIR

Each line must be a JSON object with keys
  id, question, answers, sources, type, split
Checks:
  * every line parses as a JSON object with exactly the required keys
  * ids are unique; question is a non-empty string
  * type is one of the allowed types, split is "dev" or "heldout"
  * every listed source file exists in ARTICLES_DIR (no duplicates)
  * every answer occurs verbatim (case-sensitive) in at least one listed
    source file, read as UTF-8
  * unanswerable questions have empty answers and sources; answerable
    ones have at least one answer and one source
Prints counts by type and split, then the error list; exits 1 on any error.
Standard library only.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

REQUIRED_KEYS = ("id", "question", "answers", "sources", "type", "split")
TYPES = {"factoid", "paraphrase", "number", "date", "multi", "who", "where", "unanswerable"}
SPLITS = {"dev", "heldout"}


def check(qa_path: Path, articles_dir: Path) -> tuple[list[str], Counter, Counter, Counter, int]:
    errors: list[str] = []
    by_type: Counter = Counter()
    by_split: Counter = Counter()
    by_type_split: Counter = Counter()
    cache: dict[str, str | None] = {}
    seen_ids: dict[str, int] = {}
    n = 0

    def read_source(name: str) -> str | None:
        if name not in cache:
            p = articles_dir / name
            try:
                cache[name] = p.read_text(encoding="utf-8") if p.is_file() else None
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(f"cannot read source {name}: {exc}")
                cache[name] = None
        return cache[name]

    with qa_path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                errors.append(f"line {lineno}: blank line")
                continue
            n += 1
            where = f"line {lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{where}: invalid JSON: {exc}")
                continue
            if not isinstance(rec, dict):
                errors.append(f"{where}: not a JSON object")
                continue
            missing = [k for k in REQUIRED_KEYS if k not in rec]
            extra = [k for k in rec if k not in REQUIRED_KEYS]
            if missing:
                errors.append(f"{where}: missing keys {missing}")
                continue
            if extra:
                errors.append(f"{where}: unexpected keys {extra}")
            qid = rec["id"]
            where = f"line {lineno} ({qid})"
            if not isinstance(qid, str) or not qid:
                errors.append(f"{where}: id must be a non-empty string")
            elif qid in seen_ids:
                errors.append(f"{where}: duplicate id (first on line {seen_ids[qid]})")
            else:
                seen_ids[qid] = lineno
            if not isinstance(rec["question"], str) or not rec["question"].strip():
                errors.append(f"{where}: question must be a non-empty string")
            qtype, split = rec["type"], rec["split"]
            if qtype not in TYPES:
                errors.append(f"{where}: bad type {qtype!r}")
            if split not in SPLITS:
                errors.append(f"{where}: bad split {split!r}")
            by_type[qtype] += 1
            by_split[split] += 1
            by_type_split[(qtype, split)] += 1

            answers, sources = rec["answers"], rec["sources"]
            if not isinstance(answers, list) or not all(isinstance(a, str) and a for a in answers):
                errors.append(f"{where}: answers must be a list of non-empty strings")
                continue
            if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
                errors.append(f"{where}: sources must be a list of non-empty strings")
                continue
            if len(set(answers)) != len(answers):
                errors.append(f"{where}: duplicate answers")
            if len(set(sources)) != len(sources):
                errors.append(f"{where}: duplicate sources")

            if qtype == "unanswerable":
                if answers or sources:
                    errors.append(f"{where}: unanswerable question must have empty answers and sources")
                continue
            if not answers:
                errors.append(f"{where}: answerable question has no answers")
            if not sources:
                errors.append(f"{where}: answerable question has no sources")
            texts = []
            for s in sources:
                if Path(s).name != s:
                    errors.append(f"{where}: source {s!r} must be a bare file name")
                    continue
                t = read_source(s)
                if t is None:
                    errors.append(f"{where}: source not found: {s}")
                else:
                    texts.append(t)
            for a in answers:
                if a != a.strip():
                    errors.append(f"{where}: answer {a!r} has leading/trailing whitespace")
                if texts and not any(a in t for t in texts):
                    errors.append(f"{where}: answer {a!r} not found verbatim in any listed source")
    return errors, by_type, by_split, by_type_split, n


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python eval/check_qa.py QA_FILE ARTICLES_DIR", file=sys.stderr)
        return 2
    qa_path, articles_dir = Path(argv[1]), Path(argv[2])
    if not qa_path.is_file():
        print(f"error: QA file not found: {qa_path}", file=sys.stderr)
        return 1
    if not articles_dir.is_dir():
        print(f"error: articles dir not found: {articles_dir}", file=sys.stderr)
        return 1
    errors, by_type, by_split, by_type_split, n = check(qa_path, articles_dir)

    print(f"{qa_path}: {n} questions")
    splits = sorted(by_split)
    print("by type:  " + "  ".join(f"{t}={c}" for t, c in sorted(by_type.items())))
    print("by split: " + "  ".join(f"{s}={c}" for s, c in sorted(by_split.items())))
    print(f"{'type':<14}" + "".join(f"{s:>9}" for s in splits))
    for t in sorted(by_type):
        print(f"{t!s:<14}" + "".join(f"{by_type_split[(t, s)]:>9}" for s in splits))
    if errors:
        print(f"\n{len(errors)} error(s):")
        for e in errors:
            print(f"  - {e}")
        return 1
    print("\nOK: no errors")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
