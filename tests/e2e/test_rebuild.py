"""Rebuilding: incremental reuse, crash safety (SIGKILL mid-embedding), one writer, every file accounted for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rag.errors import BuildLockedError
from rag.pipeline import Pipeline

from ..conftest import ROOT, SEEDS, make_settings

NEW_ARTICLE = (
    "Zorblax opens plant in Leeds\n"
    "The robotics firm Zorblax said on Monday it will open a plant in Leeds employing 740 people.\n"
    "Its chief executive, Marta Quillon, said the plant would open in March 2026.\n"
)


def _pipe(articles: Path, index: Path, embedder=None) -> Pipeline:
    return Pipeline(make_settings(articles_dir=articles, index_dir=index), embedder=embedder)


def _vectors_by_article(pipe: Pipeline) -> dict[str, np.ndarray]:
    data = pipe.index()
    out = {}
    for aid, art in data.articles.items():
        rows = [i for i, c in enumerate(data.chunks) if c.article_id == aid]
        out[art.file] = data.vectors[rows].copy()
    return out


def test_incremental_build_embeds_only_what_changed(articles_copy, tmp_path, seeds_pipeline):
    index = tmp_path / "index"
    pipe = _pipe(articles_copy, index, embedder=seeds_pipeline.embedder)
    first = pipe.build()
    assert sorted(first.added) == sorted(p.name for p in SEEDS.iterdir())
    before = _vectors_by_article(pipe)

    # Nothing changed: no embedding, no new version.
    again = pipe.build()
    assert again.unchanged and again.embedded_chunks == 0 and again.version == first.version

    # Add one, change one, remove one.
    (articles_copy / "zorblax.txt").write_text(NEW_ARTICLE)
    changed = articles_copy / "003_9c94d7e71eb5e183.txt"
    changed.write_text(changed.read_text() + "\nThe two companies signed a new pact on 3 May 2031.\n")
    (articles_copy / "004_d817dda01224586a.txt").unlink()
    report = pipe.build()
    assert report.added == ["zorblax.txt"]
    assert report.updated == ["003_9c94d7e71eb5e183.txt"]
    assert report.removed == ["004_d817dda01224586a.txt"]
    assert sorted(report.reused) == ["000_2ac1abd28b7d7f6d.txt", "001_862f22007153cb7b.txt", "002_e60743a29b84d78e.txt"]

    after = _vectors_by_article(pipe)
    data = pipe.index()
    changed_chunks = sum(1 for c in data.chunks if data.articles[c.article_id].file in ("zorblax.txt", "003_9c94d7e71eb5e183.txt"))
    assert report.embedded_chunks == changed_chunks
    for name in report.reused:
        assert np.array_equal(before[name], after[name]), f"{name} was re-embedded"
    assert "004_d817dda01224586a.txt" not in after

    # Answers follow the change.
    a = pipe.ask("How many people will the Zorblax plant employ?")
    assert not a.abstained and "740" in a.answer and a.citations[0].file == "zorblax.txt"
    assert pipe.ask("When did the two companies sign a new pact?").answer == "3 May 2031"
    gone = pipe.ask("Who is Microsoft's AI chief?")
    assert all(c.file != "004_d817dda01224586a.txt" for c in gone.citations)


def test_full_rebuild_and_other_chunking_never_reuse(articles_copy, tmp_path, seeds_pipeline):
    index = tmp_path / "index"
    pipe = _pipe(articles_copy, index, embedder=seeds_pipeline.embedder)
    pipe.build()
    full = pipe.build(full=True)
    assert full.embedded_chunks == full.n_chunks and not full.reused
    other = Pipeline(
        make_settings(articles_dir=articles_copy, index_dir=index, chunk_tokens=120, chunk_overlap=20),
        embedder=seeds_pipeline.embedder,
    )
    report = other.build()
    assert report.embedded_chunks == report.n_chunks
    assert any("other chunking" in w for w in report.warnings)


def test_readers_pick_up_a_new_version_after_the_switch(articles_copy, tmp_path, seeds_pipeline):
    index = tmp_path / "index"
    writer = _pipe(articles_copy, index, embedder=seeds_pipeline.embedder)
    writer.build()
    reader = _pipe(articles_copy, index, embedder=seeds_pipeline.embedder)
    old_version = reader.ask("What share of OpenAI does Microsoft hold?").index_version
    (articles_copy / "zorblax.txt").write_text(NEW_ARTICLE)
    new_version = writer.build().version
    assert new_version != old_version
    a = reader.ask("How many people will the Zorblax plant employ?")
    assert a.index_version == new_version and "740" in (a.answer or "")


def test_add_and_remove_commands(articles_copy, tmp_path, seeds_pipeline):
    index = tmp_path / "index"
    pipe = _pipe(articles_copy, index, embedder=seeds_pipeline.embedder)
    pipe.build()
    src = tmp_path / "incoming"
    src.mkdir()
    (src / "zorblax.txt").write_text(NEW_ARTICLE)
    (src / ".hidden.txt").write_text(NEW_ARTICLE)
    report = pipe.add([src / "zorblax.txt", src / ".hidden.txt"])
    assert report.added == ["zorblax.txt"] and (articles_copy / "zorblax.txt").exists()
    assert any(s.file == ".hidden.txt" and s.reason.startswith("refused") for s in report.skipped)
    report = pipe.remove(["zorblax.txt"])
    assert report.removed == ["zorblax.txt"] and not (articles_copy / "zorblax.txt").exists()


def test_every_bad_file_is_reported_and_good_files_indexed(tmp_path, seeds_pipeline):
    folder = tmp_path / "articles"
    folder.mkdir()
    for p in sorted(SEEDS.iterdir())[:2]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.html").write_bytes(os.urandom(2048) + b"\x00")
    (folder / "cp1252.txt").write_bytes("Caf\xe9 closes\nThe caf\xe9 in Leeds closed after 40 years.\n".encode("latin-1"))
    (folder / "huge.txt").write_bytes(b"Huge\n" + b"news " * 300_000)
    (folder / "same.txt").write_bytes(sorted(SEEDS.iterdir())[0].read_bytes())
    pipe = Pipeline(make_settings(articles_dir=folder, index_dir=tmp_path / "index", max_file_bytes=1_000_000),
                    embedder=seeds_pipeline.embedder)
    report = pipe.build()
    reasons = {s.file: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.txt", "binary.html", "huge.txt", "same.txt"}
    assert reasons["same.txt"].startswith("exact duplicate of 000_")
    assert report.n_articles == 3 and "cp1252.txt" in report.added
    assert any("cp1252.txt" in w for w in report.warnings)
    info = pipe.index()
    assert {a.file for a in info.articles.values()} == {*(p.name for p in sorted(SEEDS.iterdir())[:2]), "cp1252.txt"}
    assert info.manifest["files"]["same.txt"] == info.manifest["files"]["000_2ac1abd28b7d7f6d.txt"]


# --- crash safety and the lock, with real subprocesses ---------------------------------------

BUILD_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from rag.config import Settings
    from rag.pipeline import Pipeline

    def progress(stage, done, total):
        print(stage, done, total, flush=True)

    s = Settings(articles_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]), embed_batch_size=8)
    report = Pipeline(s).build(full=True, progress=progress, wait=float(sys.argv[3]))
    print("done", report.version, flush=True)
    """
)


