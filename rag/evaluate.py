"""Evaluation harness: load a Q&A file, ask every question, score, and write reports.

``run_eval`` is the entry point (the CLI's ``rag eval`` calls it). It writes

* ``eval/reports/<qa-stem>.json``: the scores, with exactly the top-level keys
  ``n retrieval answer abstention latency_ms misses config``;
* ``eval/reports/<qa-stem>.md``: headline tables, breakdown by question type, the coverage
  chart, every miss (and the mode comparison with ``compare=True``);
* ``eval/reports/<qa-stem>-coverage.png``: coverage vs accuracy over abstention thresholds,
  and the reliability plot of the confidence.

The metric definitions live in :mod:`rag.metrics`; see ``eval/README.md``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import metrics as M
from .span_model import abstain_threshold

REPORT_KEYS = ("n", "retrieval", "answer", "abstention", "latency_ms", "misses", "config")
DEFAULT_REPORT_DIR = Path("eval") / "reports"
RETRIEVAL_KS = (1, 3, 5, 10)
NDCG_K = 10
#: (mode, fusion) rows of ``compare=True``; fusion only matters for hybrid.
COMPARE_RUNS: tuple[tuple[str, str], ...] = (("dense", "rrf"), ("bm25", "rrf"), ("hybrid", "rrf"), ("hybrid", "score"))
COMPARE_COLUMNS = ("hit@1", "hit@5", "mrr", "ndcg@10", "em", "f1", "contains", "abstention_f1", "p50_ms")


# --------------------------------------------------------------------------- Q&A file


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]
    sources: tuple[str, ...]
    type: str
    split: str | None
    line: int

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def _str_list(rec: dict, key: str) -> tuple[str, ...]:
    v = rec.get(key)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"'{key}' must be a list of strings")
    return tuple(v)


def parse_qa_lines(lines: Iterable[str], name: str = "<qa>") -> tuple[list[QAItem], list[str]]:
    """Parse JSON Lines Q&A records; return (items, warnings).

    Each line: ``{"id", "question", "answers": [...], "sources": [...]}`` plus optional ``type``
    and ``split`` (other fields are ignored). Empty ``answers`` = unanswerable. A malformed line
    (bad JSON, not an object, missing/ill-typed field, duplicate id, an answerable question
    without sources) is skipped with a warning naming its line number; the rest still load.
    Blank lines are ignored.
    """
    items: list[QAItem] = []
    warnings: list[str] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            warnings.append(f"{name} line {lineno}: invalid JSON ({exc.msg}); skipped")
            continue
        try:
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            qid, question = rec.get("id"), rec.get("question")
            if not isinstance(qid, str) or not qid.strip():
                raise ValueError("'id' must be a non-empty string")
            if not isinstance(question, str) or not question.strip():
                raise ValueError("'question' must be a non-empty string")
            answers = tuple(a for a in _str_list(rec, "answers") if a.strip())
            sources = _str_list(rec, "sources")
            if answers and not sources:
                raise ValueError("answerable question with no 'sources'")
            qtype = rec.get("type")
            split = rec.get("split")
            if qtype is not None and not isinstance(qtype, str):
                raise ValueError("'type' must be a string")
            if split is not None and not isinstance(split, str):
                raise ValueError("'split' must be a string")
            if qid in seen:
                raise ValueError(f"duplicate id {qid!r} (first on line {seen[qid]})")
        except ValueError as exc:
            warnings.append(f"{name} line {lineno}: {exc}; skipped")
            continue
        seen[qid] = lineno
        if not answers and sources:
            warnings.append(f"{name} line {lineno} ({qid}): unanswerable but lists sources; sources ignored")
            sources = ()
        items.append(
            QAItem(
                id=qid,
                question=question,
                answers=answers,
                sources=tuple(dict.fromkeys(sources)),
                type=qtype or ("unanswerable" if not answers else "other"),
                split=split,
                line=lineno,
            )
        )
    return items, warnings


def load_qa(path: str | Path, split: str | None = None) -> tuple[list[QAItem], list[str]]:
    """Read a Q&A JSON Lines file (see :func:`parse_qa_lines`), keeping only ``split`` if given."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        items, warnings = parse_qa_lines(fh, path.name)
    if split is not None:
        items = [q for q in items if q.split == split]
    return items, warnings


