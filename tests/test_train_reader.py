"""Smoke run of the reader's training code: a few steps on a handful of questions (CI never trains).

It checks that the training split excludes the held-out articles, that a run writes weights
the export can read, and that a second run with the same settings resumes from the
checkpoint instead of starting over.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "version": "v2.0",
    "data": [
        {
            "title": "Train_article",
            "paragraphs": [
                {
                    "context": "The Normans gave their name to Normandy, a region in France. Rollo was their first ruler.",
                    "qas": [
                        {"id": "a", "question": "Where is Normandy?", "answers": [{"text": "France", "answer_start": 53}],
                         "is_impossible": False},
                        {"id": "b", "question": "Who was the last ruler?", "answers": [], "is_impossible": True},
                    ],
                }
            ],
        },
        {
            "title": "Kenya",  # a dev article of rag/squad_split.json: never trained on
            "paragraphs": [{"context": "Nairobi is the capital of Kenya.", "qas": [
                {"id": "c", "question": "What is the capital of Kenya?", "answers": [{"text": "Nairobi", "answer_start": 0}],
                 "is_impossible": False}]}],
        },
    ],
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("squad") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def test_training_runs_resumes_and_writes_weights(tiny, tmp_path, caplog):
    pytest.importorskip("torch")
    from eval.train_reader import main

    work, out = tmp_path / "work", tmp_path / "out"
    args = ["--data", str(tiny), "--work", str(work), "--out", str(out), "--batch-size", "2", "--epochs", "2",
            "--save-every", "1"]
    assert main([*args, "--max-steps", "1"]) == 0
    log = (work / "train.log").read_text()
    assert "1 articles, 2 questions, 2 windows (1 point at [CLS])" in log  # Kenya held out
    assert (out / "model.safetensors").stat().st_size > 1_000_000
    meta = json.loads((out / "training.json").read_text())
    assert meta["steps"] == 1 and meta["train_questions"] == 2

    # the same settings again with room for one more step: resumes at step 1
    assert main([*args, "--max-steps", "1"]) == 0  # already done: nothing more to do
    assert json.loads((out / "training.json").read_text())["steps"] == 1
    assert "resumed at step 1" in (work / "train.log").read_text()
