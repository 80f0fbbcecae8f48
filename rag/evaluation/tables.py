"""Rich tables of a report's headline figures, for the terminal (the CLI prints them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from .report import fmt
from .scoring import COMPARE_COLUMNS, NDCG_K, RETRIEVAL_KS, SET_COLUMNS


def sets_table(rows: Sequence[dict]):
    from rich import box
    from rich.table import Table

    t = Table(title="eval sets", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0, 0, 1))
    t.add_column("set", no_wrap=True)
    for c in SET_COLUMNS:
        t.add_column(c, justify="right", no_wrap=True)
    for r in rows:
        t.add_row(r["set"], *(str(r[c]) if c == "n" else fmt(r[c], 1 if c == "p50_ms" else 3) for c in SET_COLUMNS))
    return t


def summary_table(report: dict):
    """A compact rich table of the headline numbers (one row per metric group; fits 80 columns)."""
    from rich.table import Table

    ret, ans, ab, lat = report["retrieval"], report["answer"], report["abstention"], report["latency_ms"]
    t = Table(title=f"eval: {Path(str(report['config']['qa_file'])).name} (n={report['n']})",
              box=None, show_header=False, pad_edge=False, padding=(0, 0, 0, 2))
    t.add_column("group", style="bold")
    t.add_column("metrics")
    rkeys = [f"hit@{k}" for k in RETRIEVAL_KS] + ["mrr", f"ndcg@{NDCG_K}"]
    hits = [k for k in rkeys if k.startswith("hit@")]
    t.add_row(
        f"retrieval ({ret['n']})",
        "hit@" + "/".join(k[4:] for k in hits) + " " + "/".join(fmt(ret[k]) for k in hits)
        + "  " + "  ".join(f"{k} {fmt(ret[k])}" for k in rkeys if k not in hits),
    )
    t.add_row(f"answer ({ans['n']})", "  ".join(f"{k} {fmt(ans[k])}" for k in ("em", "f1", "contains"))
              + f"  coverage {fmt(ans['coverage'])}")
    sq = ans.get("squad2")
    if sq:
        t.add_row("squad2", f"exact {fmt(sq['exact'])}  f1 {fmt(sq['f1'])}  HasAns f1 {fmt(sq['HasAns_f1'])}"
                  f"  NoAns {fmt(sq['NoAns_f1'])}")
    t.add_row(f"abstention ({ab['n']})", f"P {fmt(ab['precision'])}  R {fmt(ab['recall'])}  F1 {fmt(ab['f1'])}"
              f"  threshold {ab['threshold']:.2f}")
    t.add_row("latency ms", f"p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  max {lat['max']:.1f}")
    counts: dict[str, int] = defaultdict(int)
    for m in report["misses"]:
        counts[m["label"]] += 1
    t.add_row(f"misses ({len(report['misses'])})", "  ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
    rec = ans.get("recommended_threshold") or {}
    if rec:
        now = next((p["objective"] for p in ans["coverage_curve"] if p["threshold"] == round(ans["threshold"], 2)), None)
        t.add_row("threshold", f"recommended {rec['threshold']:.2f}: objective {rec['objective']:.3f}"
                  + (f" (now {now:.3f})" if now is not None else ""))
    return t


def compare_table(rows: Sequence[dict]):
    """Side-by-side rich table of the ``compare`` rows."""
    from rich import box
    from rich.table import Table

    t = Table(title="retrieval modes compared", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0, 0, 1))
    t.add_column("setting", no_wrap=True)
    short = {"contains": "cont.", "abstention_f1": "abst.F1", "p50_ms": "p50 ms"}
    for c in COMPARE_COLUMNS:
        t.add_column(short.get(c, c), justify="right", no_wrap=True)
    best = {c: (min if c == "p50_ms" else max)(r[c] for r in rows) for c in COMPARE_COLUMNS}
    for r in rows:
        name = r["mode"] + (f"+{r['fusion']}" if r["fusion"] else "")
        cells = []
        for c in COMPARE_COLUMNS:
            s = fmt(r[c], 1) if c == "p50_ms" else fmt(r[c], 2)
            cells.append(f"[bold]{s}[/]" if r[c] == best[c] else s)
        t.add_row(name, *cells)
    return t