def load_squad_set(path: Path, split: str | None, cache_dir: Path) -> tuple[list[QAItem], Path]:
    """The questions of a SQuAD JSON file (of one split of ``rag/squad_split.json`` when
    ``split`` is given) and a folder of their articles to index, under ``cache_dir/squad/``."""
    import hashlib

    from .squad import load_squad, question_word, split_articles, write_articles

    articles = split_articles(load_squad(path), split)
    key = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    folder = Path(cache_dir) / "squad" / f"{path.stem}-{split or 'all'}-{key}"
    names = write_articles(articles, folder / "articles")
    items = []
    for a in articles:
        for p in a.paragraphs:
            for q in p.questions:
                answers = () if q.impossible else tuple(t for t, _ in q.answers)
                items.append(QAItem(
                    id=q.id or f"q{len(items)}", question=q.question, answers=answers,
                    sources=(names[a.title],) if answers else (),
                    type="unanswerable" if not answers else question_word(q.question),
                    split=split, line=len(items) + 1,
                ))
    return items, folder


# --------------------------------------------------------------------------- per-question results


@dataclass
class QuestionResult:
    item: QAItem
    answer: str | None
    candidate: str | None
    abstained: bool
    confidence: float
    relevance: list[frozenset[str]]
    retrieved_files: list[str]
    latency_ms: float
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def first_relevant_rank(self) -> int | None:
        return next((i for i, r in enumerate(self.relevance, start=1) if r), None)

    @property
    def answer_correct(self) -> bool:
        return self.item.answerable and not self.abstained and M.contains_answer(self.answer, self.item.answers)

    @property
    def candidate_correct(self) -> bool:
        return self.item.answerable and M.contains_answer(self.candidate, self.item.answers)


def score_answer(
    item: QAItem,
    answer: Any,
    latency_ms: float,
    aliases: Callable[[str], Iterable[str]] | None = None,
) -> QuestionResult:
    """Turn one ``rag.types.Answer`` (or any object with the same attributes) into a result.

    ``aliases(file)`` may return other file names with identical content, so a gold source
    that was deduplicated at ingest still counts as retrieved.
    """
    passages = []
    for hit in answer.passages:
        files = [hit.file, *(d.file for d in getattr(hit, "duplicates", []) or [])]
        if aliases is not None:
            files += [a for f in list(files) for a in aliases(f)]
        passages.append((hit.chunk.text, files))
    abstained = bool(answer.abstained)
    given = None if abstained else answer.answer
    candidate = getattr(answer, "candidate", None)
    if candidate is None and not abstained:
        candidate = answer.answer
    return QuestionResult(
        item=item,
        answer=given,
        candidate=candidate,
        abstained=abstained,
        confidence=float(answer.confidence),
        relevance=M.passage_relevance(passages, item.sources, item.answers),
        retrieved_files=[h.file for h in answer.passages],
        latency_ms=latency_ms,
        timings_ms=dict(getattr(answer, "timings_ms", {}) or {}),
    )


# --------------------------------------------------------------------------- scoring


def _by(results: Sequence[QuestionResult], key: Callable[[QuestionResult], str | None]) -> dict[str, list[QuestionResult]]:
    groups: dict[str, list[QuestionResult]] = defaultdict(list)
    for r in results:
        groups[str(key(r))].append(r)
    return dict(sorted(groups.items()))


def _retrieval(results: Sequence[QuestionResult]) -> dict:
    return M.retrieval_metrics(
        [r.relevance for r in results], [len(r.item.sources) if r.item.answerable else 0 for r in results],
        ks=RETRIEVAL_KS, ndcg_k=NDCG_K,
    )


def _answers(results: Sequence[QuestionResult]) -> dict:
    return M.answer_metrics([r.answer for r in results], [r.item.answers for r in results])


