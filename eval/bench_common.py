"""Helpers shared by the benchmark scripts (eval/bench.py, eval/scale.py, eval/bench_ray.py):
where things are, what the machine and a process spend, the worker protocol and the report file.
Each is defined here once; the scripts import them and never each other's."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
REPORTS = ROOT / "eval" / "reports"
RESULT_TAG = "BENCH_RESULT "


def bbc_articles() -> Path:
    """The BBC corpus: ``bbc/articles`` under the ``corpora_dir`` setting (``RAG_CORPORA_DIR``)."""
    from rag.config import Settings

    return Settings().corpora_dir / "bbc" / "articles"


# -- measuring -----------------------------------------------------------------------------------
def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores)."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process (user + system)."""
    t = os.times()
    return t.user + t.system


class Meter:
    """Wall time, this process's CPU time, and the CPU the rest of the machine used meanwhile."""

    def __enter__(self) -> "Meter":
        self.t0, self.c0, self.b0 = time.perf_counter(), own_cpu(), busy_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = own_cpu() - self.c0
        busy = busy_seconds() - self.b0
        self.other = max(0.0, busy - self.cpu) / self.wall if self.wall > 0 else 0.0

    def dict(self) -> dict:
        return {"wall": self.wall, "cpu": self.cpu, "other_load": self.other}


def vm_status(key: str) -> int:
    """A /proc/self/status memory field (VmHWM = peak RSS, VmRSS = current), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def pct(xs, q):
    import numpy as np

    return float(np.percentile(xs, q)) if len(xs) else None


def clustered(n: int, d: int, rng, centers):
    """Points of a mixture of Gaussians on the unit sphere (Zipf-weighted clusters)."""
    import numpy as np

    k = len(centers)
    w = 1.0 / np.arange(1, k + 1) ** 0.5
    labels = rng.choice(k, n, p=w / w.sum())
    out = np.empty((n, d), np.float32)
    step = 100_000
    for a in range(0, n, step):
        b = min(n, a + step)
        out[a:b] = centers[labels[a:b]] + rng.standard_normal((b - a, d), dtype=np.float32) / np.sqrt(d)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


# -- workers ---------------------------------------------------------------------------------------
def emit(result: dict) -> None:
    """A worker's result, on one tagged line of its stdout (read by ``Runner.run``)."""
    sys.stdout.write(RESULT_TAG + json.dumps(result) + "\n")
    sys.stdout.flush()


def quiet() -> None:
    """Keep the libraries' progress bars and warnings out of the workers' stderr."""
    import logging
    import warnings

    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)


class Runner:
    def __init__(self, console, module: str = "eval.bench"):
        self.console = console
        self.module = module  # whose --worker runs (eval.scale has its own)
        self.started = time.perf_counter()

    def run(self, name: str, params: dict, label: str, timeout: float = 3600) -> dict | None:
        params = {**params}
        if name in ("cold", "import_torch"):
            params["spawned"] = time.time()
        cmd = [sys.executable, "-m", self.module, "--worker", name, "--params", json.dumps(params)]
        self.console.print(f"[dim]{self.elapsed()}[/dim] {label} ...")
        t = time.perf_counter()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        result, err_lines = None, []
        import threading

        def pump():
            for line in proc.stderr:
                err_lines.append(line)
                if line.startswith("  "):
                    self.console.print(f"[dim]{line.rstrip()}[/dim]")

        # stderr belongs to the pump thread; this thread reads stdout. (communicate() would read
        # stderr too, racing the pump and closing the pipe under it.)
        th = threading.Thread(target=pump, daemon=True)
        th.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            out = proc.stdout.read()
            proc.wait()
        finally:
            timer.cancel()
        th.join(timeout=5)
        for line in out.splitlines():
            if line.startswith(RESULT_TAG):
                result = json.loads(line[len(RESULT_TAG):])
        if result is None:
            self.console.print(f"[red]{label} failed (exit {proc.returncode}):[/red]\n{''.join(err_lines[-15:])}")
            return None
        result["_wall"] = time.perf_counter() - t
        if proc.returncode != 0:
            result["_exit"] = proc.returncode
        return result

    def elapsed(self) -> str:
        s = int(time.perf_counter() - self.started)
        return f"[{s // 60:02d}:{s % 60:02d}]"


# -- the report ------------------------------------------------------------------------------------
def save_report(report: dict, out: Path, console) -> None:
    """Write the JSON report and the console's text so far beside it (``.txt``); called after
    each section, so that a run cut short keeps what it measured."""
    out.write_text(json.dumps(report, indent=1, default=str))
    out.with_suffix(".txt").write_text(console.export_text(clear=False))
