"""Local build vs Ray build of one folder, in the same run, and the identical-eval check.

    python -m eval.bench_ray [--articles FOLDER (default: bbc/articles under the corpora_dir setting)] [--runs 1]
                             [--qa eval/bbc_qa.jsonl] [--ray-address HOST:PORT]

Each run builds the folder twice from scratch, each time in a fresh ``rag build`` process and a
fresh index folder, with the same settings: ``rag build`` (local) and ``rag build --engine ray``
(a local Ray instance started by the build itself on this machine, or the cluster at
``--ray-address``). Runs alternate which engine goes first. Wall time includes everything a
user waits for: process start, model load, and for Ray starting the instance and its actors.
The driver's peak RSS is that of the ``rag build`` process (Ray's workers are other processes).

Then the two last indexes are compared (articles, chunks, BM25 tokens, vectors) and
``rag eval --qa QA`` runs on both; every figure must be identical.

The machine is shared: "other load" is the CPU (in cores) the rest of the machine used during
each build, and "CPU" the CPU seconds of the build's own processes (the ``rag build`` process and,
for a local Ray instance, the raylet and workers it starts), which depends less on the load. Prints a table and writes ``eval/reports/bench-ray-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from eval.bench_common import REPORTS, ROOT, bbc_articles, busy_seconds

RAG = [sys.executable, "-m", "rag.cli"]


class _TreeCPU:
    """CPU seconds of a process and all its descendants (Ray's raylet and workers are started
    by the build process), sampled from /proc every 0.5 s: the last reading of each is summed."""

    def __init__(self, pid: int):
        import threading

        self._root = pid
        self._seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    @staticmethod
    def _stat(pid: str) -> tuple[int, float] | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _poll(self) -> None:
        while not self._stop.is_set():
            stats = {int(p): st for p in os.listdir("/proc") if p.isdigit() and (st := self._stat(p))}
            tree, grew = {self._root}, True
            while grew:
                grew = False
                for pid, (ppid, _) in stats.items():
                    if ppid in tree and pid not in tree:
                        tree.add(pid)
                        grew = True
            for pid in tree:
                if pid in stats:
                    self._seen[pid] = stats[pid][1]
            self._stop.wait(0.5)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return sum(self._seen.values())


def _run_build(engine: str, articles: Path, index: Path, address: str | None) -> dict:
    """One ``rag build`` process: wall time, its report, and the driver's CPU and peak RSS (wait4)."""
    cmd = [*RAG, "build", "--articles", str(articles), "--index", str(index), "--json", "--engine", engine]
    if address and engine == "ray":
        cmd += ["--ray-address", address]
    b0, t0 = busy_seconds(), time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=ROOT)
        tree = _TreeCPU(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        tree_cpu = tree.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        raise SystemExit(f"{engine} build failed:\n{stderr[-3000:]}")
    report = json.loads(stdout)
    return {
        "engine": engine,
        "wall_s": round(wall, 2),
        "seconds": {k: round(v, 2) for k, v in report["seconds"].items()},
        "n_articles": report["n_articles"],
        "n_chunks": report["n_chunks"],
        "embedded_chunks": report["embedded_chunks"],
        "cluster": report.get("cluster"),
        "other_load_cores": round(max(0.0, (busy_seconds() - b0) / wall - max(tree_cpu, usage.ru_utime + usage.ru_stime) / wall), 2),
        "driver_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "build_cpu_s": round(max(tree_cpu, usage.ru_utime + usage.ru_stime), 1),
        "driver_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def compare_indexes(a: Path, b: Path) -> dict:
    from rag.config import Settings
    from rag.pipeline import Pipeline

    da, db = (Pipeline(Settings(index_dir=p)).index() for p in (a, b))

    def lines(d, name):
        return (d.path / name).read_text(encoding="utf-8").splitlines()

    cos = np.sum(da.vectors * db.vectors, axis=1) if da.vectors.shape == db.vectors.shape else np.array([0.0])
    return {
        "same_articles": lines(da, "articles.jsonl") == lines(db, "articles.jsonl"),
        "same_chunks": lines(da, "chunks.jsonl") == lines(db, "chunks.jsonl"),
        "same_bm25_tokens": lines(da, "bm25_tokens.jsonl") == lines(db, "bm25_tokens.jsonl"),
        "vectors_min_cosine": float(cos.min()),
        "vectors_identical": bool(np.array_equal(da.vectors, db.vectors)),
        "sentence_vectors_identical": bool(np.array_equal(da.sent_vectors, db.sent_vectors)),
    }


def run_eval(qa: Path, articles: Path, index: Path, out: Path) -> dict:
    cmd = [*RAG, "eval", "--qa", str(qa), "--articles", str(articles), "--index", str(index),
           "--json", str(out), "--report", str(out.with_suffix(".md"))]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise SystemExit(f"eval failed:\n{r.stderr[-3000:]}")
    rep = json.loads(out.read_text())
    return {k: rep[k] for k in ("retrieval", "answer", "abstention", "misses")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=Path, default=None, help="articles folder (default: the BBC corpus, bbc/articles under the corpora_dir setting)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--qa", type=Path, default=ROOT / "eval" / "bbc_qa.jsonl")
    ap.add_argument("--ray-address", default=None)
    args = ap.parse_args(argv)
    args.articles = args.articles or bbc_articles()
    if not args.articles.is_dir():
        raise SystemExit(f"Articles folder not found: {args.articles}")
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        tmp = Path(tmp)
        last: dict[str, Path] = {}
        for run in range(args.runs):
            order = ("local", "ray") if run % 2 == 0 else ("ray", "local")
            for engine in order:
                index = tmp / f"{engine}-{run}"
                r = _run_build(engine, args.articles, index, args.ray_address)
                r["run"] = run
                results.append(r)
                last[engine] = index
                print(f"run {run} {engine:5s}: {r['wall_s']:7.1f} s wall ({r['n_articles']} articles, "
                      f"{r['n_chunks']} chunks; CPU {r['build_cpu_s']:.0f} s in all its processes; "
                      f"other load {r['other_load_cores']:.2f} cores; "
                      f"driver peak RSS {r['driver_peak_rss_mib']:.0f} MiB) {r['seconds']}", flush=True)
        same = compare_indexes(last["local"], last["ray"])
        print("same result:", same, flush=True)
        evals = {e: run_eval(args.qa, args.articles, last[e], tmp / f"eval-{e}.json") for e in ("local", "ray")}
        identical = evals["local"] == evals["ray"]
    med = {e: statistics.median(r["wall_s"] for r in results if r["engine"] == e) for e in ("local", "ray")}
    cpu = {e: statistics.median(r["build_cpu_s"] for r in results if r["engine"] == e) for e in ("local", "ray")}
    ans = evals["local"]["answer"]
    summary = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "articles": str(args.articles),
        "runs": args.runs,
        "median_wall_s": med,
        "ray_over_local": round(med["ray"] / med["local"], 3),
        "median_cpu_s": cpu,
        "ray_over_local_cpu": round(cpu["ray"] / cpu["local"], 3),
        "same_result": same,
        "eval_qa": str(args.qa),
        "eval_identical": identical,
        "eval_figures": {"hit@5": evals["local"]["retrieval"].get("hit@5"), "em": ans.get("em"), "f1": ans.get("f1"),
                         "contains": ans.get("contains"), "abstention_f1": evals["local"]["abstention"].get("f1")},
        "builds": results,
    }
    print(f"\nmedian wall: local {med['local']:.1f} s, Ray {med['ray']:.1f} s, Ray / local = {summary['ray_over_local']:.2f}")
    print(f"median CPU of all build processes: local {cpu['local']:.0f} s, Ray {cpu['ray']:.0f} s, "
          f"Ray / local = {summary['ray_over_local_cpu']:.2f}")
    print(f"eval {args.qa.name} identical on both indexes: {identical}  {summary['eval_figures']}")
    REPORTS.mkdir(parents=True, exist_ok=True)
    out = REPORTS / f"bench-ray-{datetime.now():%Y-%m-%d}.json"
    out.write_text(json.dumps(summary, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
