"""The chat's Maintenance names the reader in use and rolls a trained version back (AppTest)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from rag.readers import ReaderStore  # noqa: E402
from rag.span_model import DEFAULT_READER_DIR  # noqa: E402

from .test_reader_versions import fake_version  # noqa: E402


def plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)  # undo ui.render.md_escape


def captions(at) -> list[str]:
    return [plain(c.value) for c in at.caption]


def app_with_version(monkeypatch, tmp_path, seeds_index_dir, status: dict | None = None):
    """The chat over the seeds with a trained version "v1" in use (and a last run's ``status``), run once."""
    readers = tmp_path / "readers"
    store = ReaderStore(readers, DEFAULT_READER_DIR)
    fake_version(store, "v1", threshold=0.6)
    store.switch("v1")
    if status:
        store.write_status(status)
    for k, v in {"RAG_INDEX_DIR": seeds_index_dir, "RAG_ARTICLES_DIR": ROOT / "seeds", "RAG_READERS_DIR": readers,
                 "RAG_FEEDBACK_FILE": tmp_path / "marks.jsonl"}.items():
        monkeypatch.setenv(k, str(v))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return store, at


@pytest.mark.usefixtures("seeds_pipeline")
def test_maintenance_names_the_reader_and_rolls_back(monkeypatch, tmp_path, seeds_index_dir):
    store, at = app_with_version(monkeypatch, tmp_path, seeds_index_dir)
    assert "Reader in use: v1" in captions(at)
    train = next(b for b in at.button if b.label == "Train the reader on the marks")
    assert not train.disabled
    back = next(b for b in at.button if b.label == "Roll back the reader")
    assert not back.disabled
    back.click().run()
    assert store.current_name() == "shipped"
    assert any("Rolled back: the reader in use is now shipped (was v1)." in plain(i.value) for i in at.info)
    at.run()
    assert "Reader in use: shipped" in captions(at)
    assert next(b for b in at.button if b.label == "Roll back the reader").disabled


@pytest.mark.usefixtures("seeds_pipeline")
def test_the_last_training_run_names_the_held_out_marks_it_fixed_and_broke(monkeypatch, tmp_path, seeds_index_dir):
    _, at = app_with_version(monkeypatch, tmp_path, seeds_index_dir, status={
        "state": "kept", "pid": 1, "version": "v1",
        "message": "kept as v1: held-out marks 0 -> 1 of 3 right; eval set 70.9% -> 72.2%",
        "changed": [{"question": "How many jobs?", "change": "fixed", "before": None, "after": "3,000"},
                    {"question": "Who won?", "change": "broken", "before": "Smith", "after": "Jones"}]})
    assert any("held-out marks 0 -> 1 of 3 right" in plain(s.value) for s in at.success)
    assert "fixed: “How many jobs?” (no answer → “3,000”)" in captions(at)
    assert "broken: “Who won?” (“Smith” → “Jones”)" in captions(at)
