"""Fit the reader's confidence (a logistic function of its features) on a split of a Q&A file.

    python -m eval.calibrate --qa eval/seeds_qa.jsonl --split dev

A question's label is 1 when it is answerable and the reader's best candidate contains a gold
answer, else 0 (wrong, or unanswerable). The fitted coefficients are printed as the
``CONFIDENCE_WEIGHTS`` dict to paste into ``rag/answer.py``; the held-out split then shows
whether they generalise (``rag eval --split heldout``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def collect(qa_path: Path, split: str | None, settings) -> tuple[list[str], np.ndarray, np.ndarray]:
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
    return names or [], np.array(rows), np.array(labels)


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    from rag.config import Settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qa", type=Path, default=Path("eval/seeds_qa.jsonl"))
    ap.add_argument("--split", default="dev")
    ap.add_argument("--articles", type=Path, default=None)
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--C", type=float, default=1.0, help="Inverse L2 regularisation strength.")
    args = ap.parse_args()
    upd = {k: v for k, v in {"articles_dir": args.articles, "index_dir": args.index}.items() if v}
    names, x, y = collect(args.qa, args.split, Settings(**upd))
    model = LogisticRegression(C=args.C, max_iter=1000).fit(x, y)
    weights = {"bias": round(float(model.intercept_[0]), 3)}
    weights.update({n: round(float(c), 3) for n, c in zip(names, model.coef_[0])})
    print(f"{len(y)} questions, {int(y.sum())} right candidates; training accuracy {model.score(x, y):.2f}")
    print("CONFIDENCE_WEIGHTS =", json.dumps(weights, indent=4))


if __name__ == "__main__":
    main()
