"""Shared fixtures: one real pipeline (real model, real FAISS) over the seeds, built once."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"

# The ONNX export is cached per checkout, never in the user's home during tests.
os.environ.setdefault("RAG_CACHE_DIR", str(ROOT / ".cache"))
_SESSION_DIRS: list[str] = []


def _session_dir(prefix: str) -> str:
    """A temporary folder of this test session, removed when the session ends."""
    _SESSION_DIRS.append(tempfile.mkdtemp(prefix=prefix))
    return _SESSION_DIRS[-1]


@atexit.register
def _remove_session_dirs() -> None:
    for d in _SESSION_DIRS:
        shutil.rmtree(d, ignore_errors=True)


# Trained reader versions (rag train) live in a folder of this test session: a version trained on
# this machine never answers the tests' questions, and the tests' versions never reach the user.
if "RAG_READERS_DIR" not in os.environ:
    os.environ["RAG_READERS_DIR"] = _session_dir("rag-readers-")
# Marks the chat left in the work tree (eval/feedback_qa.jsonl) answer their questions (rag.corrections):
# the tests read and write marks of their own.
os.environ["RAG_FEEDBACK_FILE"] = os.path.join(_session_dir("rag-feedback-"), "feedback_qa.jsonl")


def make_settings(**kw):
    from rag.config import Settings

    return Settings(**kw)


BBC = make_settings().corpora_dir / "bbc" / "articles"  # the corpora_dir setting (RAG_CORPORA_DIR)


@pytest.fixture(scope="session")
def seeds_index_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("seeds-index") / "index"


@pytest.fixture(scope="session")
def seeds_settings(seeds_index_dir):
    return make_settings(articles_dir=SEEDS, index_dir=seeds_index_dir)


@pytest.fixture(scope="session")
def seeds_pipeline(seeds_settings):
    from rag.pipeline import Pipeline

    pipe = Pipeline(seeds_settings)
    pipe.build()
    return pipe


@pytest.fixture
def articles_copy(tmp_path) -> Path:
    """A writable copy of the seed articles."""
    dst = tmp_path / "articles"
    shutil.copytree(SEEDS, dst)
    return dst
