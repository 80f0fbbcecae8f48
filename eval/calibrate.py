"""Fit the reader's confidence (a logistic function of its features) on Q&A sets.

    python -m eval.calibrate                                   # the seed dev split
    python -m eval.calibrate --set eval/seeds_qa.jsonl dev seeds index

A question's label is 1 when it is answerable and the reader's best candidate contains a gold
answer, else 0 (wrong, or unanswerable). The fitted coefficients are printed as the
``CONFIDENCE_WEIGHTS`` dict to paste into ``rag/answer.py``; held-out questions then show
whether they generalise (``rag eval --split heldout``).

By default the fit uses the ``dev`` split of ``seeds_qa.jsonl``. The threshold is then chosen
with ``rag eval`` on the seed dev split, ``bbc_qa.jsonl`` and the dev split of
``bbc_heldout_qa.jsonl`` (eval/README.md); the ``heldout`` splits are used for neither.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

# The features the confidence weighs. The reader reports more (coverage, cov_ratio, overlap,
# max_missing, is_span, type_ok); fit together they took signs that contradict their meaning
# (more missing terms -> more confident) and did not transfer to the BBC sets.
FEATURES = ("span_support", "entity_cov", "sent_cos", "passage_cos", "chunk_coverage", "margin")


def collect(qa_path: Path, split: str | None, settings) -> tuple[list[str], list[list[float]], list[int]]:
    from rag.pipeline import Pipeline

    pipe = Pipeline(settings)
    pipe.ensure_index()
    rows, labels, names = [], [], None
    for line in qa_path.read_text().splitlines():
        if not line.strip():
            continue
        q = json.loads(line)
        if split and q.get("split") != split:
            continue
        a = pipe.ask(q["question"], threshold=0.0)
        names = names or sorted(a.features)
        rows.append([a.features.get(n, 0.0) for n in names])
        cand = (a.candidate or "").lower()
        labels.append(int(bool(q["answers"]) and any(g.lower() in cand for g in q["answers"])))
    return names or [], rows, labels


DEFAULT_SETS = [("eval/seeds_qa.jsonl", "dev", "seeds", "index")]


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    from rag.config import Settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", nargs=4, action="append", metavar=("QA", "SPLIT", "ARTICLES", "INDEX"),
                    help="a Q&A file, its split ('all' for every question), its articles and index folders")
    ap.add_argument("--C", type=float, default=3.0, help="Inverse L2 regularisation strength.")
    ap.add_argument("--features", default=",".join(FEATURES),
                    help="comma list of the reader's features to weight (the rest are reported, not used)")
    args = ap.parse_args()
    names: list[str] = []
    x: list[list[float]] = []
    y: list[int] = []
    for qa, split, articles, index in args.set or DEFAULT_SETS:
        n, rows, labels = collect(Path(qa), None if split == "all" else split,
                                  Settings(articles_dir=Path(articles), index_dir=Path(index)))
        if not labels:
            raise SystemExit(f"{qa}: no questions in split '{split}'")
        if names and n != names:
            raise SystemExit(f"{qa}: other features than the first set ({n} vs {names})")
        names = n
        x += rows
        y += labels
        print(f"{qa} [{split}]: {len(labels)} questions, {sum(labels)} right candidates")
    wanted = [f.strip() for f in args.features.split(",") if f.strip()]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise SystemExit(f"unknown features {unknown}; the reader has {names}")
    cols = [names.index(f) for f in wanted]
    names = wanted
    xa, ya = np.array(x)[:, cols], np.array(y)
    model = LogisticRegression(C=args.C, max_iter=1000).fit(xa, ya)
    weights = {"bias": round(float(model.intercept_[0]), 3)}
    weights.update({n: round(float(c), 3) for n, c in zip(names, model.coef_[0])})
    print(f"{len(ya)} questions, {int(ya.sum())} right candidates; training accuracy {model.score(xa, ya):.2f}")
    print("CONFIDENCE_WEIGHTS =", json.dumps(weights, indent=4))


if __name__ == "__main__":
    main()
