"""Choose how the reader reads, fit its span ranker and its confidence, and pick the threshold.

    python -m rag.training.calibrate                 # curve, ranker, Platt fit -> calibration.json
    python -m rag.training.calibrate --no-write      # only print the tables
    RAG_READER_DIR=DIR python -m rag.training.calibrate --out DIR/tuning.json   # a candidate model (its calibration.json)

Dev sets (tuning data only; no eval set and no ``test``/``heldout`` half is read here):

* ``squad-dev``: the ``dev`` articles of ``rag/squad_split.json`` (Wikipedia), passages
  retrieved among those articles;
* ``news-dev``: the fixed by-article dev part of ``bbc-news-qa`` (``rag.training.data``), passages
  retrieved among all 2,225 BBC articles when the ``corpora_dir`` setting holds ``bbc/`` (as served),
  else among the news set's own dev articles;
* ``seeds-dev``: the ``dev`` split of ``eval/seeds_qa.jsonl`` over ``seeds/``;
* ``bbc-dev``: the ``dev`` half of ``eval/bbc_heldout_qa.jsonl`` and all of ``eval/bbc_qa.jsonl`` (both
  tuning data, ``eval/README.md``) over the BBC corpus, when it is there. The news-qa near misses
  are harder than these sets' unanswerable questions: fit on them alone, the threshold refused
  half of the answerable questions of these sets (ECE 0.27-0.29 on them).

For every question the top passages are retrieved once. Then:

1. **Reading curve**: each reading (window size, whole passages or sentence windows, how many
   passages) reads them; printed: F1 / contains without abstaining, SQuAD 2.0 F1 at the best
   margin, and the read time's median. The defaults in ``rag/config.py`` are picked from it.
2. **Span ranker** (``rag.spans``): a conditional logit over each answerable question's
   ``N_BEST`` candidates (the probability of those whose F1 with a gold answer is at least 0.5,
   sets weighted equally), pulled towards the model's own order by an L2 penalty; its gain is
   measured by 2-fold x 5 cross-validation (fit on half the questions, choose on the other half)
   for each penalty of ``RANKER_L2``, and it is kept only if the best one pays.
3. **Confidence**: Platt scaling (logistic regression of "the chosen span contains a gold answer")
   on a feature set chosen by the same cross-validation; the threshold is the one with the best
   mean SQuAD 2.0 F1 over the dev sets. ``calibration.json`` beside the model gets all of it;
   serving reads its threshold (the ``abstain_threshold`` setting may override it).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rag.evaluation import metrics
from rag.config import Settings
from rag.evaluation.qa_sets import QAItem, load_qa, load_squad_set
from rag.pipeline import Pipeline
from rag.reader import N_BEST, Reader
from rag.span_model import SpanModel
from rag.spans import SpanCandidate, SpanRanker, features
from rag.evaluation.squad import load_squad, question_word
from rag.training.data import split_news, training_sets

ROOT = Path(__file__).resolve().parents[2]
RANKER_L2 = (0.1, 1.0, 10.0)  # the ranker's pull towards the model's own order, chosen by cross-validation
SQUAD, NEWS = training_sets(Settings())
BBC = Settings().corpora_dir / "bbc" / "articles"


@dataclass
class Row:
    """One question read with one setting."""

    question: str
    answers: tuple[str, ...]
    candidate: str | None
    margin: float
    ms: float
    windows: int
    features: dict
    spans: list[SpanCandidate] = field(default_factory=list)  # the N_BEST candidates, model order


def news_dev_set(cache_dir: Path) -> tuple[list[QAItem], Path]:
    """The news set's dev questions and the folder of articles to retrieve among."""
    articles = split_news(load_squad(NEWS), "dev")
    items = []
    for a in articles:
        for p in a.paragraphs:
            for q in p.questions:
                answers = () if q.impossible else tuple(t for t, _ in q.answers)
                items.append(QAItem(id=q.id, question=q.question, answers=answers,
                                    sources=(f"{a.title}.txt",) if answers else (),
                                    type="unanswerable" if not answers else question_word(q.question),
                                    split="dev", line=len(items) + 1))
    if BBC.is_dir():
        return items, BBC
    folder = Path(cache_dir) / "news-dev" / "articles"
    folder.mkdir(parents=True, exist_ok=True)
    for a in articles:
        path = folder / f"{a.title}.txt"
        text = a.paragraphs[0].context
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return items, folder


