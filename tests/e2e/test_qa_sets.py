"""The gold Q&A sets: every answer occurs verbatim in a listed source; the seed set is big enough."""

from __future__ import annotations

import json

import pytest

from eval.check_qa import check

from ..conftest import BBC, ROOT, SEEDS


def test_seed_set_answers_are_verbatim_in_their_sources():
    errors, by_type, by_split, _, n = check(ROOT / "eval" / "seeds_qa.jsonl", SEEDS)
    assert errors == []
    assert n >= 60
    assert by_type["unanswerable"] >= 12
    assert by_split["heldout"] > 0 and by_split["dev"] > 0


def test_seed_answers_are_found_by_plain_reading():
    """An independent check of the same property, without the checker."""
    for line in (ROOT / "eval" / "seeds_qa.jsonl").read_text().splitlines():
        q = json.loads(line)
        texts = [(SEEDS / s).read_text(encoding="utf-8") for s in q["sources"]]
        for answer in q["answers"]:
            assert any(answer in t for t in texts), (q["id"], answer)


@pytest.mark.skipif(not BBC.exists(), reason="the BBC corpus (../shared/corpora/bbc) is not here")
def test_bbc_set_answers_are_verbatim_in_their_sources():
    errors, *_ = check(ROOT / "eval" / "bbc_qa.jsonl", BBC)
    assert errors == []


@pytest.mark.skipif(not BBC.exists(), reason="the BBC corpus (../shared/corpora/bbc) is not here")
def test_bbc_heldout_set_answers_are_verbatim_and_both_splits_have_both_kinds():
    errors, by_type, by_split, by_type_split, n = check(ROOT / "eval" / "bbc_heldout_qa.jsonl", BBC)
    assert errors == []
    assert n >= 40 and by_type["unanswerable"] >= 12
    for split in ("dev", "heldout"):
        assert by_type_split[("unanswerable", split)] > 0
        assert by_split[split] - by_type_split[("unanswerable", split)] > 0
