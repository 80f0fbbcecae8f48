"""The build's pure stages (rag/build.py): sorting files against the previous version, the plan
of a first build, the small-update rule, and assembling vectors in memory or spilled to disk."""

from __future__ import annotations

import numpy as np
import pytest

from rag import build
from rag.config import Settings
from rag.errors import IngestError
from rag.ingest import IngestResult
from rag.types import Article, BuildReport, Chunk, Skipped


def article(i: int, text: str = "x", aliases: list[str] | None = None) -> Article:
    return Article(id=f"{i:016x}", file=f"{i}.txt", aliases=aliases or [], title=f"T{i}", text=text,
                   source_sha256=f"{i:064x}")


def chunks_of(a: Article, n: int) -> list[Chunk]:
    return [Chunk(id=f"{a.id}-{k}", article_id=a.id, index=k, start=k, end=k + 1, text=f"word{k} of {a.title}",
                  n_tokens=3, sentences=[(k, k + 1)]) for k in range(n)]


def test_first_build_plan_adds_everything():
    arts = [article(1, aliases=["1-copy.txt"]), article(2)]
    report = BuildReport(articles_dir="a", index_dir="i", engine="local")
    plan = build.plan(arts, None, report, t0=0.0)
    assert plan is not None and plan.prev is None and plan.new_articles == arts
    assert plan.files == {"1.txt": arts[0].id, "1-copy.txt": arts[0].id, "2.txt": arts[1].id}
    assert report.added == ["1.txt", "2.txt"] and report.reused == [] and report.removed == []
    assert report.n_articles == 2 and not report.unchanged


def test_require_articles_names_every_skipped_file():
    ingest = IngestResult()
    ingest.skipped.append(Skipped(file="empty.txt", reason="empty file"))
    with pytest.raises(IngestError, match=r"No usable articles in f/ \(empty.txt: empty file\)"):
        build.require_articles(ingest, "f")


def test_small_update_rule():
    s = Settings(build_backend="torch", embed_backend="onnx", small_build_chars=100)
    assert build.small_update(s, 99) and not build.small_update(s, 100)
    assert not build.small_update(Settings(build_backend="onnx", embed_backend="onnx"), 0)


@pytest.mark.parametrize("spill", [False, True])
def test_assemble_keeps_file_order_and_tokenizes_what_has_no_tokens(tmp_path, spill):
    a, b = article(1), article(2)
    parts = {a.id: chunks_of(a, 2), b.id: chunks_of(b, 3)}
    rng = np.random.default_rng(0)
    vecs = {k: rng.standard_normal((len(v), 4)).astype(np.float32) for k, v in parts.items()}
    sents = {k: rng.standard_normal((len(v), 4)).astype(np.float32) for k, v in parts.items()}
    given = {b.id: [["given"]] * 3}  # b's tokens come with it (as from a Ray read task); a's are made here

    def new_parts(article_id):
        return parts[article_id], vecs[article_id], sents[article_id], given.get(article_id)

    chunks, v, s, tokens = build.assemble([b, a], new_parts, None, dim=4, spill=tmp_path if spill else None)
    assert [c.id for c in chunks] == [c.id for c in parts[b.id] + parts[a.id]]
    assert np.array_equal(np.asarray(v), np.concatenate([vecs[b.id], vecs[a.id]]))
    assert np.array_equal(np.asarray(s), np.concatenate([sents[b.id], sents[a.id]]))
    assert tokens[:3] == [["given"]] * 3
    assert all(t and t != ["given"] for t in tokens[3:])
    assert isinstance(v, np.memmap) == spill


def test_assemble_of_nothing_has_the_dimension():
    chunks, v, s, tokens = build.assemble([], lambda _: None, None, dim=7)
    assert chunks == [] and tokens == [] and v.shape == (0, 7) and s.shape == (0, 7)
