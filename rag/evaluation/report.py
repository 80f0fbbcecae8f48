"""Reports: the JSON, the markdown report and its charts (coverage, reliability, changes
against a baseline)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .scoring import COMPARE_COLUMNS, NDCG_K, RETRIEVAL_KS, SET_COLUMNS, CHANGE_KINDS

DEFAULT_REPORT_DIR = Path("eval") / "reports"


def report_paths(stem: str, json_out: str | Path | None = None, report_out: str | Path | None = None
                 ) -> tuple[Path, Path, Path]:
    """Where a report goes: the JSON and markdown (default ``eval/reports/<stem>.json`` / ``.md``)
    and the coverage chart beside the markdown (``<report-stem>-coverage.png``)."""
    json_out = Path(json_out) if json_out else DEFAULT_REPORT_DIR / f"{stem}.json"
    report_out = Path(report_out) if report_out else DEFAULT_REPORT_DIR / f"{stem}.md"
    return json_out, report_out, report_out.with_name(f"{report_out.stem}-coverage.png")


def write_changes_chart(changes: dict, path: Path) -> None:
    """Fixed and broken questions by question type, beside still right / still wrong."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    types = list(changes["by_type"]) or ["(none)"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(types) + 3), 3.8))
    colors = {"fixed": "tab:green", "broken": "tab:red", "still wrong": "tab:orange", "still right": "tab:gray"}
    left = [0] * len(types)
    for kind in ("broken", "fixed", "still wrong", "still right"):
        vals = [changes["by_type"].get(t, {}).get(kind, 0) for t in types]
        ax.barh(types, vals, left=left, color=colors[kind], label=f"{kind} ({changes['counts'][kind]})")
        left = [x + v for x, v in zip(left, vals)]
    ax.set(xlabel="questions", title="Against the baseline, by question type")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(report: dict, *, json_out: Path, report_out: Path, chart_out: Path) -> None:
    """Write the JSON, the coverage chart and the markdown report (creating folders)."""
    for p in (json_out, report_out, chart_out):
        p.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_chart(report, chart_out)
    changes_chart = None
    if report["answer"].get("changes"):
        changes_out = report_out.with_name(f"{report_out.stem}-changes.png")
        write_changes_chart(report["answer"]["changes"], changes_out)
        changes_chart = _rel(changes_out, report_out.parent)
    report_out.write_text(render_markdown(report, chart_name=_rel(chart_out, report_out.parent), changes_chart=changes_chart),
                          encoding="utf-8")