def dev_sets(index_root: Path, squad_limit: int | None = None) -> list[tuple[str, Settings, list]]:
    base = Settings()
    items, folder = load_squad_set(SQUAD, "dev", base.cache_dir)
    if squad_limit and squad_limit < len(items):
        import random

        items = random.Random(13).sample(items, squad_limit)
    sets = [("squad-dev", base.model_copy(update={"articles_dir": folder / "articles", "index_dir": folder / "index"}),
             items)]
    news, articles = news_dev_set(base.cache_dir)
    name = "bbc" if articles == BBC else "news-dev"
    sets.append(("news-dev", base.model_copy(update={"articles_dir": articles, "index_dir": index_root / name}), news))
    seeds, _ = load_qa(ROOT / "eval" / "seeds_qa.jsonl", "dev")
    sets.append(("seeds-dev", base.model_copy(update={"articles_dir": ROOT / "seeds", "index_dir": index_root / "seeds"}),
                 seeds))
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


FIT_KEYS = ("weights", "bias", "threshold", "ranker")


def with_fit(existing: dict, fit: dict, precision: str, about: dict) -> dict:
    """``calibration.json`` with ``fit`` (Platt weights, bias, threshold, ranker) for
    ``precision``: the served precision's fit is the top level (``"precision"`` names it), a
    fit of the other precision is kept under ``"other_precisions"`` (``rag.span_model.calibration_for``)."""
    others = dict(existing.get("other_precisions") or {})
    top = existing.get("precision", "float")
    if existing and top != precision:
        others[top] = {k: existing[k] for k in FIT_KEYS if k in existing}
    others.pop(precision, None)
    out = {**{k: v for k, v in existing.items() if k not in FIT_KEYS}, **about, **fit, "precision": precision}
    if others:
        out["other_precisions"] = others
    else:
        out.pop("other_precisions", None)
    return out


def read_all(data, model: SpanModel, retrieved, **reading) -> list[Row]:
    reader = Reader(data, model, **reading)
    reader.ranker = SpanRanker(None)  # the model's own order: the ranker is fit on these rows
    rows = []
    for it, qvec, hits in retrieved:
        t = time.perf_counter()
        r = reader.read(it.question, hits, qvec)
        ms = (time.perf_counter() - t) * 1000
        cands, _, _, _ = reader.candidates(it.question, hits, qvec)
        spans = [SpanCandidate(data.articles[c.article_id].text[c.start : c.end], c.margin, c.retrieval,
                               c.passage.hit.rank) for c in cands[:N_BEST]]
        rows.append(Row(it.question, it.answers, r.answer, r.features.get("margin", -1e9), ms, r.windows,
                        dict(r.features), spans))
    return rows


def figures(rows: list[Row], margin: float | None = None) -> dict:
    """Never-abstaining F1/contains, and SQuAD 2.0 F1 / abstention F1 at ``margin`` (best if None)."""
    golds = [r.answers for r in rows]
    never = metrics.answer_metrics([r.candidate for r in rows], golds)

    def at(m: float) -> dict:
        preds = [r.candidate if r.margin >= m else None for r in rows]
        sq = metrics.squad2_metrics(preds, golds)
        ab = metrics.abstention_metrics([p is None for p in preds], [not g for g in golds])
        ans = metrics.answer_metrics(preds, golds)
        return {"margin": m, "squad2_f1": sq["f1"], "abst_f1": ab["f1"], "f1": ans["f1"], "contains": ans["contains"]}

    if margin is None:
        grid = sorted({round(r.margin, 1) for r in rows} | {-1e9})
        best = max((at(m) for m in grid), key=lambda d: d["squad2_f1"])
    else:
        best = at(margin)
    return {"f1_never": never["f1"], "contains_never": never["contains"], "best": best,
            "ms_p50": metrics.percentile([r.ms for r in rows], 50), "windows": float(np.mean([r.windows for r in rows]))}


