"""Checksums of index files (rag/integrity.py): a flipped byte in any file of a real built seeds
index is one clear line naming the file and saying ``rag build --full``, from ``rag verify``,
from loading (for the files loading reads whole), from the CLI and from the Streamlit app."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag import integrity
from rag.errors import IndexCorruptError
from rag.index import IndexStore
from rag.pipeline import Pipeline
from tests.conftest import ROOT, SEEDS, make_settings

QUESTION = "What share of OpenAI does Microsoft hold?"


@pytest.fixture
def index_copy(seeds_pipeline, tmp_path) -> Path:
    dst = tmp_path / "index"
    shutil.copytree(seeds_pipeline.settings.index_dir, dst)
    return dst


def vdir_of(index: Path) -> Path:
    return index / "versions" / (index / "CURRENT").read_text().strip()


def flip_byte(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    i = min(len(data) - 1, int(len(data) * where))
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def recorded_files(seeds_pipeline) -> list[str]:
    return sorted(seeds_pipeline.index().manifest["checksums"]["files"])


def test_every_file_of_a_built_version_is_recorded(seeds_pipeline):
    vdir = seeds_pipeline.index().path
    files = recorded_files(seeds_pipeline)
    on_disk = sorted(p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert files == on_disk
    # The kinds the issue names are all there: chunk store, vectors, BM25.
    assert {"chunks.jsonl", "articles.jsonl", "faiss.index", "sentences.npy", "bm25_tokens.jsonl"} <= set(files)
    assert any(f.startswith("bm25/") for f in files)


def test_untouched_index_verifies(index_copy):
    result = IndexStore(index_copy).verify()
    assert result["checksums"] is True
    assert result["hashed_files"] == result["files"] >= 9
    assert result["hashed_bytes"] == sum(p.stat().st_size for p in vdir_of(index_copy).rglob("*")
                                         if p.is_file() and p.name != "manifest.json")


# Every file kind of the seeds index (listed here so that a new file kind must be added on purpose).
FILES = ["articles.jsonl", "chunks.jsonl", "faiss.index", "sentences.npy", "bm25_tokens.jsonl",
         "bm25/data.csc.index.npy", "bm25/indices.csc.index.npy", "bm25/indptr.csc.index.npy",
         "bm25/vocab.index.json", "bm25/params.index.json"]


def test_the_list_below_covers_every_file(seeds_pipeline):
    assert sorted(FILES) == recorded_files(seeds_pipeline)


@pytest.mark.parametrize("name", FILES)
def test_flipped_byte_is_one_clear_error(index_copy, name):
    flip_byte(vdir_of(index_copy) / name)
    with pytest.raises(IndexCorruptError) as exc:
        IndexStore(index_copy).verify()
    msg = str(exc.value)
    assert name in msg and "rag build --full" in msg and "\n" not in msg
    store = IndexStore(index_copy)
    if name in integrity.NOT_HASHED_AT_LOAD:
        # Loading checks only the size of these (memory-mapped / not read when serving) ...
        data = store.load(make_settings().model_name)
        assert data.checked["hashed_files"] == data.checked["files"] - len(integrity.NOT_HASHED_AT_LOAD)
    else:
        with pytest.raises(IndexCorruptError, match=name.replace(".", r"\.")):
            store.load(make_settings().model_name)


@pytest.mark.parametrize("name", sorted(integrity.NOT_HASHED_AT_LOAD))
def test_incremental_build_never_reuses_a_damaged_file(index_copy, articles_copy, name):
    """... and a build hashes them before reusing anything, so the damage is not carried on."""
    flip_byte(vdir_of(index_copy) / name)
    (articles_copy / "new.txt").write_text("Quokka Bureau reports record zebra index\n\nThe zebra index rose to 7.5.\n")
    pipe = Pipeline(make_settings(articles_dir=articles_copy, index_dir=index_copy, embed_backend="onnx",
                                  build_backend="onnx"))
    report = pipe.build()
    assert report.reused == []
    assert any(name in w and "re-embedding everything" in w for w in report.warnings)
    assert report.embedded_chunks == report.n_chunks
    assert IndexStore(index_copy).verify()["checksums"] is True


def test_size_change_and_missing_file_name_the_file(index_copy):
    vdir = vdir_of(index_copy)
    with open(vdir / "sentences.npy", "ab") as f:
        f.write(b"\0")
    with pytest.raises(IndexCorruptError, match=r"sentences\.npy changed size.*rag build --full"):
        IndexStore(index_copy).load(make_settings().model_name)
    (vdir / "bm25" / "vocab.index.json").unlink()
    with pytest.raises(IndexCorruptError, match=r"bm25/vocab\.index\.json missing.*rag build --full"):
        IndexStore(index_copy).verify()


def test_edited_manifest_is_caught(index_copy):
    path = vdir_of(index_copy) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["n_chunks"] += 1  # still valid JSON, still compatible: only its checksum tells
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match=r"manifest\.json does not match.*rag build --full"):
        IndexStore(index_copy).load(make_settings().model_name)


def test_renamed_checksum_key_cannot_switch_checks_off(index_copy):
    """Issue 24, reproduction 4: `manifest_sha256` renamed (one byte), then a name replaced by another
    of the same length in the articles and chunks: refused by load, ask and verify, never answered."""
    vdir = vdir_of(index_copy)
    raw = (vdir / "manifest.json").read_bytes()
    assert raw.count(b'"manifest_sha256"') == 1
    (vdir / "manifest.json").write_bytes(raw.replace(b'"manifest_sha256"', b'"manifert_sha256"'))
    for name in ("articles.jsonl", "chunks.jsonl"):
        text = (vdir / name).read_bytes()
        assert b"Microsoft" in text
        (vdir / name).write_bytes(text.replace(b"Microsoft", b"Evilcorpx"))
    with pytest.raises(IndexCorruptError, match=r"manifest\.json records no checksums.*rag build --full"):
        IndexStore(index_copy).load(make_settings().model_name)
    for args in (("verify",), ("ask", QUESTION)):
        r = run_cli(*args, "--index", str(index_copy))
        assert r.returncode == 1, (args, r.stdout)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "manifest.json records no checksums" in lines[0], r.stderr
        assert "rag build --full" in lines[0] and "Evilcorpx" not in r.stdout


@pytest.mark.parametrize("key", ["checksums", "manifest_sha256", "algorithm", "files"])
def test_no_one_byte_edit_of_a_key_turns_checks_off(index_copy, key):
    vdir = vdir_of(index_copy)
    raw = (vdir / "manifest.json").read_bytes()
    (vdir / "manifest.json").write_bytes(raw.replace(f'"{key}"'.encode(), f'"{key[:-1]}_"'.encode(), 1))
    flip_byte(vdir / "chunks.jsonl")
    with pytest.raises(IndexCorruptError, match="rag build --full"):
        IndexStore(index_copy).load(make_settings().model_name)
    with pytest.raises(IndexCorruptError, match="manifest.json"):
        IndexStore(index_copy).verify()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "COLUMNS": "400"})


def test_cli_verify_and_ask_on_a_damaged_index(index_copy):
    ok = run_cli("verify", "--index", str(index_copy))
    assert ok.returncode == 0, ok.stderr
    assert "files match their checksums" in ok.stdout
    flip_byte(vdir_of(index_copy) / "chunks.jsonl")
    for args in (("verify",), ("ask", QUESTION), ("status",)):
        r = run_cli(*args, "--index", str(index_copy))
        assert r.returncode == 1, (args, r.stdout)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, r.stderr
        assert "chunks.jsonl" in lines[0] and "rag build --full" in lines[0]
        assert "Traceback" not in r.stderr and r.stdout.strip() == ""


def test_rebuild_full_repairs_it(index_copy):
    flip_byte(vdir_of(index_copy) / "chunks.jsonl")
    pipe = Pipeline(make_settings(articles_dir=SEEDS, index_dir=index_copy, embed_backend="onnx", build_backend="onnx"))
    pipe.build(full=True)
    assert IndexStore(index_copy).verify()["checksums"] is True
    answer = pipe.ask(QUESTION)
    for c in answer.citations:
        assert pipe.index().articles[c.article_id].text[c.start : c.end] == c.quote


def test_app_shows_one_line_for_a_damaged_index(monkeypatch, index_copy):
    from streamlit.testing.v1 import AppTest

    flip_byte(vdir_of(index_copy) / "faiss.index")
    monkeypatch.setenv("RAG_INDEX_DIR", str(index_copy))
    monkeypatch.setenv("RAG_ARTICLES_DIR", str(SEEDS))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert len(at.error) == 1
    msg = at.error[0].value.replace("\\", "")  # markdown-escaped
    assert "faiss.index" in msg and "rag build --full" in msg
    assert not at.chat_message  # no answer was shown


# Same-length edits of the header of sentences.npy: its size still matches, and loading does not hash it.
HEADER_DAMAGE = [(b"'<f4'", b"'<f5'"), (b"'<f4'", b"'|O8'"), (b"False", b"Fals_"), (b"False,", b"True ,"),
                 (b"{'descr'", b"['descr'"), (b"), }", b"),)}")]


@pytest.mark.parametrize("old,new", HEADER_DAMAGE)
def test_damaged_sentences_header_is_one_line_at_load(index_copy, old, new):
    path = vdir_of(index_copy) / "sentences.npy"
    raw = path.read_bytes()
    assert raw[:128].count(old) == 1 and len(old) == len(new)
    path.write_bytes(raw.replace(old, new, 1))
    with pytest.raises(IndexCorruptError) as exc:
        IndexStore(index_copy).load(make_settings().model_name)
    msg = str(exc.value)
    assert "\n" not in msg and "rag verify" in msg and "rag build --full" in msg, msg


def test_damaged_sentences_header_in_ask_status_build_and_app(index_copy, articles_copy, monkeypatch):
    """Issue 24, reproduction 5: one line, never a traceback, in ask, status, an incremental build
    and the app at start."""
    from streamlit.testing.v1 import AppTest

    path = vdir_of(index_copy) / "sentences.npy"
    path.write_bytes(path.read_bytes().replace(b"), }", b"),)}", 1))  # numpy raises SyntaxError
    for args in (("ask", QUESTION), ("status",)):
        r = run_cli(*args, "--index", str(index_copy))
        assert r.returncode == 1 and "Traceback" not in r.stderr, (args, r.stderr)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "rag verify" in lines[0] and "rag build --full" in lines[0], r.stderr
    monkeypatch.setenv("RAG_INDEX_DIR", str(index_copy))
    monkeypatch.setenv("RAG_ARTICLES_DIR", str(articles_copy))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception and len(at.error) == 1
    assert "rag build --full" in at.error[0].value.replace("\\", "")
    # An incremental build reuses nothing from the damaged version, says so, and writes a sound one.
    (articles_copy / "new.txt").write_text("Quokka Bureau reports record zebra index\n\nThe zebra index rose to 7.5.\n")
    r = run_cli("build", "--articles", str(articles_copy), "--index", str(index_copy), "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    report = json.loads(r.stdout)
    assert report["reused"] == [] and any("previous index not reused" in w and "rag build --full" in w
                                          for w in report["warnings"])
    assert IndexStore(index_copy).verify()["checksums"] is True