def _many_articles(folder: Path, copies: int) -> None:
    """Distinct variants of the seeds (rotated paragraphs), so that a build embeds for a while."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(copies):
        for p in SEEDS.iterdir():
            lines = p.read_text().splitlines()
            k = i % max(1, len(lines))
            (folder / f"v{i:02d}_{p.name}").write_text(f"Variant {i} of {p.stem}\n" + "\n".join(lines[k:] + lines[:k]))


def _start_build(articles: Path, index: Path, wait: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BUILD_SCRIPT, str(articles), str(index), str(wait)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _wait_for_embedding(proc: subprocess.Popen, timeout: float = 120) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        parts = line.split()
        if parts[0] == "embed" and 0 < int(parts[1]) < int(parts[2]):
            return line
    proc.kill()
    raise AssertionError(f"build never reached embedding: {proc.stderr.read()[-2000:]}")


def test_sigkill_during_embedding_leaves_the_old_index_answering(tmp_path, seeds_pipeline):
    articles = tmp_path / "articles"
    _many_articles(articles, 6)
    index = tmp_path / "index"
    # The live index: the seeds.
    live = Pipeline(make_settings(articles_dir=SEEDS, index_dir=index), embedder=seeds_pipeline.embedder)
    old_version = live.build().version

    proc = _start_build(articles, index)
    try:
        _wait_for_embedding(proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    # A fresh reader loads the old version and answers.
    reader = Pipeline(make_settings(articles_dir=SEEDS, index_dir=index), embedder=seeds_pipeline.embedder)
    a = reader.ask("What share of OpenAI does Microsoft hold?")
    assert a.index_version == old_version and "49%" in a.answer

    # Leave debris as a build killed while writing would, then build again: it completes and cleans up.
    (index / ".build-killed-while-writing").mkdir()
    (index / ".build-killed-while-writing" / "faiss.index").write_bytes(b"partial")
    done = Pipeline(make_settings(articles_dir=articles, index_dir=index), embedder=seeds_pipeline.embedder).build()
    assert done.version != old_version and done.n_articles == 30
    assert not list(index.glob(".build-*"))
    assert len(list((index / "versions").iterdir())) <= 2


def test_two_builds_one_waits_or_refuses(tmp_path, seeds_pipeline):
    articles = tmp_path / "articles"
    _many_articles(articles, 4)
    index = tmp_path / "index"
    proc = _start_build(articles, index)
    try:
        _wait_for_embedding(proc)
        second = Pipeline(make_settings(articles_dir=SEEDS, index_dir=index), embedder=seeds_pipeline.embedder)
        with pytest.raises(BuildLockedError, match=f"pid {proc.pid}"):
            second.build(wait=0)
        # Waiting works: it gets the lock after the first build finished.
        report = second.build(wait=300)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "done" in out
    assert report.n_articles == 5
    # The index is consistent: the second build (seeds) is live and loads.
    data = second.index()
    assert {a.file for a in data.articles.values()} == {p.name for p in SEEDS.iterdir()}
    assert data.faiss.ntotal == len(data.chunks)


def test_build_cli_json_reports_everything(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "good.txt").write_text(NEW_ARTICLE)
    (folder / "empty.txt").write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "build", "--articles", str(folder), "--index", str(tmp_path / "index"), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == ["good.txt"]
    assert report["skipped"] == [{"file": "empty.txt", "reason": "empty file"}]


def test_add_never_copies_unusable_files(articles_copy, tmp_path, seeds_pipeline):
    pipe = _pipe(articles_copy, tmp_path / "index", embedder=seeds_pipeline.embedder)
    pipe.build()
    src = tmp_path / "incoming"
    src.mkdir()
    (src / "empty.txt").write_text("")
    (src / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    report = pipe.add([src / "empty.txt", src / "binary.txt"])
    reasons = {s.file: s.reason for s in report.skipped}
    assert reasons == {"empty.txt": "empty file", "binary.txt": "binary file, not text"}
    assert not (articles_copy / "empty.txt").exists() and not (articles_copy / "binary.txt").exists()
    assert report.unchanged


def test_small_builds_use_the_question_embedder_large_ones_the_build_backend(articles_copy, tmp_path):
    """Loading torch costs more than ONNX takes for a few hundred chunks: a small build embeds
    with the question backend; above ``small_build_chars`` the build backend is loaded."""
    small = Pipeline(make_settings(articles_dir=articles_copy, index_dir=tmp_path / "small"))
    small.build()
    assert small._build_embedder is None and small.embedder.backend == "onnx"
    large = Pipeline(make_settings(articles_dir=articles_copy, index_dir=tmp_path / "large", small_build_chars=0))
    large.build()
    assert large._build_embedder is not None and large._build_embedder.backend == "torch"
    # Both indexes hold the same texts with vectors that agree to a cosine of 0.9999.
    a, b = small.index(), large.index()
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    assert float((a.vectors * b.vectors).sum(axis=1).min()) > 0.9999
