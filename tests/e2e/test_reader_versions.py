"""Reader versions (rag.readers): a fresh install serves the shipped reader; a version made
current serves the next question; rollback goes back; asks during a switch never fail; a
version that is missing or was trained from another shipped reader is not used."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from rag.errors import RagError, TrainLockedError
from rag.readers import CARD, SHIPPED, ReaderStore, file_sha256
from rag.span_model import DEFAULT_READER_DIR, ONNX_FILE, int8_copy_path

from ..conftest import SEEDS, make_settings


def fake_version(store: ReaderStore, name: str, *, threshold: float, base: str = SHIPPED, sha: str | None = None) -> Path:
    """A version folder: the shipped reader's files with another calibrated threshold (observable)."""
    vdir = store.version_dir(name)
    shutil.copytree(DEFAULT_READER_DIR, vdir)
    cal = json.loads((vdir / "calibration.json").read_text())
    (vdir / "calibration.json").write_text(json.dumps({**cal, "threshold": threshold}))
    (vdir / CARD).write_text(json.dumps({"name": name, "base": base,
                                         "shipped_sha256": sha or file_sha256(DEFAULT_READER_DIR / ONNX_FILE)}))
    return vdir


@pytest.fixture
def pipe(tmp_path, seeds_pipeline, seeds_index_dir):
    from rag.pipeline import Pipeline

    s = make_settings(articles_dir=SEEDS, index_dir=seeds_index_dir, readers_dir=tmp_path / "readers")
    return Pipeline(s, embedder=seeds_pipeline.embedder)


def test_fresh_install_serves_the_shipped_reader(pipe):
    assert pipe.readers.current_name() == SHIPPED
    assert pipe.span_model.model_dir == DEFAULT_READER_DIR
    assert pipe.reader_name() == SHIPPED
    with pytest.raises(RagError, match="shipped reader is in use"):
        pipe.readers.rollback()


def test_switch_and_rollback(pipe):
    store = pipe.readers
    shipped_threshold = pipe.abstain_threshold
    v1 = fake_version(store, "v1", threshold=0.77)
    fake_version(store, "v2", threshold=0.66, base="v1")
    pipe.ask("Who is the chief executive?")
    store.switch("v1")
    assert pipe.abstain_threshold == pytest.approx(0.77)  # read without loading the model
    ans = pipe.ask("Who is the chief executive?")
    assert pipe.span_model.model_dir == v1 and pipe.reader_name() == "v1"
    assert ans.question
    store.switch("v2")
    assert pipe.reader_name() == "v2" and pipe.abstain_threshold == pytest.approx(0.66)
    assert store.rollback() == ("v2", "v1")
    assert pipe.reader_name() == "v1"
    assert store.rollback() == ("v1", SHIPPED)
    assert pipe.reader_name() == SHIPPED and pipe.abstain_threshold == pytest.approx(shipped_threshold)
    with pytest.raises(RagError, match="No reader version nope"):
        store.switch("nope")


