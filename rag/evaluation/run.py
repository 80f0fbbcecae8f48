"""Running an evaluation: build or reuse the index, ask every question, score, write the reports.

``run_eval`` returns the report (a dict with exactly the top-level keys ``REPORT_KEYS``) and
writes it as JSON, markdown and charts (``rag.evaluation.report``); it prints nothing: the CLI
prints its tables (``rag.evaluation.tables``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from ..config import Settings
from ..errors import RagError
from ..pipeline import Pipeline
from ..types import BuildReport
from ..span_model import abstain_threshold
from .qa_sets import QAItem, load_qa, load_squad_set
from .report import report_paths, write_outputs
from .scoring import QuestionResult, compare_reports, compare_row, score_answer, score_results, set_row
from .squad import is_squad_json

REPORT_KEYS = ("n", "retrieval", "answer", "abstention", "latency_ms", "misses", "config")
#: (mode, fusion) rows of ``compare=True``; fusion only matters for hybrid.
COMPARE_RUNS: tuple[tuple[str, str], ...] = (("dense", "rrf"), ("bm25", "rrf"), ("hybrid", "rrf"), ("hybrid", "score"))

#: progress(stage, done, total): stages "index: read" (and the build's other stages), then one
#: per retrieval setting asked ("hybrid+score", "dense", ...), counting questions.
Progress = Callable[[str, int, int], None]


def _aliases_of(pipeline: Pipeline) -> Callable[[str], Iterable[str]] | None:
    """file -> identical-content files (deduplicated at ingest), from the loaded index."""
    try:
        data = pipeline.index()
    except Exception:  # an index that cannot be read fails loudly in ask(); aliases are optional
        return None
    table = {a.file: list(a.aliases) for a in data.articles.values() if a.aliases}
    return lambda f: table.get(f, ())


def ask_all(
    pipeline: Pipeline,
    items: Sequence[QAItem],
    *,
    k: int,
    mode: str | None = None,
    fusion: str | None = None,
    threshold: float | None = None,
    on_done: Callable[[], None] | None = None,
) -> list[QuestionResult]:
    """Ask every question (``top_k=k``), timing each ``ask()`` with ``time.perf_counter``.

    One untimed warm-up ask precedes the timed ones so that lazy model loading does not land
    in the first question's latency.
    """
    kwargs = {"top_k": k, "mode": mode, "threshold": threshold}
    if fusion is not None:
        kwargs["fusion"] = fusion
    if items:
        pipeline.ask(items[0].question, **kwargs)
    aliases = _aliases_of(pipeline)
    results = []
    for item in items:
        t0 = time.perf_counter()
        ans = pipeline.ask(item.question, **kwargs)
        ms = (time.perf_counter() - t0) * 1000
        results.append(score_answer(item, ans, ms, aliases))
        if on_done:
            on_done()
    return results


def _config(
    settings: Settings, qa_path: Path, *, k: int, split: str | None, warnings: list[str], n_loaded: int,
    build: BuildReport | None = None,
) -> dict:
    index = None
    if build is not None:
        index = {
            "version": build.version,
            "n_articles": build.n_articles,
            "n_chunks": build.n_chunks,
            "skipped": [f"{x.file}: {x.reason}" for x in build.skipped],
        }
    return {
        "mode": settings.retrieval_mode,
        "fusion": settings.fusion,
        "k": k,
        "top_k": settings.top_k,
        "threshold": abstain_threshold(settings),
        "reader_int8": settings.reader_int8,
        "model": settings.model_name,
        "backend": settings.embed_backend,
        "articles_dir": str(settings.articles_dir),
        "index_dir": str(settings.index_dir),
        "qa_file": str(qa_path),
        "split": split,
        "n_loaded": n_loaded,
        "warnings": warnings,
        "index": index,
    }


def _baseline(path: str | Path) -> dict:
    try:
        old = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(old, dict) or "misses" not in old:
            raise ValueError("no 'misses'")
    except (OSError, ValueError) as exc:
        raise RagError(f"--baseline {path}: not a report written by rag eval ({exc})") from None
    return old


def report_stem(qa_path: str | Path, split: str | None) -> str:
    """The default name of a set's report files: the Q&A file's stem (and a SQuAD set's split)."""
    qa_path = Path(qa_path)
    return qa_path.stem + (f"-{split}" if split and is_squad_json(qa_path) else "")


def _evaluate(
    qa_path: Path, settings: Settings, *, k: int, compare: bool, split: str | None, progress: Progress | None,
) -> tuple[dict, list[QuestionResult]]:
    """The report (without baseline changes) and the per-question results of the main setting."""
    if not qa_path.is_file():
        raise RagError(f"Q&A file not found: {qa_path}")
    if is_squad_json(qa_path):
        # A SQuAD set brings its own articles: they are indexed apart from the user's index.
        items, folder = load_squad_set(qa_path, split, settings.cache_dir)
        settings = settings.model_copy(update={"articles_dir": folder / "articles", "index_dir": folder / "index"})
        warnings: list[str] = []
    else:
        items, warnings = load_qa(qa_path, split)
    if not items:
        raise RagError(f"No questions to evaluate in {qa_path}" + (f" with split={split!r}" if split else ""))

    pipeline = Pipeline(settings.model_copy(update={"answer_from_corrections": False}))  # the reader, not the marks
    threshold = abstain_threshold(settings)
    main = (settings.retrieval_mode, settings.fusion if settings.retrieval_mode == "hybrid" else "rrf")
    runs = list(COMPARE_RUNS) if compare else []
    if main not in runs:
        runs.insert(0, main)

    on_build = (lambda stage, done, total: progress(f"index: {stage}", done, max(total, 1))) if progress else None
    build = pipeline.ensure_index(progress=on_build)
    results_by_run: dict[tuple[str, str], list[QuestionResult]] = {}
    for mode, fusion in runs:
        label = f"{mode}{'+' + fusion if mode == 'hybrid' else ''}"
        done = [0]

        def advance(label=label, done=done) -> None:
            done[0] += 1
            progress(label, done[0], len(items))

        if progress:
            progress(label, 0, len(items))
        results_by_run[(mode, fusion)] = ask_all(
            pipeline, items, k=k, mode=mode, fusion=fusion, threshold=threshold, on_done=advance if progress else None,
        )

    scored = score_results(results_by_run[main], k=k, threshold=threshold)
    if compare:
        scored["retrieval"]["compare"] = [
            compare_row(m, f, score_results(results_by_run[(m, f)], k=k, threshold=threshold)) for m, f in COMPARE_RUNS
        ]
    report = {
        **scored,
        "config": _config(settings, qa_path, k=k, split=split, warnings=warnings, n_loaded=len(items), build=build),
    }
    return {key: report[key] for key in REPORT_KEYS}, results_by_run[main]


def run_eval(
    qa_path: str | Path,
    settings: Settings,
    *,
    k: int = 10,
    json_out: str | Path | None = None,
    report_out: str | Path | None = None,
    compare: bool = False,
    split: str | None = None,
    baseline: str | Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Evaluate the pipeline configured by ``settings`` on the Q&A file ``qa_path``.

    Builds or reuses the index, asks every question (of ``split`` if given) with ``top_k=k``
    and the settings' mode, fusion and abstention threshold, and scores retrieval (from the
    passages returned), answers, abstention and latency. With ``compare=True`` it also runs
    dense, bm25, hybrid+rrf and hybrid+score over the same questions and adds the table to
    ``retrieval["compare"]`` and the markdown report. With ``baseline`` (an earlier report's
    JSON) it adds ``answer["changes"]``: fixed / broken per question and the change of each figure.

    Writes ``json_out`` (default ``eval/reports/<stem>.json``), ``report_out`` (default
    ``eval/reports/<stem>.md``) and the chart beside the report (``report_paths``). Returns the
    report; prints nothing.
    """
    qa_path = Path(qa_path)
    old_report = _baseline(baseline) if baseline is not None else None
    report, _ = _evaluate(qa_path, settings, k=k, compare=compare, split=split, progress=progress)
    if old_report is not None:
        report["answer"]["changes"] = compare_reports(report, old_report)
        report["answer"]["changes"]["baseline_file"] = str(baseline)
    json_out, report_out, chart_out = report_paths(report_stem(qa_path, split), json_out, report_out)
    write_outputs(report, json_out=json_out, report_out=report_out, chart_out=chart_out)
    return report


def run_eval_many(
    qa_paths: Sequence[str | Path],
    settings: Settings,
    *,
    k: int = 10,
    split: str | None = None,
    json_out: str | Path | None = None,
    report_out: str | Path | None = None,
    progress: Progress | None = None,
    on_set: Callable[[dict], None] | None = None,
) -> dict:
    """Evaluate several Q&A sets: each gets its own report (as :func:`run_eval` writes it, passed
    to ``on_set`` when done), and a combined report over all their questions (default
    ``eval/reports/combined.json`` / ``.md``) starts with one row of headline figures per set and
    the combined row. Returns the combined report."""
    sets, combined_results = [], []
    for path in qa_paths:
        path = Path(path)
        rep, results = _evaluate(path, settings, k=k, compare=False, split=split, progress=progress)
        write_outputs(rep, **dict(zip(("json_out", "report_out", "chart_out"), report_paths(report_stem(path, split)))))
        if on_set:
            on_set(rep)
        name = path.stem + (f"-{split}" if split else "")
        sets.append({"set": name, **set_row(rep)})
        # ids are unique within a set only: prefix them with the set's name
        combined_results.extend(replace(r, item=replace(r.item, id=f"{name}:{r.item.id}")) for r in results)
    threshold = abstain_threshold(settings)
    report = {**score_results(combined_results, k=k, threshold=threshold),
              "config": {**_config(settings, Path("+".join(str(p) for p in qa_paths)), k=k, split=split, warnings=[],
                                   n_loaded=len(combined_results)), "sets": sets}}
    report = {key: report[key] for key in REPORT_KEYS}
    report["config"]["sets"].append({"set": "combined", **set_row(report)})
    json_out, report_out, chart_out = report_paths("combined", json_out, report_out)
    write_outputs(report, json_out=json_out, report_out=report_out, chart_out=chart_out)
    return report


__all__ = ["COMPARE_RUNS", "REPORT_KEYS", "Progress", "ask_all", "report_stem", "run_eval", "run_eval_many"]