def _abstention(results: Sequence[QuestionResult]) -> dict:
    return M.abstention_metrics([r.abstained for r in results], [not r.item.answerable for r in results])


def score_results(results: Sequence[QuestionResult], *, k: int, threshold: float) -> dict:
    """Score per-question results into the report blocks (everything but ``config``).

    ``threshold`` is the abstention threshold the answers were produced with (marked on the
    coverage curve; the curve itself is recomputed from candidates and confidences).
    """
    answerable = [r for r in results if r.item.answerable]
    unanswerable = [r for r in results if not r.item.answerable]

    retrieval = {"k": k, **_retrieval(results)}
    retrieval["by_type"] = {t: _retrieval(g) for t, g in _by(answerable, lambda r: r.item.type).items()}

    curve = M.coverage_curve(
        [r.confidence for r in results],
        [r.candidate_correct for r in results],
        [not r.item.answerable for r in results],
        has_candidate=[r.candidate is not None for r in results],
    )
    answer = {**_answers(results)}
    answer["coverage"] = sum(not r.abstained for r in results) / len(results) if results else 0.0
    answer["threshold"] = threshold
    answer["by_type"] = {t: _answers(g) for t, g in _by(answerable, lambda r: r.item.type).items()}
    if len({r.item.split for r in results}) > 1:
        answer["by_split"] = {s: _answers(g) for s, g in _by(results, lambda r: r.item.split).items()}
    answer["recommended_threshold"] = M.recommend_threshold(curve)
    answer["coverage_curve"] = curve
    answer["squad2"] = M.squad2_metrics([r.answer for r in results], [r.item.answers for r in results])
    answer["reliability"] = M.reliability([r.confidence for r in results], [r.candidate_correct for r in results])

    abstention = {"n": len(unanswerable), "threshold": threshold, **_abstention(results)}
    abstention["abstained"] = sum(r.abstained for r in results)
    if len({r.item.split for r in results}) > 1:
        abstention["by_split"] = {s: _abstention(g) for s, g in _by(results, lambda r: r.item.split).items()}
    abstention["by_type"] = {
        t: {"n": len(g), "abstained": sum(r.abstained for r in g), "rate": sum(r.abstained for r in g) / len(g)}
        for t, g in _by(results, lambda r: r.item.type).items()
    }

    latency = M.latency_stats([r.latency_ms for r in results])
    stages: dict[str, list[float]] = defaultdict(list)
    for r in results:
        for name, ms in r.timings_ms.items():
            stages[name].append(float(ms))
    if stages:
        latency["stages_p50"] = {name: M.percentile(v, 50) for name, v in stages.items()}

    answer["questions"] = [
        {"id": r.item.id, "type": r.item.type, "split": r.item.split, "question": r.item.question,
         "answer": r.answer, "candidate": r.candidate, "abstained": r.abstained, "confidence": r.confidence}
        for r in results
    ]
    misses = []
    for r in results:
        label = M.classify_miss(
            answerable=r.item.answerable,
            retrieved_relevant=r.first_relevant_rank is not None,
            abstained=r.abstained,
            answer_correct=r.answer_correct,
            candidate_correct=r.candidate_correct,
        )
        if label is None:
            continue
        misses.append(
            {
                "id": r.item.id,
                "label": label,
                "type": r.item.type,
                "split": r.item.split,
                "question": r.item.question,
                "gold": list(r.item.answers),
                "sources": list(r.item.sources),
                "answer": r.answer,
                "candidate": r.candidate,
                "abstained": r.abstained,
                "confidence": r.confidence,
                "first_relevant_rank": r.first_relevant_rank,
                "retrieved": r.retrieved_files[:3],
            }
        )
    return {
        "n": len(results),
        "retrieval": retrieval,
        "answer": answer,
        "abstention": abstention,
        "latency_ms": latency,
        "misses": misses,
    }


