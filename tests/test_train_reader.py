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


def test_reading_windows_are_shaped_like_serving(tiny, tmp_path):
    """--windows reading: the window around the sentence closest to the question, the window
    around the answer's sentence when that differs, labels that quote the gold answer."""
    pytest.importorskip("torch")
    from eval.train_reader import main, reading_examples
    from rag.embed import load_embedder, resolve_model_path
    from rag.evaluation.squad import load_squad, split_articles
    from rag.windows import load_tokenizer

    tok = load_tokenizer(resolve_model_path("all-MiniLM-L6-v2"))
    articles = split_articles(load_squad(tiny), "train")
    embedder = load_embedder("all-MiniLM-L6-v2", backend="onnx")
    examples, n = reading_examples(articles, tok, embedder, None, 13)
    assert n == 2
    answered = [(w, s, e) for w, s, e in examples if s > 0]
    assert answered, "the answerable question has a window holding its answer"
    for w, s, e in answered:
        ctx = TINY["data"][0]["paragraphs"][0]["context"]
        # the window's passage is a run of sentences of the paragraph; the label quotes "France"
        assert tok.decode([int(i) for i in w.ids[s : e + 1]]) == "france"
        assert int(w.offsets[s, 0]) >= 0 and ctx.find("France") >= 0
    # the unanswerable question's windows all point at [CLS]
    assert any(s == 0 for _, s, _ in examples)
    out = tmp_path / "out"
    assert main(["--data", str(tiny), "--work", str(tmp_path / "w"), "--out", str(out), "--batch-size", "2",
                 "--max-steps", "1", "--windows", "reading"]) == 0
    meta = json.loads((out / "training.json").read_text())
    assert meta["config"]["windows"] == "reading" and meta["train_windows"] == len(examples)

    # --windows both: the whole-paragraph windows (2, as in the run above) and the reading windows
    out = tmp_path / "both"
    assert main(["--data", str(tiny), "--work", str(tmp_path / "w2"), "--out", str(out), "--batch-size", "2",
                 "--max-steps", "1", "--windows", "both"]) == 0
    assert json.loads((out / "training.json").read_text())["train_windows"] == 2 + len(examples)


def test_continued_training_chooses_windows_with_the_serving_embedder(tiny, tmp_path, monkeypatch):
    """--model pointing at a trained reader continues from its weights, but the reading windows
    are still chosen by the serving embedder (the reader's weights are no sentence embedder)."""
    pytest.importorskip("torch")
    import rag.embed
    from eval.train_reader import main
    from rag.config import Settings

    first = tmp_path / "first"
    assert main(["--data", str(tiny), "--work", str(tmp_path / "w1"), "--out", str(first), "--batch-size", "2",
                 "--max-steps", "1"]) == 0
    loaded = []
    real = rag.embed.load_embedder
    monkeypatch.setattr(rag.embed, "load_embedder", lambda name, **kw: loaded.append(name) or real(name, **kw))
    out = tmp_path / "cont"
    assert main(["--data", str(tiny), "--model", str(first), "--work", str(tmp_path / "w2"), "--out", str(out),
                 "--batch-size", "2", "--max-steps", "1", "--windows", "reading"]) == 0
    assert loaded == [Settings().model_name]
    assert json.loads((out / "training.json").read_text())["base_model"] == str(first)
