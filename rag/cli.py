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
                label = {"read": "reading articles", "embed": "embedding chunks", "write": "writing index",
                         "fetch": "fetching feed items"}.get(stage, stage)
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
        e = report.embedding
        if e and report.embedded_chunks:
            embed_s = report.seconds.get("embed") or 0.0
            rate = f"{report.embedded_chunks / embed_s:,.0f} chunks/s, " if embed_s > 0 else ""
            out.print(f"  embedded by {e.get('backend')} {e.get('precision')} on {e.get('threads')} threads "
                      f"({rate}{e.get('cpus')} CPUs, bfloat16 {'yes' if e.get('cpu_bf16') else 'no'}, "
                      f"load average {e.get('load_average')} at start)", highlight=False)
    if report.cluster:
        c = report.cluster
        out.print(
            f"  on Ray ({c['address']}: {c['nodes']} node(s), {c['cpus']:g} CPUs, {c['actors']} embedding actor(s)): "
            f"{c.get('files_hashed', 0)} files hashed, {c.get('files_read', 0)} read, "
            f"{c.get('articles_embedded', 0)} new articles ({c.get('chunks_embedded', 0)} chunks) embedded",
            highlight=False,
        )
    for label, items in (("added", report.added), ("replaced", report.replaced), ("updated", report.updated),
                         ("removed", report.removed)):
        if items:
            more = f", … and {len(items) - 20:,} more" if len(items) > 20 else ""  # a bulk export adds thousands
            out.print(f"  {label} ({len(items)}): {', '.join(items[:20])}{more}", highlight=False)
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
    files: Optional[list[Path]] = typer.Argument(None, help="Article files to copy into the articles folder and index."),
    feed: Optional[str] = typer.Option(None, "--feed", help="An RSS/Atom feed (URL or file): fetch its new items' pages and index them."),
    articles: Optional[Path] = typer.Option(None, "--articles"),
    index: Optional[Path] = typer.Option(None, "--index"),
    as_json: bool = typer.Option(False, "--json"),
    replace: bool = typer.Option(False, "--replace", help="Replace articles of the same name in the articles folder."),
):
    """Add article files (copied into the articles folder), or a feed's new items, and update the index.
    A file whose name is already taken by another article is refused unless --replace is given."""
    from .pipeline import Pipeline

    with _friendly_errors():
        if not files and not feed:
            raise RagError("Give article files to add, or --feed URL_OR_FILE.")
        if feed:
            with build_progress(not as_json) as progress:
                report = Pipeline(_settings(articles, index)).add_feed(feed, progress=progress)
            print_feed_report(report, as_json)
            if not files:
                return
        with build_progress(not as_json) as progress:
            report = Pipeline(_settings(articles, index)).add(files, progress=progress, replace=replace)
        print_build_report(report, as_json)
        if any(s.reason.startswith("refused") for s in report.skipped):
            raise typer.Exit(1)


def print_feed_report(report, as_json: bool) -> None:
    if as_json:
        print(report.model_dump_json())
        return
    out.print(f"Feed {report.title or report.feed}: {len(report.added)} added, {len(report.skipped)} skipped, "
              f"{len(report.unchanged)} unchanged ({report.seconds:.1f} s).", highlight=False)
    for e in report.added:
        out.print(f"  [green]added[/] {e.file}  ({e.url})", highlight=False)
    for e in report.skipped:
        out.print(f"  [red]skipped[/] {e.url or e.title}: {e.reason}", highlight=False)
    for e in report.unchanged:
        out.print(f"  unchanged {e.url}  ({e.reason}: {e.file})", highlight=False)
    if report.build is not None:
        print_build_report(report.build, False)


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
    since: Optional[str] = typer.Option(None, "--since", help="Only articles published on or after this date (YYYY-MM-DD)."),
    until: Optional[str] = typer.Option(None, "--until", help="Only articles published on or before this date (YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
):
    """Ask a question; the answer is words quoted from the articles, with their source."""
    from .pipeline import Pipeline

    with _friendly_errors():
        settings = _settings(None, index)
        if mode is not None and mode not in ("hybrid", "dense", "bm25"):
            raise RagError(f"Invalid --mode '{mode}'. Choose from 'hybrid', 'dense', 'bm25'.")
        answer = Pipeline(settings).ask(question, top_k=top_k, mode=mode, since=since, until=until)
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
        if answer.disagreement:
            out.print("[bold]The articles disagree[/] (newest first):", highlight=False)
            for v in answer.disagreements:
                out.print(f"  “{v.answer}”  (confidence {v.confidence:.2f})", highlight=False, markup=False)
                for c in v.citations:
                    out.print(f"      {_where(c)}  “{c.sentence}”", highlight=False, markup=False)
            return
        how = "from a correction in the chat" if answer.corrected else f"confidence {answer.confidence:.2f}"
        out.print(f"[bold]{answer.answer}[/]  ({how})", highlight=False)
        for i, c in enumerate(answer.citations, 1):
            out.print(f"  [{i}] {_where(c)}  “{c.sentence}”", highlight=False, markup=False)


