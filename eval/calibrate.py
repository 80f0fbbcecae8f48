"""Choose how the span reader reads, fit its confidence, and measure quality against windows read.

    python -m eval.calibrate                    # sweep, fit on the dev sets, write calibration.json
    python -m eval.calibrate --no-write         # only print the tables

Dev sets (tuning data only; the ``test``/``heldout`` halves are never read here):

* ``squad-dev``: the ``dev`` articles of ``rag/squad_split.json`` (Wikipedia), passages
  retrieved among those articles;
* ``seeds-dev``: the ``dev`` split of ``eval/seeds_qa.jsonl`` over ``seeds/``;
* ``bbc-dev``: the ``dev`` split of ``eval/bbc_heldout_qa.jsonl`` and all of ``eval/bbc_qa.jsonl``
  over the BBC corpus (when ``../shared/corpora/bbc`` is present).

For every question the top passages are retrieved once; then each reading setting (how many
passages, whole passages or sentence windows, the retrieval weight) reads them and records the
best span, its margin (span score minus the no-answer score) and the read time. Printed:

1. quality against windows read: F1 / contains without abstaining, and the SQuAD 2.0 F1 at
   the best margin of each set, with the read time's median;
2. for the chosen setting, the confidence fit: Platt scaling (logistic regression of
   "the candidate contains a gold answer" on the margin and ``null_min``, the lowest no-answer
   score among the windows read), pooled over the dev sets with each set weighted equally, and
   the threshold table (per set, and the mean SQuAD 2.0 F1 that chose ``abstain_threshold``). ``calibration.json`` (beside the model) gets
   the coefficients; the abstention threshold is the ``abstain_threshold`` setting.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rag import metrics as M
from rag.reader import Reader
from rag.config import Settings
from rag.evaluate import load_qa, load_squad_set
from rag.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "datasets" / "squad-explorer" / "train.json"
BBC = ROOT.parent / "shared" / "corpora" / "bbc" / "articles"


@dataclass
class Row:
    """One question read with one setting."""

    answers: tuple[str, ...]
    candidate: str | None
    margin: float
    retrieval: float
    ms: float
    windows: int
    features: dict


def dev_sets(index_root: Path, squad_limit: int | None = None) -> list[tuple[str, Settings, list]]:
    base = Settings()
    sets = []
    items, folder = load_squad_set(SQUAD, "dev", base.cache_dir)
    if squad_limit and squad_limit < len(items):
        import random

        items = random.Random(13).sample(items, squad_limit)
    sets.append(("squad-dev", base.model_copy(update={"articles_dir": folder / "articles", "index_dir": folder / "index"}), items))
    seeds, _ = load_qa(ROOT / "eval" / "seeds_qa.jsonl", "dev")
    sets.append(("seeds-dev", base.model_copy(update={"articles_dir": ROOT / "seeds", "index_dir": index_root / "seeds"}), seeds))
    if BBC.is_dir():
        bbc = load_qa(ROOT / "eval" / "bbc_heldout_qa.jsonl", "dev")[0] + load_qa(ROOT / "eval" / "bbc_qa.jsonl")[0]
        sets.append(("bbc-dev", base.model_copy(update={"articles_dir": BBC, "index_dir": index_root / "bbc"}), bbc))
    return sets


def retrieve_all(settings: Settings, items, k: int):
    pipe = Pipeline(settings)
    pipe.ensure_index()
    data = pipe.index()
    out = []
    for it in items:
        qvec, hits = pipe.search(data, it.question, top_k=k)
        out.append((it, qvec, hits))
    return pipe, data, out


def read_all(pipe, data, retrieved, **reading) -> list[Row]:
    reader = Reader(data, pipe.span_model, **reading)
    rows = []
    for it, qvec, hits in retrieved:
        t = time.perf_counter()
        r = reader.read(it.question, hits, qvec)
        ms = (time.perf_counter() - t) * 1000
        rows.append(Row(it.answers, r.answer, r.features.get("margin", -1e9), r.features.get("retrieval", 0.0), ms,
                        r.windows, dict(r.features)))
    return rows


def figures(rows: list[Row], margin: float | None = None) -> dict:
    """Never-abstaining F1/contains, and SQuAD 2.0 F1 / abstention F1 at ``margin`` (best if None)."""
    golds = [r.answers for r in rows]
    never = M.answer_metrics([r.candidate for r in rows], golds)

    def at(m: float) -> dict:
        preds = [r.candidate if r.margin >= m else None for r in rows]
        sq = M.squad2_metrics(preds, golds)
        ab = M.abstention_metrics([p is None for p in preds], [not g for g in golds])
        ans = M.answer_metrics(preds, golds)
        return {"margin": m, "squad2_f1": sq["f1"], "abst_f1": ab["f1"], "f1": ans["f1"], "contains": ans["contains"]}

    if margin is None:
        grid = sorted({round(r.margin, 1) for r in rows} | {-1e9})
        best = max((at(m) for m in grid), key=lambda d: d["squad2_f1"])
    else:
        best = at(margin)
    return {"f1_never": never["f1"], "contains_never": never["contains"], "best": best,
            "ms_p50": M.percentile([r.ms for r in rows], 50), "windows": float(np.mean([r.windows for r in rows]))}


FEATURES = ("margin", "null_min")
# Compared by cross-validation on every run; --features picks the one fitted and written.
# Measured 2026-12-02 (rag/models/reader/README.md): no set beat margin + null_min by more than 0.007 mean SQuAD 2.0
# F1; a question-term coverage and a question/answer type check did not help either, and went. The answer passage's
# dense cosine (absolute, not relative to the top hit) gave +0.003 mean cross-validated SQuAD 2.0 F1 (0.682 against
# 0.679, SQuAD dev 0.478 against 0.482), within noise, so it went too.
FEATURE_SETS = [
    ("margin",),
    ("margin", "null_min"),
    ("margin", "null_min", "retrieval"),
    ("margin", "null_min", "retrieval", "passages_with_a_span"),
    ("margin", "span_score", "null_score", "null_min", "retrieval", "passages_with_a_span"),
]


def fit_platt(sets: dict[str, list[Row]], features=FEATURES) -> dict:
    """Logistic regression of 'candidate contains a gold answer' on the reader's scores, sets
    weighted equally. ``margin`` alone separated the BBC dev questions less well (2-fold
    cross-validation on the dev sets, 3 passages x 1 sentence: best abstention F1 0.75 against
    0.87 with ``null_min``, the lowest no-answer score among the windows read)."""
    from sklearn.linear_model import LogisticRegression

    X, y, w = [], [], []
    for rows in sets.values():
        for r in rows:
            X.append([r.features.get(f, 0.0) for f in features])
            y.append(int(M.contains_answer(r.candidate, r.answers)))
            w.append(1.0 / len(rows))
    lr = LogisticRegression(C=10.0, max_iter=1000).fit(np.array(X), np.array(y), sample_weight=np.array(w) * len(X) / len(sets))
    return {"weights": dict(zip(features, map(float, lr.coef_[0]))), "bias": float(lr.intercept_[0])}


def cross_validated(sets: dict[str, list[Row]], features, folds: int = 2, repeats: int = 5) -> dict:
    """Per set, SQuAD 2.0 F1, abstention F1 and contains of a Platt fit on ``features`` when every
    question is scored by a fit (and threshold, the best mean SQuAD 2.0 F1) chosen on the other
    folds; the mean over ``repeats`` seeded fold splits (the news dev sets are small)."""
    runs = [_cross_validated_once(sets, features, folds, seed) for seed in range(13, 13 + repeats)]
    return {n: {k: float(np.mean([r[n][k] for r in runs])) for k in runs[0][n]} for n in sets}


def _cross_validated_once(sets: dict[str, list[Row]], features, folds: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    fold_of = {n: rng.permutation(len(r)) % folds for n, r in sets.items()}
    scored: dict[str, list[tuple[Row, float, float]]] = {n: [] for n in sets}
    for k in range(folds):
        train = {n: [r for r, f in zip(rows, fold_of[n]) if f != k] for n, rows in sets.items()}
        cal = fit_platt(train, features)
        rescored = [[replace(r, margin=c) for r, c in zip(rows, confidences(rows, cal))] for rows in train.values()]

        def mean_f1(t: float) -> float:
            return float(np.mean([figures(rows, t)["best"]["squad2_f1"] for rows in rescored]))

        t = max((round(x, 2) for x in np.arange(0.05, 0.96, 0.05)), key=mean_f1)
        for n, rows in sets.items():
            test = [r for r, f in zip(rows, fold_of[n]) if f == k]
            scored[n].extend((r, c, t) for r, c in zip(test, confidences(test, cal)))
    out = {}
    for n, trip in scored.items():
        preds = [r.candidate if c >= t else None for r, c, t in trip]
        golds = [r.answers for r, _, _ in trip]
        out[n] = {"squad2_f1": M.squad2_metrics(preds, golds)["f1"],
                  "abst_f1": M.abstention_metrics([p is None for p in preds], [not g for g in golds])["f1"],
                  "contains": M.answer_metrics(preds, golds)["contains"]}
    return out


def confidences(rows: list[Row], cal: dict) -> list[float]:
    z = [cal["bias"] + sum(wt * r.features.get(k, 0.0) for k, wt in cal["weights"].items()) for r in rows]
    return [float(1 / (1 + np.exp(-v))) for v in z]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-root", type=Path, default=Path.home() / ".cache" / "rag" / "dev-indexes")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--passages", type=int, nargs="+", default=[1, 2, 3, 5])
    ap.add_argument("--sentences", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0])
    ap.add_argument("--squad-limit", type=int, default=None, help="a seeded sample of this many SQuAD dev questions")
    ap.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "reader-tuning.json")
    ap.add_argument("--features", nargs="+", default=list(FEATURES), help="the confidence features fitted and written")
    args = ap.parse_args(argv)

    settings = Settings()
    retrieved = {}
    for name, s, items in dev_sets(args.index_root, args.squad_limit):
        print(f"retrieving {name}: {len(items)} questions", flush=True)
        retrieved[name] = retrieve_all(s, items, max(args.passages))

    report: dict = {"curve": [], "weights": []}
    print("\nquality against what the model reads (retrieval_weight 0):")
    print(f"{'passages':>8} {'sent':>4} {'windows':>7} | " + " | ".join(f"{n:^38}" for n in retrieved))
    print(f"{'':>8} {'':>4} {'':>7} | " + " | ".join(f"{'F1 never  cont never  sq2F1@best  ms p50':^38}" for _ in retrieved))
    for sent in args.sentences:
        for n in args.passages:
            cells, entry = [], {"passages": n, "sentences": sent, "sets": {}}
            wins = []
            for name, (pipe, data, ret) in retrieved.items():
                rows = read_all(pipe, data, ret, read_passages=n, read_sentences=sent, retrieval_weight=0.0)
                f = figures(rows)
                entry["sets"][name] = f
                wins.append(f["windows"])
                cells.append(f"{f['f1_never']:.3f}  {f['contains_never']:.3f}  {f['best']['squad2_f1']:.3f}  {f['ms_p50']:6.1f}")
            report["curve"].append(entry)
            print(f"{n:>8} {sent:>4} {np.mean(wins):7.2f} | " + " | ".join(f"{c:^38}" for c in cells), flush=True)

    chosen = {"read_passages": settings.read_passages, "read_sentences": settings.read_sentences,
              "read_context": settings.read_context}
    print(f"\nretrieval weight, reading {chosen}:")
    rows_by_w = {}
    for wgt in args.weights:
        sets = {name: read_all(pipe, data, ret, **chosen, retrieval_weight=wgt) for name, (pipe, data, ret) in retrieved.items()}
        rows_by_w[wgt] = sets
        figs = {name: figures(rows) for name, rows in sets.items()}
        report["weights"].append({"weight": wgt, "sets": figs})
        print(f"  weight {wgt:4.1f}: " + "  ".join(
            f"{n} F1 {f['f1_never']:.3f} cont {f['contains_never']:.3f} sq2F1 {f['best']['squad2_f1']:.3f}" for n, f in figs.items()))

    sets = rows_by_w[settings.retrieval_weight] if settings.retrieval_weight in rows_by_w else next(iter(rows_by_w.values()))
    print("\nconfidence features, 2-fold cross-validation x 5 splits (fit and threshold on one half, scored on the other):")
    report["features"] = []
    for feats in FEATURE_SETS:
        cv = cross_validated(sets, feats)
        report["features"].append({"features": list(feats), "sets": cv})
        print(f"  {' + '.join(feats):<40} " + "  ".join(
            f"{n} sq2F1 {d['squad2_f1']:.3f} abstF1 {d['abst_f1']:.3f}" for n, d in cv.items())
            + f" | mean sq2F1 {np.mean([d['squad2_f1'] for d in cv.values()]):.3f}", flush=True)
    cal = fit_platt(sets, args.features)
    print(f"\nPlatt fit: p = sigmoid({cal['bias']:.4f} + " + " + ".join(f"{w:.4f} * {k}" for k, w in cal["weights"].items()) + ")")
    report["calibration"] = cal
    conf = {n: confidences(r, cal) for n, r in sets.items()}
    for n, r in sets.items():  # the threshold table below reads the confidence as the row's margin
        for row, c in zip(r, conf[n]):
            row.margin = c
    print("\nthreshold (confidence) -> per set: answer F1 / contains / abstention F1 / SQuAD2 F1 | mean SQuAD2 F1")
    table = []
    for t in [round(x, 2) for x in np.arange(0.05, 0.96, 0.05)]:
        row = {"threshold": t, "sets": {n: figures(r, t)["best"] for n, r in sets.items()}}
        row["mean_squad2_f1"] = float(np.mean([d["squad2_f1"] for d in row["sets"].values()]))
        table.append(row)
        print(f"  {t:.2f}: " + "  ".join(
            f"{n} {d['f1']:.3f}/{d['contains']:.3f}/{d['abst_f1']:.3f}/{d['squad2_f1']:.3f}" for n, d in row["sets"].items())
            + f" | {row['mean_squad2_f1']:.3f}")
    report["thresholds"] = table
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    if not args.no_write:
        path = Path(settings.reader_dir) / "calibration.json"
        path.write_text(json.dumps({
            **cal,
            "label": "the candidate contains a gold answer (SQuAD-normalized); unanswerable questions are never right",
            "fit_on": list(sets), "n": {k: len(v) for k, v in sets.items()},
            "reading": {**chosen, "retrieval_weight": settings.retrieval_weight},
            "best_threshold_mean_squad2_f1": max(table, key=lambda r: r["mean_squad2_f1"])["threshold"],
        }, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