def test_asks_during_switches_never_fail(pipe):
    store = pipe.readers
    fake_version(store, "v1", threshold=0.5)
    pipe.ask("warm up")
    errors: list[BaseException] = []
    answers = []
    stop = threading.Event()

    def asker():
        while not stop.is_set():
            try:
                answers.append(pipe.ask("What did the company report?"))
            except BaseException as exc:  # noqa: BLE001 - any failure is the test's failure
                errors.append(exc)

    threads = [threading.Thread(target=asker) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            store.switch("v1" if i % 2 == 0 else SHIPPED)
            n = len(answers)
            while len(answers) < n + 2 and not errors:
                threading.Event().wait(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:1]
    assert len(answers) >= 12
    assert pipe.reader_name() == SHIPPED  # the last switch (i=5) went back to the shipped reader


def test_unusable_versions_fall_back_to_the_shipped_reader(pipe):
    store = pipe.readers
    vdir = fake_version(store, "gone", threshold=0.5)
    store.switch("gone")
    (vdir / ONNX_FILE).unlink()
    assert pipe.reader_name() == SHIPPED
    assert "missing" in pipe.active_reader.note
    fake_version(store, "old-base", threshold=0.5, sha="0" * 64)
    store.switch("old-base")
    assert pipe.reader_name() == SHIPPED
    assert "another shipped reader" in pipe.active_reader.note


def test_one_training_run_at_a_time(tmp_path):
    store = ReaderStore(tmp_path / "readers", DEFAULT_READER_DIR)
    with store.lock():
        assert store.running()
        with pytest.raises(TrainLockedError, match=r"Another rag train is running \(pid \d+"):
            with store.lock():
                pass
    assert not store.running()


def _distinct(vdir: Path) -> Path:
    """Make a version's weights file differ from the shipped one (its own int8 copy key)."""
    with open(vdir / ONNX_FILE, "ab") as f:
        f.write(b"\0")
    return vdir


def test_remove_deletes_a_version_and_its_int8_copy(tmp_path):
    store = ReaderStore(tmp_path / "readers", DEFAULT_READER_DIR)
    cache = tmp_path / "cache"
    v1 = _distinct(fake_version(store, "v1", threshold=0.5))
    fake_version(store, "v2", threshold=0.6, base="v1")
    copy = int8_copy_path(v1 / ONNX_FILE, cache)
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"x" * 1000)  # stands for the cached int8 copy of v1's weights
    shipped_copy = int8_copy_path(DEFAULT_READER_DIR / ONNX_FILE, cache)
    shipped_copy.write_bytes(b"y")
    size = sum(p.stat().st_size for p in v1.rglob("*") if p.is_file())
    store.switch("v2")
    done = store.remove("v1", cache)
    assert done == {"name": "v1", "freed_bytes": size + 1000, "orphans": ["v2"]}
    assert not v1.exists() and not copy.exists() and shipped_copy.exists()
    assert [v["name"] for v in store.versions()] == ["v2"]
    assert not list(store.root.glob(".removed-*"))
    assert store.rollback() == ("v2", SHIPPED)  # its base is gone: back to the shipped reader
    # a version with the shipped weights: its copy is the shipped reader's, kept
    done = store.remove("v2", cache)
    assert done["orphans"] == [] and shipped_copy.exists() and store.versions() == []


def test_remove_refuses_and_loses_nothing(tmp_path):
    store = ReaderStore(tmp_path / "readers", DEFAULT_READER_DIR)
    v1 = fake_version(store, "v1", threshold=0.5)
    store.switch("v1")
    for name, why in [("v1", "is in use"), (SHIPPED, "shipped reader cannot be removed"), ("nope", "No reader version nope"),
                      ("../readers", "No reader version"), ("", "No reader version")]:
        with pytest.raises(RagError, match=why):
            store.remove(name, tmp_path / "cache")
    store.switch(SHIPPED)
    with store.lock():  # a training run holds the folder
        with pytest.raises(TrainLockedError):
            store.remove("v1", tmp_path / "cache")
    assert (v1 / ONNX_FILE).is_file() and [v["name"] for v in store.versions()] == ["v1"]
    with pytest.raises(RagError, match="cannot be kept"):
        ReaderStore(None, DEFAULT_READER_DIR).remove("v1")


def test_cli_remove_checks_every_name_first(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rag.cli import app

    store = ReaderStore(tmp_path / "readers", DEFAULT_READER_DIR)
    for n in ("v1", "v2", "v3"):
        fake_version(store, n, threshold=0.5)
    store.switch("v3")
    monkeypatch.setenv("RAG_READERS_DIR", str(store.root))
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    res = runner.invoke(app, ["reader", "remove", "v1", "v3"])
    assert res.exit_code == 1 and "v3 is in use" in res.output
    assert [v["name"] for v in store.versions()] == ["v1", "v2", "v3"]  # v1 was not removed either
    res = runner.invoke(app, ["reader", "remove", "v1", "v2"])
    assert res.exit_code == 0, res.output
    assert "Removed reader version v1 (" in res.output and "Removed reader version v2 (" in res.output
    res = runner.invoke(app, ["reader", "list", "--json"])
    assert [v["name"] for v in json.loads(res.output)["versions"]] == ["v3"]