def _rel(path: Path, start: Path) -> str:
    try:
        return path.resolve().relative_to(start.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def write_chart(report: dict, path: Path) -> None:
    """Coverage vs accuracy over abstention thresholds, current and recommended thresholds marked."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    curve = report["answer"]["coverage_curve"]
    current = report["answer"]["threshold"]
    rec = report["answer"].get("recommended_threshold") or {}
    ts = [p["threshold"] for p in curve]
    cov = [p["coverage"] for p in curve]
    acc = [p["accuracy"] if p["accuracy"] is not None else float("nan") for p in curve]

    def at(t: float) -> dict:
        return min(curve, key=lambda p: abs(p["threshold"] - t))

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15.5, 4.4))
    ax1.plot(cov, acc, "-", color="tab:blue", lw=1.5)
    cur = at(current)
    if cur["accuracy"] is not None:
        ax1.plot(cur["coverage"], cur["accuracy"], "o", color="tab:red", ms=8, label=f"current t={current:.2f}")
    if rec:
        r = at(rec["threshold"])
        if r["accuracy"] is not None:
            ax1.plot(r["coverage"], r["accuracy"], "*", color="tab:green", ms=12, label=f"recommended t={rec['threshold']:.2f}")
    ax1.set(xlabel="coverage (share of questions answered)", ylabel="accuracy of answered",
            xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), title="Coverage vs accuracy")
    ax1.grid(alpha=0.3)
    ax1.legend(loc="lower left", fontsize=8)

    ax2.plot(ts, cov, label="coverage", color="tab:blue")
    ax2.plot(ts, acc, label="accuracy (answered)", color="tab:orange")
    ax2.plot(ts, [p["accuracy_all"] for p in curve], label="accuracy (all answerable)", color="tab:brown", ls="--")
    ax2.plot(ts, [p["abstention_f1"] for p in curve], label="abstention F1", color="tab:purple")
    ax2.axvline(current, color="tab:red", ls="--", lw=1, label=f"current {current:.2f}")
    if rec:
        ax2.axvline(rec["threshold"], color="tab:green", ls=":", lw=1.5, label=f"recommended {rec['threshold']:.2f}")
    ax2.set(xlabel="abstention threshold (confidence)", xlim=(0, 1), ylim=(-0.02, 1.02), title="By threshold")
    ax2.grid(alpha=0.3)
    ax2.legend(loc="best", fontsize=7)
    rel = report["answer"].get("reliability") or {"bins": [], "ece": 0.0}
    ax3.plot([0, 1], [0, 1], ":", color="grey", lw=1, label="perfectly calibrated")
    if rel["bins"]:
        xs = [b["confidence"] for b in rel["bins"]]
        ys = [b["accuracy"] for b in rel["bins"]]
        sizes = [20 + 180 * b["n"] / max(1, rel["n"]) for b in rel["bins"]]
        ax3.plot(xs, ys, "-", color="tab:blue", lw=1)
        ax3.scatter(xs, ys, s=sizes, color="tab:blue", zorder=3, label="bins (area ~ questions)")
    ax3.set(xlabel="confidence", ylabel="share of candidates right", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02),
            title=f"Reliability (ECE {rel['ece']:.3f})")
    ax3.grid(alpha=0.3)
    ax3.legend(loc="upper left", fontsize=8)
    cfg = report.get("config", {})
    fig.suptitle(f"{Path(str(cfg.get('qa_file', ''))).name}  n={report['n']}  mode={cfg.get('mode')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _md_cell(x: Any) -> str:
    if isinstance(x, (list, tuple)):
        x = " / ".join(str(v) for v in x)
    s = fmt(x) if not isinstance(x, str) else x
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() or " "


def _md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(report: dict, chart_name: str | None = None, changes_chart: str | None = None) -> str:
    """The markdown report: config, headline tables, breakdowns, chart, comparison, misses."""
    cfg, ret, ans, ab, lat = (report[k] for k in ("config", "retrieval", "answer", "abstention", "latency_ms"))
    rec = ans.get("recommended_threshold") or {}
    out = [f"# Evaluation: {Path(str(cfg['qa_file'])).name}", ""]
    if cfg.get("sets"):
        out += ["## Sets", "", "Each set has its own report; the rest of this one counts all their questions together.", ""]
        out += [_md_table(["set", *SET_COLUMNS], [[r["set"], *(r[c] for c in SET_COLUMNS)] for r in cfg["sets"]]), ""]
    out.append(
        f"{report['n']} questions ({ret['n']} answerable, {ab['n']} unanswerable)"
        + (f", split `{cfg['split']}`" if cfg.get("split") else "")
        + f". Mode `{cfg['mode']}`"
        + (f" + `{cfg['fusion']}`" if cfg["mode"] == "hybrid" else "")
        + f", k={cfg['k']}, threshold {cfg['threshold']}, model `{cfg['model']}` ({cfg['backend']}),"
        f" articles `{cfg['articles_dir']}`."
    )
    out.append("")
    if cfg.get("warnings"):
        out += ["## Warnings", ""] + [f"- {w}" for w in cfg["warnings"]] + [""]

    out += ["## Retrieval", "", f"Over the {ret['n']} answerable questions, top {ret['k']} passages.", ""]
    rkeys = [f"hit@{k}" for k in RETRIEVAL_KS] + ["mrr", f"ndcg@{NDCG_K}"]
    out += [_md_table(rkeys, [[ret[k] for k in rkeys]]), ""]

    out += ["## Answers", "", f"Over the {ans['n']} answerable questions (abstaining scores 0).", ""]
    out += [_md_table(["em", "f1", "contains", "answered", "coverage (all)"],
                      [[ans["em"], ans["f1"], ans["contains"], f"{ans['answered']}/{ans['n']}", ans["coverage"]]]), ""]

    sq = ans.get("squad2")
    if sq:
        out += ["## SQuAD 2.0 figures (official definition)", "",
                "Over all questions: an abstention is the empty answer, right on an unanswerable question.", ""]
        out += [_md_table(["exact", "f1", "HasAns exact", "HasAns f1", "NoAns (abstained)", "total", "HasAns", "NoAns"],
                          [[sq["exact"], sq["f1"], sq["HasAns_exact"], sq["HasAns_f1"], sq["NoAns_f1"], sq["total"],
                            sq["HasAns_total"], sq["NoAns_total"]]]), ""]

    out += ["## Abstention", "", "Unanswerable is the positive class.", ""]
    out += [_md_table(["threshold", "precision", "recall", "f1", "tp", "fp", "fn", "tn"],
                      [[ab["threshold"], ab["precision"], ab["recall"], ab["f1"], ab["tp"], ab["fp"], ab["fn"], ab["tn"]]]), ""]
    if rec:
        out += [
            f"Recommended threshold: **{rec['threshold']:.2f}** (best run {rec['range'][0]:.2f}–{rec['range'][1]:.2f};"
            f" objective = mean of accuracy over all answerable and abstention F1 = {rec['objective']:.3f};"
            f" coverage {rec['coverage']:.3f}, accuracy {fmt(rec['accuracy'])}, abstention F1 {rec['abstention_f1']:.3f}).",
            "",
        ]

    out += ["## Latency (ms)", "", _md_table(["p50", "p95", "mean", "max", "n"],
                                            [[fmt(lat["p50"], 1), fmt(lat["p95"], 1), fmt(lat["mean"], 1), fmt(lat["max"], 1), lat["n"]]]), ""]
    if lat.get("stages_p50"):
        out += ["Median per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in lat["stages_p50"].items()), ""]

    out += ["## By question type", ""]
    types = sorted(set(ab["by_type"]))
    rows = []
    for t in types:
        r = ret["by_type"].get(t, {})
        a = ans["by_type"].get(t, {})
        b = ab["by_type"][t]
        rows.append([t, b["n"], r.get("hit@1"), r.get("hit@5"), r.get("mrr"), a.get("em"), a.get("f1"), a.get("contains"), b["rate"]])
    out += [_md_table(["type", "n", "hit@1", "hit@5", "mrr", "em", "f1", "contains", "abstained"], rows), ""]
    if ans.get("by_split"):
        out += ["By split (answerable only):", ""]
        out += [_md_table(["split", "n", "em", "f1", "contains"],
                          [[s, v["n"], v["em"], v["f1"], v["contains"]] for s, v in ans["by_split"].items()]), ""]

    rel = ans.get("reliability")
    if rel and rel["bins"]:
        out += ["## Reliability of the confidence", "",
                f"Per confidence bin, the share of candidates that are right (contain a gold answer; an unanswerable "
                f"question's candidate is never right). Expected calibration error {rel['ece']:.3f}.", ""]
        out += [_md_table(["confidence bin", "n", "mean confidence", "right"],
                          [[f"{b['low']:.1f}–{b['high']:.1f}", b["n"], b["confidence"], b["accuracy"]] for b in rel["bins"]]), ""]

    if chart_name:
        out += ["## Coverage, accuracy and reliability", "", f"![coverage, accuracy and reliability]({chart_name})", ""]

    if ret.get("compare"):
        out += ["## Retrieval modes compared", ""]
        out += [_md_table(["mode", "fusion", *COMPARE_COLUMNS],
                          [[c["mode"], c["fusion"] or "–", *(fmt(c[k], 1) if k == "p50_ms" else c[k] for k in COMPARE_COLUMNS)]
                           for c in ret["compare"]]), ""]

    ch = ans.get("changes")
    if ch:
        out += ["## Against the baseline", "",
                f"Baseline `{ch.get('baseline_file')}` ({ch['n_compared']} questions compared"
                + (f"; {len(ch['only_now'])} only here" if ch["only_now"] else "")
                + (f"; {len(ch['only_baseline'])} only in the baseline" if ch["only_baseline"] else "") + ").", ""]
        out += [_md_table(["figure", "baseline", "now", "change"],
                          [[f["figure"], f["baseline"], f["now"],
                            ("–" if f["change"] is None else f"{f['change']:+.3f}")] for f in ch["figures"]]), ""]
        out += [_md_table(list(CHANGE_KINDS), [[ch["counts"][k] for k in CHANGE_KINDS]]), ""]
        out += [_md_table(["type", *CHANGE_KINDS], [[t, *(v[k] for k in CHANGE_KINDS)] for t, v in ch["by_type"].items()]), ""]
        if changes_chart:
            out += [f"![changes by question type]({changes_chart})", ""]
        if ch["questions"]:
            def shown(text, abstained):
                return "(abstained)" if abstained else (text if text is not None else "–")

            out += [_md_table(["id", "change", "type", "question", "gold", "baseline answer", "answer now"],
                              [[q["id"], q["kind"], q["type"], q["question"], q["gold"] or "(unanswerable)",
                                shown(q["old"], q["old_abstained"]), shown(q["new"], q["new_abstained"])]
                               for q in ch["questions"]]), ""]

    misses = report["misses"]
    counts = defaultdict(int)
    for m in misses:
        counts[m["label"]] += 1
    out += [f"## Misses ({len(misses)})", ""]
    if counts:
        out += [", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), ""]
        out += [_md_table(
            ["id", "label", "type", "question", "gold", "answer / candidate", "conf", "first relevant rank"],
            [[m["id"], m["label"], m["type"], m["question"], m["gold"] or "(unanswerable)",
              (m["answer"] if not m["abstained"] else f"(abstained) {m['candidate'] or '–'}"),
              m["confidence"], m["first_relevant_rank"]] for m in misses],
        ), ""]
    else:
        out += ["None.", ""]
    return "\n".join(out)
