"""End to end: ``run_eval`` on eval/seeds_qa.jsonl with the real pipeline (real model, real index).

FLOORS are measured values rounded down to 2 decimals. Raise them when the system improves;
never lower them to make a change pass. The one exception is a trade a change makes on purpose,
measured on the sets nobody tuned on and reported in the README; the comment says which.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.evaluation import REPORT_KEYS, load_qa, run_eval

ROOT = Path(__file__).resolve().parents[2]
SEEDS_QA = ROOT / "eval" / "seeds_qa.jsonl"

# "block.metric" -> minimum value on eval/seeds_qa.jsonl with the default settings (k=10).
# Measured 2026-12-05 (third session) with the soup reader (the mean of five runs, int8, threshold
# 0.45): em .698, f1 .735, contains .714, abstention f1 .737 (retrieval unchanged); floors raised.
# Measured 2026-12-04 (second session) with the same reader served as its int8 copy (reader_int8,
# recalibrated on the dev sets: threshold 0.35): em .667, f1 .710, contains .683, abstention f1
# .722, retrieval unchanged. Two answers moved ("Duolingo" for "Duolingo and Stripe"; a wrong
# name) and one unanswerable question was answered at 0.41: a trade taken for the read time
# (ask p50 0.61x the float reader's in one bench run), because over the five news and seed
# sets together (389 questions) the int8 copy answers as well (contains .663 -> .670, F1 .706 ->
# .711, SQuAD 2.0 F1 .709 -> .710; the BBC held-out half .733 -> .800; README).
# Before that, measured 2026-12-04 with the shared-normalisation reader (3 whole passages, threshold 0.40 from
# calibration.json): em .698, f1 .734, contains .714, abstention f1 .757 (retrieval unchanged).
# contains fell .730 -> .714 (one answerable question of 63 now withheld) while abstention F1
# rose .632 -> .757 and SQuAD 2.0 F1 .717 -> .762: a trade taken for the sets nobody tuned on
# (BBC held-out half: contains .467 -> .733, abstention F1 .625 -> .842; README, "Measured quality").
# Before that, measured 2026-12-02 with the shipped span model (3 passages x best sentence +-1, threshold 0.40,
# onnx queries): hit@1 .857, hit@3 .952, hit@5 1.0, hit@10 1.0, mrr .911, ndcg@10 .895, em .667,
# f1 .708, contains .730, abstention f1 .632. These are LOWER than the rule reader's on this set
# (em .683, f1 .743, contains .873, abstention f1 .903; the rules were tuned on its dev split):
# the trained reader replaced them because it does better on the sets nobody tuned on (README,
# "Measured quality"); the drop here is reported there, not hidden. The shipped model replaced
# the first trained one (em .635, f1 .670, contains .667, abstention f1 .667 here): answers rose,
# abstention F1 fell from .667 to .632 (12 of the 16 unanswerable questions withheld, not 14), a trade
# taken for higher answer F1 on 6 of the 7 eval sets, SQuAD test among them (README).
FLOORS: dict[str, float] = {
    "retrieval.hit@1": 0.85,
    "retrieval.hit@3": 0.95,
    "retrieval.hit@5": 1.0,
    "retrieval.hit@10": 1.0,
    "retrieval.mrr": 0.91,
    "retrieval.ndcg@10": 0.89,
    "answer.em": 0.69,
    "answer.f1": 0.73,
    "answer.contains": 0.71,
    "abstention.f1": 0.73,
}


@pytest.fixture(scope="session")
def seeds_eval(seeds_settings, tmp_path_factory):
    """One eval run per session over the shared seeds index (built once, see conftest)."""
    out = tmp_path_factory.mktemp("eval-out")
    report = run_eval(
        SEEDS_QA, seeds_settings, k=10, json_out=out / "seeds.json", report_out=out / "seeds.md"
    )
    return report, out


def test_report_has_exactly_the_seven_keys(seeds_eval):
    report, out = seeds_eval
    assert tuple(report) == REPORT_KEYS
    on_disk = json.loads((out / "seeds.json").read_text(encoding="utf-8"))
    assert tuple(on_disk) == REPORT_KEYS
    assert (out / "seeds-coverage.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "seeds.md").read_text(encoding="utf-8")
    for heading in ("## Retrieval", "## Answers", "## Abstention", "## Latency", "## By question type", "## Misses"):
        assert heading in md
    assert "![coverage, accuracy and reliability](seeds-coverage.png)" in md


def test_counts(seeds_eval):
    report, _ = seeds_eval
    items, warnings = load_qa(SEEDS_QA)
    assert warnings == []
    assert report["n"] == len(items) == 79
    n_unanswerable = sum(not q.answerable for q in items)
    assert report["abstention"]["n"] == n_unanswerable
    assert report["answer"]["n"] == report["retrieval"]["n"] == len(items) - n_unanswerable
    assert report["latency_ms"]["n"] == len(items)
    assert len(report["answer"]["coverage_curve"]) == 101
    assert {m["label"] for m in report["misses"]} <= {"retrieval", "reader", "threshold"}
    cfg = report["config"]
    assert cfg["k"] == 10 and cfg["qa_file"].endswith("seeds_qa.jsonl") and cfg["split"] is None


def test_curve_matches_the_run_at_its_own_threshold(seeds_eval):
    """The coverage curve is recomputed from candidates; at the configured threshold it must
    reproduce what the pipeline actually did."""
    report, _ = seeds_eval
    t = report["config"]["threshold"]
    point = next(p for p in report["answer"]["coverage_curve"] if p["threshold"] == round(t, 2))
    if round(t, 2) == t:
        assert point["coverage"] == pytest.approx(report["answer"]["coverage"])
        assert point["abstention_f1"] == pytest.approx(report["abstention"]["f1"])


@pytest.mark.parametrize("key", sorted(FLOORS))
def test_floor(seeds_eval, key):
    report, _ = seeds_eval
    block, metric = key.split(".", 1)
    value = report[block][metric]
    assert value >= FLOORS[key], f"{key} = {value:.4f} fell below its floor {FLOORS[key]}"


def test_split_filter(seeds_settings, tmp_path, capsys):
    report = run_eval(
        SEEDS_QA, seeds_settings, k=5, json_out=tmp_path / "r.json", report_out=tmp_path / "r.md",
        split="heldout",
    )
    assert capsys.readouterr().out == ""  # the library prints nothing: the CLI prints
    items, _ = load_qa(SEEDS_QA, split="heldout")
    assert report["n"] == len(items) > 0
    assert report["config"]["split"] == "heldout" and report["retrieval"]["k"] == 5


# --- SQuAD JSON ------------------------------------------------------------------------------

_PARIS = ("Paris is the capital and most populous city of France. The city has an estimated population of "
          "2,102,650 residents. Since the 17th century, Paris has been one of Europe's major centres of finance, "
          "diplomacy, commerce, fashion and science.")
_NILE = ("The Nile is a major north-flowing river in northeastern Africa. It flows into the Mediterranean Sea. "
         "The Nile is about 6,650 km long and has been considered the longest river in the world.")


def _squad_file(path: Path, v2: bool) -> Path:
    def qa(qid, q, answer=None, impossible=False):
        rec = {"id": qid, "question": q,
               "answers": [] if answer is None else [{"text": answer, "answer_start": (_PARIS + _NILE).find(answer) % 1000}]}
        if v2:
            rec["is_impossible"] = impossible
        return rec

    paris = [qa("p1", "What is the capital of France?", "Paris"),
             qa("p2", "How many residents does Paris have?", "2,102,650")]
    nile = [qa("n1", "How long is the Nile?", "about 6,650 km"), qa("n2", "Where does the Nile flow into?", "the Mediterranean Sea")]
    if v2:
        nile.append(qa("n3", "How long is the Amazon river in Peru?", impossible=True))
    data = {"version": "v2.0" if v2 else "1.1", "data": [
        {"title": "Paris", "paragraphs": [{"context": _PARIS, "qas": paris}]},
        {"title": "Nile", "paragraphs": [{"context": _NILE, "qas": nile}]},
    ]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("v2", [False, True], ids=["v1.1", "v2.0"])
def test_rag_eval_reads_squad_json(tmp_path, v2):
    from rag.config import Settings

    qa = _squad_file(tmp_path / "tiny-squad.json", v2)
    # threshold 0: every candidate is given, so the figures measure the plumbing and the reading
    settings = Settings(cache_dir=tmp_path / "cache", index_dir=tmp_path / "never-used", abstain_threshold=0.0)
    report = run_eval(qa, settings, k=5, json_out=tmp_path / "r.json", report_out=tmp_path / "r.md")
    n = 5 if v2 else 4
    assert report["n"] == n and report["abstention"]["n"] == (1 if v2 else 0)
    # the set's own articles are indexed apart from the user's index
    assert not (tmp_path / "never-used").exists()
    assert report["config"]["index_dir"].startswith(str(tmp_path / "cache" / "squad"))
    assert report["retrieval"]["hit@1"] == 1.0
    sq = report["answer"]["squad2"]
    assert sq["total"] == n and sq["HasAns_total"] == 4 and sq["NoAns_total"] == (1 if v2 else 0)
    assert sq["HasAns_f1"] >= 0.75, report["misses"]
    assert "## SQuAD 2.0 figures (official definition)" in (tmp_path / "r.md").read_text()
    assert set(report["answer"]["by_type"]) <= {"what", "how", "where", "which", "who", "when", "why", "other"}


def test_squad_json_errors_are_one_clear_line(tmp_path):
    from rag.errors import RagError
    from rag.evaluation.squad import load_squad, split_articles

    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"title": "x", "paragraphs": [{"qas": []}]}]}')
    with pytest.raises(RagError, match="not in the SQuAD layout"):
        load_squad(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(RagError, match="not SQuAD JSON"):
        load_squad(bad)
    with pytest.raises(RagError, match="Unknown split"):
        split_articles([], "heldout")


def test_the_squad_split_is_by_article_and_disjoint():
    from rag.evaluation.squad import SPLIT_FILE, load_squad, split_articles

    spec = json.loads(SPLIT_FILE.read_text())
    assert not set(spec["dev"]) & set(spec["test"])
    data = ROOT.parent / "shared" / "datasets" / "squad-explorer" / "train.json"
    if not data.is_file():
        pytest.skip("../shared/datasets/squad-explorer is not beside this checkout")
    arts = load_squad(data)
    parts = {s: {a.title for a in split_articles(arts, s)} for s in ("train", "dev", "test")}
    assert parts["dev"] == set(spec["dev"]) and parts["test"] == set(spec["test"])
    assert not parts["train"] & (parts["dev"] | parts["test"])
    assert len(parts["train"]) + len(parts["dev"]) + len(parts["test"]) == len(arts) == 38


def test_several_sets_in_one_report(seeds_settings, tmp_path, monkeypatch):
    """`rag eval --qa A --qa B`: each set's own report, and a combined one over all questions."""
    from rag.evaluation import run_eval_many

    monkeypatch.chdir(tmp_path)  # per-set reports go to eval/reports/ under the working directory
    squad = _squad_file(tmp_path / "tiny-squad.json", v2=True)
    settings = seeds_settings.model_copy(update={"cache_dir": tmp_path / "cache"})
    rep = run_eval_many([SEEDS_QA, squad], settings, k=5, json_out=tmp_path / "all.json", report_out=tmp_path / "all.md")
    seeds_n = len(load_qa(SEEDS_QA)[0])
    assert rep["n"] == seeds_n + 5
    rows = {r["set"]: r for r in rep["config"]["sets"]}
    assert list(rows) == ["seeds_qa", "tiny-squad", "combined"]
    assert rows["seeds_qa"]["n"] == seeds_n and rows["tiny-squad"]["n"] == 5 and rows["combined"]["n"] == seeds_n + 5
    ids = [q["id"] for q in rep["answer"]["questions"]]
    assert len(set(ids)) == len(ids) and "tiny-squad:p1" in ids and "seeds_qa:s001" in ids
    assert (tmp_path / "eval" / "reports" / "seeds_qa.json").is_file()
    assert (tmp_path / "eval" / "reports" / "tiny-squad.json").is_file()
    assert "## Sets" in (tmp_path / "all.md").read_text()


def test_cli_refuses_a_baseline_for_several_sets(tmp_path):
    from typer.testing import CliRunner

    from rag.cli import app

    out = CliRunner().invoke(app, ["eval", "--qa", str(SEEDS_QA), "--qa", str(SEEDS_QA), "--baseline", str(tmp_path / "x.json")])
    assert out.exit_code != 0 and "one --qa set at a time" in out.output
    assert "Traceback" not in out.output