# -- the span ranker -----------------------------------------------------------------
def _span_f1(text: str, answers) -> float:
    return metrics.f1_score(text, answers) if answers else 0.0


def fit_ranker(sets: dict[str, list[Row]], retrieval_weight: float, l2: float = 1.0) -> dict | None:
    """A listwise (conditional logit) ranker: one softmax over each answerable question's
    ``N_BEST`` candidates, maximising the probability of those whose F1 with a gold answer is at
    least 0.5 (sets weighted equally, standardised features). The weights are pulled towards the
    model's own order (margin + ``retrieval_weight`` x retrieval) by an L2 penalty of ``l2``, so
    with little evidence the ranker stays the model. None when no question has a right and a
    wrong candidate."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    groups, names = [], None
    for rows in sets.values():
        qs = [r for r in rows if r.answers and r.spans]
        for r in qs:
            names, F = features(r.question, r.spans)
            right = np.array([_span_f1(c.text, r.answers) >= 0.5 for c in r.spans])
            if right.any() and not right.all():
                groups.append((F, right, 1.0 / (len(qs) * len(sets))))
    if not groups or names is None:
        return None
    X = np.vstack([g[0] for g in groups])
    mean, scale = X.mean(0), X.std(0)
    scale[scale == 0] = 1.0
    Z = [((F - mean) / scale, right, wt) for F, right, wt in groups]
    w0 = np.zeros(len(names))
    w0[names.index("margin")] = scale[names.index("margin")]
    w0[names.index("retrieval")] = retrieval_weight * scale[names.index("retrieval")]

    def loss(w):
        total, grad = 0.5 * l2 * float((w - w0) @ (w - w0)), l2 * (w - w0)
        for z, right, wt in Z:
            sc = z @ w
            p = np.exp(sc - logsumexp(sc))
            pr = np.exp(sc[right] - logsumexp(sc[right]))
            total -= wt * (logsumexp(sc[right]) - logsumexp(sc))
            grad -= wt * (pr @ z[right] - p @ z)
        return total, grad

    w = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
    # the bias puts scores in the raw features' units, like the model's margin + w x retrieval
    return {"features": list(names), "weights": w.tolist(), "bias": float(w @ (mean / scale)),
            "mean": mean.tolist(), "scale": scale.tolist(), "l2": l2}


def rerank(rows: list[Row], ranker: SpanRanker) -> list[Row]:
    """The rows with the ranker's choice as candidate and its score as the ``rank_score`` feature."""
    out = []
    for r in rows:
        if not r.spans or not ranker:
            out.append(r)
            continue
        sc = ranker.scores(r.question, r.spans)
        i = int(np.argmax(sc))
        best = r.spans[i]
        out.append(replace(r, candidate=best.text, features={**r.features, "margin": best.margin,
                                                              "retrieval": best.retrieval,
                                                              "passage_rank": float(best.passage_rank),
                                                              "rank_score": float(sc[i])}))
    return out


def ranker_cv(sets: dict[str, list[Row]], retrieval_weight: float, l2: float, folds: int = 2, repeats: int = 5) -> dict:
    """Per set, never-abstaining F1 and contains of the model's order and of the ranker fit on the
    other folds (mean over ``repeats`` seeded splits by question)."""
    out: dict[str, dict[str, list[float]]] = {n: {"f1_model": [], "f1_ranker": [], "contains_model": [],
                                                  "contains_ranker": []} for n in sets}
    for seed in range(13, 13 + repeats):
        rng = np.random.default_rng(seed)
        fold_of = {n: rng.permutation(len(r)) % folds for n, r in sets.items()}
        chosen: dict[str, list[Row]] = {n: [] for n in sets}
        for k in range(folds):
            train = {n: [r for r, f in zip(rows, fold_of[n]) if f != k] for n, rows in sets.items()}
            ranker = SpanRanker(fit_ranker(train, retrieval_weight, l2))
            for n, rows in sets.items():
                chosen[n] += rerank([r for r, f in zip(rows, fold_of[n]) if f == k], ranker)
        for n, rows in sets.items():
            golds = [r.answers for r in rows]
            m = metrics.answer_metrics([r.candidate for r in rows], golds)
            c = metrics.answer_metrics([r.candidate for r in chosen[n]], [r.answers for r in chosen[n]])
            out[n]["f1_model"].append(m["f1"])
            out[n]["contains_model"].append(m["contains"])
            out[n]["f1_ranker"].append(c["f1"])
            out[n]["contains_ranker"].append(c["contains"])
    return {n: {k: float(np.mean(v)) for k, v in d.items()} for n, d in out.items()}


