"""The house's shape: no import circle between the benchmark scripts, each bench helper defined
once, and nothing set in the environment by importing rag."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from tests.conftest import ROOT


def _imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("eval."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("eval.")}
    return found


def test_eval_scripts_import_each_other_one_way():
    graph = {p.stem: _imports(p) - {p.stem} for p in (ROOT / "eval").glob("*.py")}

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in graph.get(start, ()))

    circles = sorted(m for m in graph if reaches(m, m))
    assert circles == [], circles
    assert graph["bench_common"] == set()


def test_each_bench_helper_is_defined_once():
    names = ("pct", "_pct", "vm_status", "_status", "busy_seconds", "_busy_seconds", "_busy", "Runner", "Meter")
    defined = {}
    for p in (ROOT / "eval").glob("*.py"):
        for node in ast.parse(p.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in names:
                defined.setdefault(node.name, []).append(p.name)
    assert defined == {n: ["bench_common.py"] for n in ("pct", "vm_status", "busy_seconds", "Runner", "Meter")}


def test_importing_rag_sets_no_environment_variable():
    code = ("import os; before = dict(os.environ); import rag.pipeline, rag.embed, rag.evaluation, rag.cli; "
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"
