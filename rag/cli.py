"""Command line: thin subcommands over ``Pipeline``. Library errors become one clear line here."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .config import Settings
from .errors import RagError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Local, offline, extractive Q&A over news articles.")
out = Console()
err = Console(stderr=True)


def _settings(articles: Optional[Path] = None, index: Optional[Path] = None, **extra) -> Settings:
    update = {k: v for k, v in {"articles_dir": articles, "index_dir": index, **extra}.items() if v is not None}
    try:
        return Settings(**update)
    except Exception as exc:  # pydantic ValidationError: name the setting
        raise RagError(f"Invalid setting: {exc}") from exc


@contextmanager
def _friendly_errors():
    try:
        yield
    except RagError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130)


@contextmanager
def build_progress(enabled: bool = True):
    """A rich progress bar fed by the pipeline's ``progress(stage, done, total)`` callback."""
    if not enabled:
        yield None
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = {"read": "reading articles", "embed": "embedding chunks", "write": "writing index"}.get(stage, stage)
                tasks[stage] = bar.add_task(label, total=total, rate="")
            task = bar.tasks[tasks[stage]]
            elapsed = task.elapsed or 0.0
            rate = f"{done / elapsed:,.0f} chunks/s" if stage == "embed" and elapsed > 0 else ""
            bar.update(tasks[stage], completed=done, total=total, rate=rate)

        yield update


def print_build_report(report, as_json: bool) -> None:
    if as_json:
        out.print_json(report.model_dump_json())
        return
    if report.unchanged:
        out.print(f"Index is up to date: {report.n_articles} articles, {report.n_chunks} chunks (nothing embedded).")
    else:
        t = report.seconds.get("total", 0.0)
        out.print(
            f"Built index version {report.version}: {report.n_articles} articles, {report.n_chunks} chunks, "
            f"{report.embedded_chunks} chunks embedded in {t:.1f} s."
        )
    if report.cluster:
        c = report.cluster
        out.print(
            f"  on Ray ({c['address']}: {c['nodes']} node(s), {c['cpus']:g} CPUs, {c['actors']} embedding actor(s)): "
            f"{c.get('files_hashed', 0)} files hashed, {c.get('files_read', 0)} read, "
            f"{c.get('articles_embedded', 0)} new articles ({c.get('chunks_embedded', 0)} chunks) embedded",
            highlight=False,
        )
    for label, items in (("added", report.added), ("updated", report.updated), ("removed", report.removed)):
        if items:
            out.print(f"  {label} ({len(items)}): {', '.join(items)}")
    if report.reused and not report.unchanged:
        out.print(f"  reused ({len(report.reused)} articles, not re-embedded)")
    for w in report.warnings:
        out.print(f"  [yellow]warning:[/] {w}", highlight=False)
    for s in report.skipped:
        out.print(f"  [red]skipped[/] {s.file}: {s.reason}", highlight=False)


@app.command()
def build(
    articles: Optional[Path] = typer.Option(None, "--articles", help="Articles folder (default: seeds/)."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index folder (default: index/)."),
    full: bool = typer.Option(False, "--full", help="Re-embed everything instead of only what changed."),
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for another build's lock."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
    engine: Optional[str] = typer.Option(
        None, "--engine", help="local (default; setting engine / RAG_ENGINE) or ray: read, chunk and embed on a Ray cluster."
    ),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Ray head HOST:PORT (or 'auto') for --engine ray; none starts a local Ray."
    ),
):
    """Build or update the index from an articles folder (only new and changed articles are embedded)."""
    from .pipeline import Pipeline

    with _friendly_errors():
        if engine is not None and engine not in ("local", "ray"):
            raise RagError(f"Invalid --engine '{engine}'. Choose from 'local', 'ray'.")
        settings = _settings(articles, index, engine=engine, ray_address=ray_address)
        with build_progress(not as_json) as progress:
            report = Pipeline(settings).build(full=full, progress=progress, wait=wait)
        print_build_report(report, as_json)


@app.command()
def add(
    files: list[Path] = typer.Argument(..., help="Article files to copy into the articles folder and index."),
    articles: Optional[Path] = typer.Option(None, "--articles"),
    index: Optional[Path] = typer.Option(None, "--index"),
    as_json: bool = typer.Option(False, "--json"),
):
    """Add article files (copied into the articles folder) and update the index."""
    from .pipeline import Pipeline

    with _friendly_errors():
        with build_progress(not as_json) as progress:
            report = Pipeline(_settings(articles, index)).add(files, progress=progress)
        print_build_report(report, as_json)
        if any(s.reason.startswith("refused") for s in report.skipped):
            raise typer.Exit(1)