# -- confidence ----------------------------------------------------------------------
FEATURE_SETS = [
    ("margin",),
    ("margin", "null_min"),
    ("margin", "rank_score"),
    ("margin", "null_min", "rank_score"),
    ("margin", "null_min", "rank_score", "retrieval", "passages_with_a_span"),
]


def fit_platt(sets: dict[str, list[Row]], features=("margin", "null_min")) -> dict:
    """Logistic regression of 'candidate contains a gold answer' on the reader's scores, sets
    weighted equally."""
    from sklearn.linear_model import LogisticRegression

    X, y, w = [], [], []
    for rows in sets.values():
        for r in rows:
            X.append([r.features.get(f, 0.0) for f in features])
            y.append(int(metrics.contains_answer(r.candidate, r.answers)))
            w.append(1.0 / len(rows))
    lr = LogisticRegression(C=10.0, max_iter=1000).fit(np.array(X), np.array(y),
                                                        sample_weight=np.array(w) * len(X) / len(sets))
    return {"weights": dict(zip(features, map(float, lr.coef_[0]))), "bias": float(lr.intercept_[0])}


def confidences(rows: list[Row], cal: dict) -> list[float]:
    z = [cal["bias"] + sum(wt * r.features.get(k, 0.0) for k, wt in cal["weights"].items()) for r in rows]
    return [float(1 / (1 + np.exp(-np.clip(v, -50, 50)))) for v in z]


THRESHOLDS = [round(x, 2) for x in np.arange(0.05, 0.96, 0.05)]


def best_threshold(sets: dict[str, list[Row]], cal: dict) -> float:
    rescored = [[replace(r, margin=c) for r, c in zip(rows, confidences(rows, cal))] for rows in sets.values()]
    return max(THRESHOLDS, key=lambda t: float(np.mean([figures(rows, t)["best"]["squad2_f1"] for rows in rescored])))