def compare_row(mode: str, fusion: str, scored: dict) -> dict:
    """One row of the mode comparison table from a :func:`score_results` dict."""
    return {
        "mode": mode,
        "fusion": fusion if mode == "hybrid" else None,
        "hit@1": scored["retrieval"]["hit@1"],
        "hit@5": scored["retrieval"]["hit@5"],
        "mrr": scored["retrieval"]["mrr"],
        "ndcg@10": scored["retrieval"][f"ndcg@{NDCG_K}"],
        "em": scored["answer"]["em"],
        "f1": scored["answer"]["f1"],
        "contains": scored["answer"]["contains"],
        "abstention_f1": scored["abstention"]["f1"],
        "p50_ms": scored["latency_ms"]["p50"],
    }


# --------------------------------------------------------------------------- running


def _aliases_of(pipeline: Any) -> Callable[[str], Iterable[str]] | None:
    """file -> identical-content files (deduplicated at ingest), from the loaded index."""
    try:
        data = pipeline.index() if callable(getattr(pipeline, "index", None)) else None
    except Exception:  # an index that cannot be read fails loudly in ask(); aliases are optional
        return None
    articles = getattr(data, "articles", None)
    if not isinstance(articles, dict):
        return None
    table = {a.file: list(a.aliases) for a in articles.values() if getattr(a, "aliases", None)}
    return lambda f: table.get(f, ())