def _where(c) -> str:
    """'file [start:end], p. 3, 2024-03-14' for a citation."""
    bits = [f"{c.file} [{c.start}:{c.end}]"]
    if c.page:
        bits.append(f"p. {c.page}")
    bits.append(c.published[:10] if c.published else "undated")
    return ", ".join(bits)


def _citation_json(c) -> dict:
    return {"article": c.file, "title": c.title, "published": c.published, "page": c.page, "start": c.start,
            "end": c.end, "quote": c.quote, "sentence": c.sentence}


def answer_json(answer) -> dict:
    return {
        "question": answer.question,
        "query": answer.query,
        "answer": answer.answer,
        "abstained": answer.abstained,
        "confidence": round(answer.confidence, 4),
        "corrected": answer.corrected,
        "n_sources": answer.n_sources,
        "since": answer.since,
        "until": answer.until,
        "citations": [_citation_json(c) for c in answer.citations],
        "disagreement": answer.disagreement,
        "versions": [
            {"answer": v.answer, "confidence": round(v.confidence, 4), "published": v.published,
             "citations": [_citation_json(c) for c in v.citations]}
            for v in answer.disagreements
        ],
        "passages": [
            {
                "rank": h.rank,
                "article": h.file,
                "published": h.published,
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


def _reader_status(pipe) -> dict:
    """The reader in use (shipped or a trained version) and where its abstention threshold comes from."""
    model = pipe.span_model
    source = "calibrated" if pipe.settings.abstain_threshold is None else "setting"
    active = pipe.active_reader
    return {"name": active.name if active else "shipped", "note": active.note if active else None,
            "dir": str(model.model_dir), "normalisation": model.normalisation, "precision": model.precision,
            "precision_note": model.note,
            "threshold": pipe.abstain_threshold,
            "threshold_source": source, "calibrated_threshold": model.threshold}


@app.command()
def status(
    index: Optional[Path] = typer.Option(None, "--index"),
    as_json: bool = typer.Option(False, "--json"),
    articles: bool = typer.Option(False, "--articles", help="List every article with its date, newest first."),
):
    """Show what is indexed (with --articles: each article, its date and title)."""
    from .pipeline import Pipeline

    with _friendly_errors():
        pipe = Pipeline(_settings(None, index))
        data = pipe.store.load(pipe.settings.model_name)
        info = data.info()
        reader = _reader_status(pipe)
        listed = sorted(data.articles.values(), key=lambda a: (a.published or "", a.file), reverse=True)
        if as_json:
            doc = {**info.model_dump(), "reader": reader}
            if articles:
                doc["articles"] = [{"file": a.file, "title": a.title, "published": a.published, "url": a.url,
                                    "site": a.site, "pages": len(a.pages) or None} for a in listed]
            print(json.dumps(doc, ensure_ascii=False))
            return
        table = Table(show_header=False)
        for k, v in info.model_dump().items():
            table.add_row(k, str(v))
        table.add_row("reader", f"{reader['name']}: {reader['dir']} ({reader['normalisation']} normalisation, "
                      f"{reader['precision']})")
        if reader["note"]:
            table.add_row("reader note", reader["note"])
        if reader["precision_note"]:
            table.add_row("reader precision", reader["precision_note"])
        note = "" if reader["threshold_source"] == "calibrated" else f" (setting; calibrated {reader['calibrated_threshold']:.2f})"
        table.add_row("abstain_threshold", f"{reader['threshold']:.2f}{note}")
        out.print(table)
        if articles:
            t = Table("published", "article", "title")
            for a in listed:
                t.add_row(a.published[:10] if a.published else "undated", a.file, a.title)
            out.print(t)


@app.command()
def verify(index: Optional[Path] = typer.Option(None, "--index"), as_json: bool = typer.Option(False, "--json")):
    """Check every file of the live index version against the size and SHA-256 recorded when it was built."""
    from .index import IndexStore

    with _friendly_errors():
        store = IndexStore(_settings(None, index).index_dir)
        with Progress(TextColumn("[bold]verifying"), BarColumn(), TimeElapsedColumn(), console=err, transient=True,
                      disable=as_json) as bar:
            task = bar.add_task("verify", total=None)
            result = store.verify(lambda done, total: bar.update(task, completed=done, total=total))
        if as_json:
            print(json.dumps(result))
            return
        out.print(f"Index version {result['version']}: all {result['files']} files match their checksums "
                  f"({result['hashed_bytes'] / 1e6:,.1f} MB hashed in {result['seconds']:.2f} s).", highlight=False)


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
        from .evaluation.report import report_paths
        from .evaluation.run import report_stem, run_eval, run_eval_many
        from .evaluation.tables import compare_table, sets_table

        settings = _settings(articles, index)
        with _eval_progress() as progress:
            if len(qa) > 1:
                if baseline is not None or compare:
                    raise RagError("--baseline and --compare take one --qa set at a time.")
                rep = run_eval_many(qa, settings, k=k, split=split, json_out=json_out, report_out=report,
                                    progress=progress, on_set=lambda r: _print_eval(r, report_paths(
                                        report_stem(r["config"]["qa_file"], split))))
                out.print(sets_table(rep["config"]["sets"]))
                paths = report_paths("combined", json_out, report)
                out.print(f"Combined report: {paths[0]}, {paths[1]}", highlight=False)
                return
            rep = run_eval(qa[0], settings, k=k, json_out=json_out, report_out=report, compare=compare, split=split,
                           baseline=baseline, progress=progress)
        if compare:
            out.print(compare_table(rep["retrieval"]["compare"]))
        _print_eval(rep, report_paths(report_stem(qa[0], split), json_out, report), baseline)


@contextmanager
def _eval_progress():
    """A rich progress bar for ``run_eval``'s ``progress(stage, done, total)``: one row a stage."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=out, transient=False) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _print_eval(report: dict, paths: tuple[Path, Path, Path], baseline: Optional[Path] = None) -> None:
    from .evaluation.squad import is_squad_json
    from .evaluation.tables import summary_table

    cfg = report["config"]
    if is_squad_json(Path(cfg["qa_file"])):
        out.print(f"SQuAD set: {report['n']} questions, articles and index in {Path(cfg['articles_dir']).parent}",
                  highlight=False)
    for w in cfg["warnings"]:
        out.print(f"[yellow]warning:[/] {w}", highlight=False)
    out.print(summary_table(report))
    if baseline is not None:
        c = report["answer"]["changes"]["counts"]
        out.print(f"against {baseline}: " + ", ".join(f"{k} {v}" for k, v in c.items()), highlight=False)
    out.print(f"Reports: {paths[0]}, {paths[1]}, {paths[2]}", highlight=False)
@app.command()
def train(
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Time budget of the training steps (setting train_minutes)."),
    seed: int = typer.Option(13, "--seed"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many steps (smoke runs)."),
    replay: Optional[int] = typer.Option(None, "--replay", help="Replay questions of each bundled set per mark (setting train_replay)."),
    rollback: bool = typer.Option(False, "--rollback", help="Do not train: go back to the reader before the one in use."),
    articles: Optional[Path] = typer.Option(None, "--articles"),
    index: Optional[Path] = typer.Option(None, "--index"),
    as_json: bool = typer.Option(False, "--json"),
):
    """Continue training the reader in use on the chat's marks; keep it only if the held-out marks are
    not worse and the eval set holds (else the reader in use stays)."""
    if rollback:
        reader_rollback(as_json=as_json)
        return
    from .pipeline import Pipeline
    from .training.learn import TrainOptions, changed_line, train_reader

    with _friendly_errors():
        pipe = Pipeline(_settings(articles, index))
        opts = TrainOptions(minutes=minutes or pipe.settings.train_minutes, seed=seed, max_steps=max_steps,
                            replay=replay, command=" ".join(["rag", *sys.argv[1:]]) if sys.argv else "rag train")
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[msg]}"), TimeElapsedColumn(), console=err, disable=as_json,
                      transient=True) as bar:  # a refusal leaves its one line only
            task = bar.add_task("train", total=None, msg="")

            def update(stage: str, done: int, total: int, message: str) -> None:
                bar.update(task, description=stage, completed=done, total=total or None, msg=message)

            report = train_reader(pipe, opts, progress=update)
        if as_json:
            print(json.dumps(report.to_dict(), ensure_ascii=False))
            return
        h, e = report.heldout, report.eval
        out.print(f"Marks: {report.marks} ({report.train_marks} trained on, {report.heldout_marks} held out, "
                  f"{len(report.skipped)} left out); replay questions: {report.replay_questions}; "
                  f"{report.steps} steps in {report.train_seconds:.0f} s (whole run {report.total_seconds:.0f} s).",
                  highlight=False)
        for x in report.skipped:
            out.print(f"  left out “{x['question'][:60]}”: {x['reason']}", highlight=False)
        for n in report.notes:
            out.print(f"  note: {n}", highlight=False)
        out.print(f"Held-out marks right: {h['right_before']} -> {h['right_after']} of {h['n']}; eval set "
                  f"{report.eval_set}: {e['before']:.1%} -> {e['after']:.1%} of {e['n']}.", highlight=False)
        for c in h.get("changed") or []:
            out.print("  " + changed_line(c), highlight=False)
        out.print(("[green]" if report.kept else "[yellow]") + report.reason[0].upper() + report.reason[1:],
                  highlight=False)


reader_app = typer.Typer(no_args_is_help=True, help="Reader versions trained by rag train: list, roll back, remove.")
app.add_typer(reader_app, name="reader")


@reader_app.command("list")
def reader_list(as_json: bool = typer.Option(False, "--json")):
    """Every trained reader version, and which reader is in use."""
    from .readers import ReaderStore

    with _friendly_errors():
        s = _settings()
        store = ReaderStore(s.readers_dir, s.reader_dir)
        active = store.active()
        rows = store.versions()
        if as_json:
            print(json.dumps({"in_use": active.name, "note": active.note, "versions": rows}, ensure_ascii=False))
            return
        t = Table("version", "from", "held-out right", "eval right", "in use")
        t.add_row("shipped", "", "", "", "yes" if active.name == "shipped" else "")
        for r in rows:
            h, e = r.get("heldout") or {}, r.get("eval") or {}
            t.add_row(r["name"], str(r.get("base", "")), f"{h.get('right_before')} -> {h.get('right_after')} of {h.get('n')}",
                      f"{e.get('before', 0):.1%} -> {e.get('after', 0):.1%}", "yes" if r["name"] == active.name else "")
        out.print(t)
        if active.note:
            out.print(f"note: {active.note}", highlight=False)


@reader_app.command("rollback")
def reader_rollback(as_json: bool = typer.Option(False, "--json")):
    """Go back to the reader the one in use was trained from (the shipped reader at the start)."""
    from .readers import ReaderStore

    with _friendly_errors():
        s = _settings()
        old, new = ReaderStore(s.readers_dir, s.reader_dir).rollback()
        if as_json:
            print(json.dumps({"from": old, "to": new}))
            return
        out.print(f"Rolled back: the reader in use is now {new} (was {old}).", highlight=False)


@reader_app.command("remove")
def reader_remove(names: list[str] = typer.Argument(..., help="Versions to remove (rag reader list names them)."),
                  as_json: bool = typer.Option(False, "--json")):
    """Delete trained reader versions and their int8 copies (never the shipped reader or the one in use)."""
    from .readers import ReaderStore

    with _friendly_errors():
        s = _settings()
        store = ReaderStore(s.readers_dir, s.reader_dir)
        for n in names:  # every name checked before any is removed
            store.check_removable(n)
        done = []
        for n in dict.fromkeys(names):
            done.append(r := store.remove(n, s.cache_dir))
            if as_json:
                continue
            out.print(f"Removed reader version {r['name']} ({r['freed_bytes'] / 2**20:.0f} MB freed).", highlight=False)
            if r["orphans"]:
                out.print(f"  trained from it: {', '.join(r['orphans'])} (their rollback now goes to the shipped reader)",
                          highlight=False)
        if as_json:
            print(json.dumps({"removed": done}))


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