def cross_validated(sets: dict[str, list[Row]], features, folds: int = 2, repeats: int = 5) -> dict:
    """Per set, SQuAD 2.0 F1, abstention F1 and contains when every question is scored by a fit
    and threshold chosen on the other folds (mean over ``repeats`` seeded splits)."""
    runs = []
    for seed in range(13, 13 + repeats):
        rng = np.random.default_rng(seed)
        fold_of = {n: rng.permutation(len(r)) % folds for n, r in sets.items()}
        scored: dict[str, list[tuple[Row, float, float]]] = {n: [] for n in sets}
        for k in range(folds):
            train = {n: [r for r, f in zip(rows, fold_of[n]) if f != k] for n, rows in sets.items()}
            cal = fit_platt(train, features)
            t = best_threshold(train, cal)
            for n, rows in sets.items():
                test = [r for r, f in zip(rows, fold_of[n]) if f == k]
                scored[n].extend((r, c, t) for r, c in zip(test, confidences(test, cal)))
        out = {}
        for n, trip in scored.items():
            preds = [r.candidate if c >= t else None for r, c, t in trip]
            golds = [r.answers for r, _, _ in trip]
            out[n] = {"squad2_f1": metrics.squad2_metrics(preds, golds)["f1"],
                      "abst_f1": metrics.abstention_metrics([p is None for p in preds], [not g for g in golds])["f1"],
                      "contains": metrics.answer_metrics(preds, golds)["contains"]}
        runs.append(out)
    return {n: {k: float(np.mean([r[n][k] for r in runs])) for k in runs[0][n]} for n in sets}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-root", type=Path, default=Path.home() / ".cache" / "rag" / "dev-indexes")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--pieces", type=int, nargs="+", default=[256, 384], help="window sizes of the reading curve")
    ap.add_argument("--passages", type=int, nargs="+", default=[1, 2, 3, 5])
    ap.add_argument("--sentences", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    ap.add_argument("--squad-limit", type=int, default=None, help="a seeded sample of this many SQuAD dev questions")
    ap.add_argument("--no-ranker", action="store_true", help="do not fit or write a span ranker")
    ap.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "reader-tuning.json")
    args = ap.parse_args(argv)

    settings = Settings()
    retrieved = {}
    for name, s, items in dev_sets(args.index_root, args.squad_limit):
        print(f"retrieving {name}: {len(items)} questions ({s.articles_dir})", flush=True)
        retrieved[name] = retrieve_all(s, items, max(args.passages + [settings.read_passages]))
    models = {p: SpanModel(settings.reader_dir, max_pieces=p, int8=settings.reader_int8, cache_dir=settings.cache_dir)
              for p in sorted(set(args.pieces) | {settings.read_window_pieces})}
    print(f"model {settings.reader_dir} (normalisation: {models[settings.read_window_pieces].normalisation}, "
          f"{models[settings.read_window_pieces].precision})")

    report: dict = {"curve": [], "weights": []}
    print("\n1. quality against what the model reads (retrieval_weight 0, the model's own order):")
    print(f"{'pieces':>6} {'sent':>4} {'passages':>8} {'windows':>7} | " + " | ".join(f"{n:^38}" for n in retrieved))
    print(f"{'':>6} {'':>4} {'':>8} {'':>7} | " + " | ".join(f"{'F1 never  cont never  sq2F1@best  ms p50':^38}" for _ in retrieved))
    for pieces in args.pieces:
        for sent in args.sentences:
            for n in args.passages:
                cells, entry, wins = [], {"pieces": pieces, "passages": n, "sentences": sent, "sets": {}}, []
                for name, (pipe, data, ret) in retrieved.items():
                    f = figures(read_all(data, models[pieces], ret, read_passages=n, read_sentences=sent,
                                         retrieval_weight=0.0))
                    entry["sets"][name] = f
                    wins.append(f["windows"])
                    cells.append(f"{f['f1_never']:.3f}  {f['contains_never']:.3f}  {f['best']['squad2_f1']:.3f}  {f['ms_p50']:6.1f}")
                report["curve"].append(entry)
                print(f"{pieces:>6} {sent:>4} {n:>8} {np.mean(wins):7.2f} | " + " | ".join(f"{c:^38}" for c in cells), flush=True)

    chosen = {"read_passages": settings.read_passages, "read_sentences": settings.read_sentences,
              "read_context": settings.read_context}
    model = models[settings.read_window_pieces]
    print(f"\n   retrieval weight, reading {chosen}, {settings.read_window_pieces}-piece windows:")
    rows_by_w = {}
    for wgt in args.weights:
        sets = {name: read_all(data, model, ret, **chosen, retrieval_weight=wgt) for name, (pipe, data, ret) in retrieved.items()}
        rows_by_w[wgt] = sets
        figs = {name: figures(rows) for name, rows in sets.items()}
        report["weights"].append({"weight": wgt, "sets": figs})
        print(f"   weight {wgt:4.1f}: " + "  ".join(
            f"{n} F1 {f['f1_never']:.3f} cont {f['contains_never']:.3f} sq2F1 {f['best']['squad2_f1']:.3f}" for n, f in figs.items()))
    rw = settings.retrieval_weight if settings.retrieval_weight in rows_by_w else next(iter(rows_by_w))
    sets = rows_by_w[rw]  # the rows read with the served weight (else the first measured)

    ranker_spec = None
    if not args.no_ranker:
        print("\n2. span ranker, 2-fold x 5 cross-validation (never abstaining; model order -> ranker):")
        report["ranker_cv"], gain, best_l2 = {}, -1.0, None
        for l2 in RANKER_L2:
            cv = ranker_cv(sets, rw, l2)
            report["ranker_cv"][str(l2)] = cv
            g = float(np.mean([d["f1_ranker"] - d["f1_model"] for d in cv.values()]))
            print(f"   l2 {l2:g}: " + "  ".join(f"{n} F1 {d['f1_model']:.3f} -> {d['f1_ranker']:.3f} cont "
                                              f"{d['contains_model']:.3f} -> {d['contains_ranker']:.3f}"
                                              for n, d in cv.items()) + f" | mean F1 gain {g:+.3f}", flush=True)
            if g > gain:
                gain, best_l2 = g, l2
        if gain > 0.005:
            ranker_spec = fit_ranker(sets, rw, best_l2)
            sets = {n: rerank(rows, SpanRanker(ranker_spec)) for n, rows in sets.items()}
            print(f"   kept (mean F1 gain {gain:+.3f}); weights: " + ", ".join(
                f"{f} {w:+.2f}" for f, w in sorted(zip(ranker_spec["features"], ranker_spec["weights"]),
                                                   key=lambda x: -abs(x[1]))[:10]))
        else:
            print(f"   dropped: mean F1 gain {gain:+.3f} does not pay")
    for rows in sets.values():  # without a ranker the chosen span's rank score is its combined score
        for r in rows:
            r.features.setdefault("rank_score", r.features.get("margin", 0.0))

    print("\n3. confidence features, 2-fold x 5 cross-validation (fit and threshold on one half, scored on the other):")
    report["features"] = []
    best_feats, best_mean = FEATURE_SETS[0], -1.0
    for feats in FEATURE_SETS:
        cv = cross_validated(sets, feats)
        mean = float(np.mean([d["squad2_f1"] for d in cv.values()]))
        report["features"].append({"features": list(feats), "sets": cv, "mean_squad2_f1": mean})
        print(f"   {' + '.join(feats):<58} " + "  ".join(
            f"{n} sq2F1 {d['squad2_f1']:.3f} abstF1 {d['abst_f1']:.3f}" for n, d in cv.items()) + f" | mean {mean:.3f}",
              flush=True)
        if mean > best_mean + 0.003:  # a longer set must pay for itself
            best_feats, best_mean = feats, mean
    cal = fit_platt(sets, best_feats)
    threshold = best_threshold(sets, cal)
    print(f"\n   Platt fit on {' + '.join(best_feats)}: p = sigmoid({cal['bias']:.4f} + "
          + " + ".join(f"{w:.4f} * {k}" for k, w in cal["weights"].items()) + f"); threshold {threshold:.2f}")
    report["calibration"] = {**cal, "threshold": threshold}
    scored = {n: [replace(r, margin=c) for r, c in zip(rows, confidences(rows, cal))] for n, rows in sets.items()}
    print("\n   threshold -> per set: answer F1 / contains / abstention F1 / SQuAD2 F1 | mean SQuAD2 F1")
    table = []
    for t in THRESHOLDS:
        row = {"threshold": t, "sets": {n: figures(r, t)["best"] for n, r in scored.items()}}
        row["mean_squad2_f1"] = float(np.mean([d["squad2_f1"] for d in row["sets"].values()]))
        table.append(row)
        print(f"   {t:.2f}: " + "  ".join(
            f"{n} {d['f1']:.3f}/{d['contains']:.3f}/{d['abst_f1']:.3f}/{d['squad2_f1']:.3f}" for n, d in row["sets"].items())
            + f" | {row['mean_squad2_f1']:.3f}")
    report["thresholds"] = table
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    if not args.no_write:
        path = Path(settings.reader_dir) / "calibration.json"
        fit = {**cal, "threshold": threshold, "ranker": ranker_spec}
        path.write_text(json.dumps(with_fit(json.loads(path.read_text()) if path.is_file() else {}, fit,
                                            model.precision, {
            "label": "the chosen span contains a gold answer (SQuAD-normalized); unanswerable questions are never right",
            "fit_on": list(sets), "n": {k: len(v) for k, v in sets.items()},
            "reading": {**chosen, "read_window_pieces": settings.read_window_pieces,
                        "retrieval_weight": settings.retrieval_weight},
        }), indent=2) + "\n")
        print(f"wrote {path} ({model.precision} fit)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