def ask_all(
    pipeline: Any,
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
    settings: Any, qa_path: Path, *, k: int, split: str | None, warnings: list[str], n_loaded: int, build: Any = None
) -> dict:
    index = None
    if build is not None:
        index = {
            "version": getattr(build, "version", None),
            "n_articles": getattr(build, "n_articles", None),
            "n_chunks": getattr(build, "n_chunks", None),
            "skipped": [f"{x.file}: {x.reason}" for x in getattr(build, "skipped", [])],
        }
    return {
        "mode": settings.retrieval_mode,
        "fusion": settings.fusion,
        "k": k,
        "top_k": settings.top_k,
        "threshold": abstain_threshold(settings),
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


def run_eval(
    qa_path: str | Path,
    settings: Any,
    *,
    k: int = 10,
    json_out: str | Path | None = None,
    report_out: str | Path | None = None,
    compare: bool = False,
    split: str | None = None,
    progress: bool = True,
    console: Any = None,
    baseline: str | Path | None = None,
    results_sink: list | None = None,
    on_question: Callable[[int, int], None] | None = None,
) -> dict:
    """Evaluate the pipeline configured by ``settings`` on the Q&A file ``qa_path``.

    Builds or reuses the index, asks every question (of ``split`` if given) with ``top_k=k``
    and the settings' mode, fusion and abstention threshold, and scores retrieval (from the
    passages returned), answers, abstention and latency. With ``compare=True`` it also runs
    dense, bm25, hybrid+rrf and hybrid+score over the same questions and adds the table to
    ``retrieval["compare"]`` and the markdown report.

    Writes ``json_out`` (default ``eval/reports/<qa-stem>.json``), ``report_out`` (default
    ``eval/reports/<qa-stem>.md``) and the chart beside the report
    (``<report-stem>-coverage.png``); prints a summary table. Returns the JSON dict.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .errors import RagError
    from .pipeline import Pipeline

    from .squad import is_squad_json

    console = console or Console()
    qa_path = Path(qa_path)
    if not qa_path.is_file():
        raise RagError(f"Q&A file not found: {qa_path}")
    old_report = None
    if baseline is not None:
        try:
            old_report = json.loads(Path(baseline).read_text(encoding="utf-8"))
            if not isinstance(old_report, dict) or "misses" not in old_report:
                raise ValueError("no 'misses'")
        except (OSError, ValueError) as exc:
            raise RagError(f"--baseline {baseline}: not a report written by rag eval ({exc})") from None
    if is_squad_json(qa_path):
        # A SQuAD set brings its own articles: they are indexed apart from the user's index.
        items, folder = load_squad_set(qa_path, split, settings.cache_dir)
        settings = settings.model_copy(update={"articles_dir": folder / "articles", "index_dir": folder / "index"})
        warnings: list[str] = []
        console.print(f"SQuAD set: {len(items)} questions, articles and index in {folder}", highlight=False)
    else:
        items, warnings = load_qa(qa_path, split)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}", markup=True, highlight=False)
    if not items:
        raise RagError(f"No questions to evaluate in {qa_path}" + (f" with split={split!r}" if split else ""))

    pipeline = Pipeline(settings)
    threshold = abstain_threshold(settings)
    main = (settings.retrieval_mode, settings.fusion if settings.retrieval_mode == "hybrid" else "rrf")
    runs = list(COMPARE_RUNS) if compare else []
    if main not in runs:
        runs.insert(0, main)

    results_by_run: dict[tuple[str, str], list[QuestionResult]] = {}
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not progress, transient=False,
    ) as bar:
        build_tasks: dict[str, Any] = {}

        def on_build(stage: str, done: int, total: int) -> None:
            if stage not in build_tasks:
                build_tasks[stage] = bar.add_task(f"index: {stage}", total=max(total, 1))
            bar.update(build_tasks[stage], completed=done, total=max(total, 1))

        build = pipeline.ensure_index(progress=on_build)
        for mode, fusion in runs:
            task = bar.add_task(f"{mode}{'+' + fusion if mode == 'hybrid' else ''}", total=len(items))
            done = [0]

            def advance(t=task) -> None:
                bar.advance(t)
                done[0] += 1
                if on_question:
                    on_question(done[0], len(items))

            results_by_run[(mode, fusion)] = ask_all(
                pipeline, items, k=k, mode=mode, fusion=fusion, threshold=threshold, on_done=advance,
            )

    scored = score_results(results_by_run[main], k=k, threshold=threshold)
    if results_sink is not None:
        results_sink.extend(results_by_run[main])
    if compare:
        scored["retrieval"]["compare"] = [
            compare_row(m, f, score_results(results_by_run[(m, f)], k=k, threshold=threshold)) for m, f in COMPARE_RUNS
        ]
    report = {
        **scored,
        "config": _config(settings, qa_path, k=k, split=split, warnings=warnings, n_loaded=len(items), build=build),
    }
    report = {key: report[key] for key in REPORT_KEYS}
    if old_report is not None:
        report["answer"]["changes"] = compare_reports(report, old_report)
        report["answer"]["changes"]["baseline_file"] = str(baseline)

    stem = qa_path.stem + (f"-{split}" if split and is_squad_json(qa_path) else "")
    json_out = Path(json_out) if json_out else DEFAULT_REPORT_DIR / f"{stem}.json"
    report_out = Path(report_out) if report_out else DEFAULT_REPORT_DIR / f"{stem}.md"
    chart_out = report_out.with_name(f"{report_out.stem}-coverage.png")
    write_outputs(report, json_out=json_out, report_out=report_out, chart_out=chart_out)

    if compare:
        console.print(compare_table(report["retrieval"]["compare"]))
    console.print(summary_table(report))
    if old_report is not None:
        c = report["answer"]["changes"]["counts"]
        console.print(f"against {baseline}: " + ", ".join(f"{k} {v}" for k, v in c.items()), highlight=False)
    console.print(f"Reports: {json_out}, {report_out}, {chart_out}", highlight=False)
    return report


def run_eval_many(
    qa_paths: Sequence[str | Path],
    settings: Any,
    *,
    k: int = 10,
    split: str | None = None,
    json_out: str | Path | None = None,
    report_out: str | Path | None = None,
    progress: bool = True,
    console: Any = None,
) -> dict:
    """Evaluate several Q&A sets: each gets its own report (as :func:`run_eval` writes it), and
    a combined report over all their questions (default ``eval/reports/combined.json`` / ``.md``)
    starts with one row of headline figures per set and the combined row."""
    from dataclasses import replace

    from rich.console import Console

    console = console or Console()
    sets, combined_results = [], []
    for path in qa_paths:
        path = Path(path)
        sink: list[QuestionResult] = []
        rep = run_eval(path, settings, k=k, split=split, progress=progress, console=console, results_sink=sink)
        name = path.stem + (f"-{split}" if split else "")
        sets.append({"set": name, **_set_row(rep)})
        # ids are unique within a set only: prefix them with the set's name
        for r in sink:
            r.item = replace(r.item, id=f"{name}:{r.item.id}")
        combined_results.extend(sink)
    threshold = abstain_threshold(settings)
    report = {**score_results(combined_results, k=k, threshold=threshold),
              "config": {**_config(settings, Path("+".join(str(p) for p in qa_paths)), k=k, split=split, warnings=[],
                                   n_loaded=len(combined_results)), "sets": sets}}
    report = {key: report[key] for key in REPORT_KEYS}
    report["config"]["sets"].append({"set": "combined", **_set_row(report)})
    json_out = Path(json_out) if json_out else DEFAULT_REPORT_DIR / "combined.json"
    report_out = Path(report_out) if report_out else DEFAULT_REPORT_DIR / "combined.md"
    write_outputs(report, json_out=json_out, report_out=report_out,
                  chart_out=report_out.with_name(f"{report_out.stem}-coverage.png"))
    console.print(sets_table(report["config"]["sets"]))
    console.print(f"Combined report: {json_out}, {report_out}", highlight=False)
    return report


SET_COLUMNS = ("n", "hit@5", "em", "f1", "contains", "abstention_f1", "squad2_f1", "p50_ms")


def _set_row(rep: dict) -> dict:
    return {"n": rep["n"], "hit@5": rep["retrieval"]["hit@5"], "em": rep["answer"]["em"], "f1": rep["answer"]["f1"],
            "contains": rep["answer"]["contains"], "abstention_f1": rep["abstention"]["f1"],
            "squad2_f1": rep["answer"]["squad2"]["f1"], "p50_ms": rep["latency_ms"]["p50"]}


def sets_table(rows: Sequence[dict]):
    from rich import box
    from rich.table import Table

    t = Table(title="eval sets", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0, 0, 1))
    t.add_column("set", no_wrap=True)
    for c in SET_COLUMNS:
        t.add_column(c, justify="right", no_wrap=True)
    for r in rows:
        t.add_row(r["set"], *(str(r[c]) if c == "n" else _f(r[c], 1 if c == "p50_ms" else 3) for c in SET_COLUMNS))
    return t


# --------------------------------------------------------------------------- against a baseline

#: Headline figures compared with a baseline report: (block, key, label).
HEADLINES = (
    ("retrieval", "hit@1", "hit@1"), ("retrieval", "hit@5", "hit@5"), ("retrieval", "mrr", "MRR"),
    ("answer", "em", "EM"), ("answer", "f1", "F1"), ("answer", "contains", "contains"),
    ("answer", "coverage", "coverage"), ("abstention", "f1", "abstention F1"),
    ("squad2", "f1", "SQuAD2 F1"), ("latency_ms", "p50", "latency p50 ms"),
)
CHANGE_KINDS = ("fixed", "broken", "still wrong", "still right")


def _headline(report: dict, block: str, key: str) -> float | None:
    if block == "squad2":
        return (report.get("answer", {}).get("squad2") or {}).get(key)
    return report.get(block, {}).get(key)


def compare_reports(new: dict, old: dict) -> dict:
    """Per question: fixed / broken / still wrong / still right against ``old``, and the change
    of every headline figure.

    A question is *right* when it is not among the report's misses (answered correctly, or
    abstained on when unanswerable), so a baseline written before reports listed every question
    (``answer.questions``) still compares; its answers to the questions it got right are then
    unknown (``None``). Questions are matched by id; ones in only one report are counted apart.
    """
    def table(rep: dict) -> dict[str, dict]:
        rows = {q["id"]: {**q, "right": True} for q in rep.get("answer", {}).get("questions", [])}
        for m in rep.get("misses", []):
            rows[m["id"]] = {**rows.get(m["id"], {}), **{k: m.get(k) for k in ("id", "type", "split", "question", "answer",
                                                                            "candidate", "abstained", "confidence")},
                             "gold": m.get("gold"), "right": False}
        return rows

    a, b = table(new), table(old)
    old_lists_all = bool(old.get("answer", {}).get("questions"))
    rows, only_now = [], []
    for qid, q in a.items():
        if qid in b:
            o = b[qid]
        elif not old_lists_all:  # an old-style report lists only its misses: the rest were right
            o = {"right": True, "answer": None, "abstained": False}
        else:
            only_now.append(qid)
            continue
        kind = {(False, True): "fixed", (True, False): "broken", (False, False): "still wrong",
                (True, True): "still right"}[(o["right"], q["right"])]
        rows.append({"id": qid, "kind": kind, "type": q.get("type"), "split": q.get("split"),
                     "question": q.get("question"), "gold": q.get("gold") or o.get("gold"),
                     "old": o.get("answer"), "old_abstained": bool(o.get("abstained")),
                     "new": q.get("answer"), "new_abstained": bool(q.get("abstained"))})
    counts = {k: sum(r["kind"] == k for r in rows) for k in CHANGE_KINDS}
    by_type: dict[str, dict[str, int]] = defaultdict(lambda: {k: 0 for k in CHANGE_KINDS})
    for r in rows:
        by_type[str(r["type"])][r["kind"]] += 1
    figures = []
    for block, key, label in HEADLINES:
        x, y = _headline(old, block, key), _headline(new, block, key)
        figures.append({"figure": label, "baseline": x, "now": y,
                        "change": (y - x) if isinstance(x, (int, float)) and isinstance(y, (int, float)) else None})
    return {"baseline_qa_file": old.get("config", {}).get("qa_file"), "n_compared": len(rows),
            "only_now": only_now, "only_baseline": sorted(set(b) - set(a)),
            "counts": counts, "by_type": dict(sorted(by_type.items())), "figures": figures,
            "questions": [r for r in rows if r["kind"] in ("fixed", "broken")]}


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


# --------------------------------------------------------------------------- outputs


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


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _md_cell(x: Any) -> str:
    if isinstance(x, (list, tuple)):
        x = " / ".join(str(v) for v in x)
    s = _f(x) if not isinstance(x, str) else x
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
            f" coverage {rec['coverage']:.3f}, accuracy {_f(rec['accuracy'])}, abstention F1 {rec['abstention_f1']:.3f}).",
            "",
        ]

    out += ["## Latency (ms)", "", _md_table(["p50", "p95", "mean", "max", "n"],
                                            [[_f(lat["p50"], 1), _f(lat["p95"], 1), _f(lat["mean"], 1), _f(lat["max"], 1), lat["n"]]]), ""]
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
                          [[c["mode"], c["fusion"] or "–", *(_f(c[k], 1) if k == "p50_ms" else c[k] for k in COMPARE_COLUMNS)]
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
        "hit@" + "/".join(k[4:] for k in hits) + " " + "/".join(_f(ret[k]) for k in hits)
        + "  " + "  ".join(f"{k} {_f(ret[k])}" for k in rkeys if k not in hits),
    )
    t.add_row(f"answer ({ans['n']})", "  ".join(f"{k} {_f(ans[k])}" for k in ("em", "f1", "contains"))
              + f"  coverage {_f(ans['coverage'])}")
    sq = ans.get("squad2")
    if sq:
        t.add_row("squad2", f"exact {_f(sq['exact'])}  f1 {_f(sq['f1'])}  HasAns f1 {_f(sq['HasAns_f1'])}"
                  f"  NoAns {_f(sq['NoAns_f1'])}")
    t.add_row(f"abstention ({ab['n']})", f"P {_f(ab['precision'])}  R {_f(ab['recall'])}  F1 {_f(ab['f1'])}"
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
            s = _f(r[c], 1) if c == "p50_ms" else _f(r[c], 2)
            cells.append(f"[bold]{s}[/]" if r[c] == best[c] else s)
        t.add_row(name, *cells)
    return t