@app.command()
def remove(
    names: list[str] = typer.Argument(..., help="Article file names (or ids) to remove."),
    articles: Optional[Path] = typer.Option(None, "--articles"),
    index: Optional[Path] = typer.Option(None, "--index"),
    as_json: bool = typer.Option(False, "--json"),
):
    """Remove articles from the folder and the index."""
    from .pipeline import Pipeline

    with _friendly_errors():
        report = Pipeline(_settings(articles, index)).remove(names)
        print_build_report(report, as_json)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question."),
    index: Optional[Path] = typer.Option(None, "--index"),
    top_k: Optional[int] = typer.Option(None, "--k", help="Passages to retrieve."),
    mode: Optional[str] = typer.Option(None, "--mode", help="hybrid, dense or bm25."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
):
    """Ask a question; the answer is words quoted from the articles, with their source."""
    from .pipeline import Pipeline

    with _friendly_errors():
        settings = _settings(None, index)
        if mode is not None and mode not in ("hybrid", "dense", "bm25"):
            raise RagError(f"Invalid --mode '{mode}'. Choose from 'hybrid', 'dense', 'bm25'.")
        answer = Pipeline(settings).ask(question, top_k=top_k, mode=mode)
        if as_json:
            print(json.dumps(answer_json(answer), ensure_ascii=False))
            return
        for note in answer.notes:
            out.print(f"[yellow]{note}[/]", highlight=False)
        if answer.abstained:
            out.print(f"The articles do not answer this (confidence {answer.confidence:.2f}).", highlight=False)
            if answer.passages:
                out.print("Closest passage:", highlight=False)
                h = answer.passages[0]
                out.print(f"  [{h.file}] {h.chunk.text[:300]}…", highlight=False, markup=False)
            return
        out.print(f"[bold]{answer.answer}[/]  (confidence {answer.confidence:.2f})", highlight=False)
        for i, c in enumerate(answer.citations, 1):
            out.print(f"  [{i}] {c.article} [{c.start}:{c.end}]  “{c.sentence}”", highlight=False, markup=False)


def answer_json(answer) -> dict:
    return {
        "question": answer.question,
        "query": answer.query,
        "answer": answer.answer,
        "abstained": answer.abstained,
        "confidence": round(answer.confidence, 4),
        "n_sources": answer.n_sources,
        "citations": [
            {"article": c.article, "title": c.title, "start": c.start, "end": c.end, "quote": c.quote, "sentence": c.sentence}
            for c in answer.citations
        ],
        "passages": [
            {
                "rank": h.rank,
                "article": h.file,
                "start": h.chunk.start,
                "end": h.chunk.end,
                "score": h.score,
                "dense_score": h.dense_score,
                "bm25_score": h.bm25_score,
                "text": h.chunk.text,
                "duplicates": [d.file for d in h.duplicates],
            }
            for h in answer.passages
        ],
        "notes": answer.notes,
        "timings_ms": {k: round(v, 2) for k, v in answer.timings_ms.items()},
    }


@app.command()
def status(index: Optional[Path] = typer.Option(None, "--index"), as_json: bool = typer.Option(False, "--json")):
    """Show what is indexed."""
    from .pipeline import Pipeline

    with _friendly_errors():
        info = Pipeline(_settings(None, index)).store.load(_settings(None, index).model_name).info()
        if as_json:
            out.print_json(info.model_dump_json())
            return
        table = Table(show_header=False)
        for k, v in info.model_dump().items():
            table.add_row(k, str(v))
        out.print(table)


@app.command("eval")
def eval_cmd(
    qa: list[Path] = typer.Option(
        [Path("eval/seeds_qa.jsonl")], "--qa",
        help="Q&A file: our JSON Lines, or SQuAD JSON (v1.1 / v2.0 layout). Repeat it for several sets in one "
        "report (each set also gets its own).",
    ),
    articles: Optional[Path] = typer.Option(None, "--articles"),
    index: Optional[Path] = typer.Option(None, "--index"),
    k: int = typer.Option(10, "--k", help="Passages retrieved per question."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the JSON report here."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the markdown report here."),
    compare: bool = typer.Option(False, "--compare", help="Compare retrieval settings side by side."),
    baseline: Optional[Path] = typer.Option(
        None, "--baseline", help="An earlier report's JSON: adds fixed / broken per question and the change of each figure."
    ),
    split: Optional[str] = typer.Option(None, "--split", help="Only questions of this split (JSON Lines: dev, heldout; SQuAD JSON: the articles of train, dev or test in rag/squad_split.json)."),
):
    """Run an eval set of Q&A pairs and report retrieval, answer, abstention and latency metrics."""
    with _friendly_errors():
        from .evaluate import run_eval, run_eval_many

        if len(qa) > 1:
            if baseline is not None or compare:
                raise RagError("--baseline and --compare take one --qa set at a time.")
            run_eval_many(qa, _settings(articles, index), k=k, split=split, json_out=json_out, report_out=report)
            return
        run_eval(qa[0], _settings(articles, index), k=k, json_out=json_out, report_out=report, compare=compare, split=split,
                 baseline=baseline)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
