"""rag train (rag.training.learn): marks -> training groups -> a new reader kept only if better.

CI never trains for real: the smoke runs take two steps on a handful of marks. Checked: the
fixed held-out split, the bad inputs (too few marks, a removed or changed article, moved
offsets, a second run, a killed run), the keep / refuse rule, a kept version with its card and
calibration, rollback, and a reader switched under a running training is never overwritten.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.errors import RagError, TrainError, TrainLockedError
from rag.feedback import GoldSpan
from rag.readers import SHIPPED
from rag.training.learn import Figures, TrainOptions, decide, train_reader
from rag.training.marks import is_heldout, resolve_marks

from ..conftest import ROOT, SEEDS, make_settings

QA = [json.loads(line) for line in (ROOT / "eval" / "seeds_qa.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture
def learn_pipe(tmp_path, seeds_pipeline):
    """A pipeline over a copy of the seeds, with its own marks file and readers folder."""
    from rag.pipeline import Pipeline

    articles = tmp_path / "articles"
    shutil.copytree(SEEDS, articles)
    evalset = tmp_path / "eval_qa.jsonl"
    evalset.write_text("".join(json.dumps(r) + "\n" for r in QA[:4]))
    s = make_settings(articles_dir=articles, index_dir=tmp_path / "index", readers_dir=tmp_path / "readers",
                      feedback_file=tmp_path / "feedback_qa.jsonl", train_min_marks=4, train_heldout_share=0.4,
                      train_eval_qa=evalset, train_eval_articles=SEEDS, train_replay=0)
    pipe = Pipeline(s, embedder=seeds_pipeline.embedder)
    pipe.build()
    return pipe


def mark(pipe, rec: dict, verdict: str = "wrong") -> dict:
    """Ask the question and mark it: wrong with the gold words selected in their article."""
    ans = pipe.ask(rec["question"])
    if verdict == "no_answer":
        return pipe.feedback(ans, "no_answer")
    data = pipe.index()
    for src in rec["sources"]:
        art = data.articles[data.file_to_id[src]]
        for a in rec["answers"]:
            i = art.text.find(a)
            if i >= 0:
                return pipe.feedback(ans, "wrong", span=GoldSpan(art.id, i, i + len(a)))
    raise AssertionError(f"no gold words found for {rec['id']}")


def marks(pipe, n: int) -> list[dict]:
    recs = [mark(pipe, r) for r in QA[4:4 + n]]
    recs.append(mark(pipe, {"question": "What is the airspeed of an unladen swallow in the articles?"}, "no_answer"))
    return recs


def test_heldout_split_is_fixed_per_mark():
    ids = [f"f{i:010x}" for i in range(400)]
    held = [i for i in ids if is_heldout(i, 0.3)]
    assert 0.22 < len(held) / len(ids) < 0.38
    assert held == [i for i in reversed(ids) if is_heldout(i, 0.3)][::-1]  # no dependence on the others
    assert all(is_heldout(i, 0.5) for i in held)  # a larger share only adds marks


def test_decide_keeps_only_a_reader_that_is_not_worse():
    assert decide(Figures(10, 5, 6), Figures(79, 60, 59), 0.02)[0]  # one eval question less: within 2%
    ok, why = decide(Figures(10, 5, 4), Figures(79, 60, 70), 0.02)
    assert not ok and "held-out" in why
    ok, why = decide(Figures(10, 5, 9), Figures(79, 60, 57), 0.02)
    assert not ok and "eval set" in why and "tolerance" in why
    assert decide(Figures(10, 5, 5), Figures(79, 60, 60), 0.0)[0]


def test_bad_marks_are_left_out_with_their_reason(learn_pipe):
    recs = marks(learn_pipe, 3)
    data = learn_pipe.index()
    gone, changed, moved = (json.loads(json.dumps(r)) for r in recs[:3])
    gone["id"], changed["id"], moved["id"] = "gone", "changed", "moved"
    gone["feedback"]["gold_span"]["article"] = "not-there.txt"
    changed["feedback"]["gold_span"]["text"] = "words that were never written"
    moved["feedback"]["gold_span"]["start"] += 3
    moved["feedback"]["gold_span"]["end"] += 3
    examples, skipped = resolve_marks([*recs, gone, changed, moved], data, 0.4)
    reasons = {x.id: x.reason for x in skipped}
    assert "no longer indexed" in reasons["gone"]
    assert "changed" in reasons["changed"] and "no longer in it" in reasons["changed"]
    m = next(e for e in examples if e.id == "moved")
    assert "re-anchored" in m.note and m.spans == next(e for e in examples if e.id == recs[2]["id"]).spans
    assert {e.id for e in examples} == {r["id"] for r in recs} | {"moved"}
    noans = next(e for e in examples if not e.answerable)
    assert noans.passages, "a no-answer mark keeps the passages that were read"


def test_refusals_are_one_line_and_lose_nothing(learn_pipe):
    with pytest.raises(TrainError, match="No marks in"):
        train_reader(learn_pipe)
    marks(learn_pipe, 1)
    before = Path(learn_pipe.settings.feedback_file).read_bytes()
    with pytest.raises(TrainError, match=r"Too few usable marks: 2 of 2.*at least 4"):
        train_reader(learn_pipe)
    with learn_pipe.readers.lock():
        with pytest.raises(TrainLockedError, match="Another rag train is running"):
            train_reader(learn_pipe)
    assert Path(learn_pipe.settings.feedback_file).read_bytes() == before
    assert learn_pipe.readers.current_name() == SHIPPED


def test_killed_run_leaves_the_reader_in_use(learn_pipe):
    marks(learn_pipe, 7)
    root = learn_pipe.readers.root
    (root / ".train-leftover").mkdir(parents=True)  # a run killed earlier

    def kill(stage, done, total, message):
        if stage == "train" and done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_reader(learn_pipe, TrainOptions(max_steps=2, replay=0), progress=kill)
    assert learn_pipe.readers.current_name() == SHIPPED
    assert not list(root.glob(".train-*"))
    assert learn_pipe.readers.read_status()["state"] == "failed"
    assert learn_pipe.reader_name() == SHIPPED


def test_smoke_run_keeps_a_version_and_rolls_back(learn_pipe):
    recs = marks(learn_pipe, 7)
    before = Path(learn_pipe.settings.feedback_file).read_bytes()
    seen = []
    # lr 0: two real steps through the loop, export and both evaluations, the same weights: kept
    report = train_reader(learn_pipe, TrainOptions(max_steps=2, lr=0.0, replay=1),
                          progress=lambda st, d, t, m: seen.append(st))
    assert report.steps == 2 and report.loss_first is not None
    assert report.heldout_marks == sum(is_heldout(r["id"], 0.4) for r in recs) > 0
    assert report.heldout["n"] == report.heldout_marks and report.eval["n"] == 4
    assert report.heldout["right_after"] == report.heldout["right_before"]
    assert report.heldout["changed"] == []  # the same weights: no held-out mark fixed or broken
    assert report.kept, report.reason
    assert {"marks", "before", "train", "export", "after"} <= set(seen)
    store = learn_pipe.readers
    assert store.current_name() == report.version
    vdir = store.version_dir(report.version)
    for f in ("reader.onnx", "calibration.json", "training.json", "tokenizer.json", "README.md", "card.json"):
        assert (vdir / f).is_file(), f
    assert json.loads((vdir / "training.json").read_text())["normalisation"] == "shared"
    card = json.loads((vdir / "card.json").read_text())
    assert card["base"] == SHIPPED and card["heldout"] == report.heldout and "bias moved" in card["calibration"]
    shipped_cal = json.loads((learn_pipe.readers.shipped / "calibration.json").read_text())
    version_cal = json.loads((vdir / "calibration.json").read_text())
    assert report.bias_shift is not None and version_cal["bias_shift"] == report.bias_shift
    assert version_cal["bias"] == pytest.approx(shipped_cal["bias"] + report.bias_shift, abs=1e-3)
    assert version_cal["threshold"] == shipped_cal["threshold"]
    assert "held-out marks right" in (vdir / "README.md").read_text()
    assert learn_pipe.reader_name() == report.version  # the next question uses it
    assert learn_pipe.ask(recs[0]["question"]).question
    assert (store.root / "runs" / f"{report.version}.json").is_file()
    assert Path(learn_pipe.settings.feedback_file).read_bytes() == before  # marks untouched
    assert store.rollback() == (report.version, SHIPPED)
    assert learn_pipe.reader_name() == SHIPPED

    # a reader switched while a run trains is never overwritten by that run
    def switch_mid_run(stage, done, total, message):
        if stage == "after" and done == 1:
            store.switch(report.version)

    try:
        second = train_reader(learn_pipe, TrainOptions(max_steps=1, lr=0.0, replay=0), progress=switch_mid_run)
        assert not second.kept  # (only if the figures refused it)
    except RagError as exc:
        assert "changed during training" in str(exc)
    assert store.current_name() == report.version


def test_cli_train_and_rollback_say_why_in_one_line(tmp_path, monkeypatch, seeds_index_dir, seeds_pipeline):
    from typer.testing import CliRunner

    from rag.cli import app

    monkeypatch.setenv("RAG_READERS_DIR", str(tmp_path / "readers"))
    monkeypatch.setenv("RAG_FEEDBACK_FILE", str(tmp_path / "none.jsonl"))
    monkeypatch.setenv("RAG_INDEX_DIR", str(seeds_index_dir))
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--minutes", "1"])
    assert res.exit_code == 1
    assert "error: No marks in" in res.output and len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["reader", "rollback"])
    assert res.exit_code == 1 and "shipped reader is in use" in res.output
    res = runner.invoke(app, ["reader", "list", "--json"])
    assert res.exit_code == 0 and json.loads(res.output) == {"in_use": "shipped", "note": None, "versions": []}
