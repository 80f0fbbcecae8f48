"""``rag build --engine ray``: a local Ray cluster (started here, 127.0.0.1, 2 CPUs) builds the
seeds plus a few hundred BBC articles; the result must equal a local build's, an incremental
build must send only new and changed articles, a killed worker must not lose the live index,
and serving must never import Ray.

The cluster tests are ``slow`` and ``ray`` (``make test`` runs them in its slow pass). The BBC part
is skipped cleanly when ../shared/corpora/bbc is not here (the seeds alone are then built).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rag.errors import RagError
from rag.pipeline import Pipeline

from ..conftest import BBC, ROOT, SEEDS, make_settings

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install -e '.[ray]')")
cluster_test = [pytest.mark.slow, pytest.mark.ray, needs_ray]

BBC_EVERY = 8  # every 8th BBC file (sorted): 279 articles from all five sections
QUESTION = "What share of OpenAI does Microsoft hold?"


# -- fast: no cluster ----------------------------------------------------------------------
def test_pool_leaves_a_cpu_for_reading():
    from rag.ray_build import pool_plan

    # 2 CPUs: two 1-CPU actors would hold both and the read task would wait forever.
    p = pool_plan(2.0)
    assert p["actors"] == 1 and p["actors"] * p["actor_cpus"] + p["read_cpus"] <= 2.0
    assert p["threads"] == 2  # the one actor runs its model on both cores, as a local build does
    for cpus in (1.0, 0.5, 3.0, 8.0, 64.0):
        p = pool_plan(cpus)
        assert p["actors"] >= 1
        assert p["actors"] * p["actor_cpus"] + p["read_cpus"] <= cpus + 1e-9, cpus
        if cpus >= 2:  # whole CPUs per actor, so a whole free CPU remains somewhere for the reads
            assert p["actor_cpus"] == 1.0 and p["actors"] == int(cpus) - 1
    assert pool_plan(1.0)["actor_cpus"] == 0.5


def test_only_the_ray_module_imports_ray():
    """Ray stays an optional extra: nothing but rag/ray_build.py imports it."""
    importers = []
    for path in (ROOT / "rag").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if any(n == "ray" or n.startswith("ray.") for n in names):
                importers.append(path.name)
    assert sorted(set(importers)) == ["ray_build.py"]


def test_serving_never_imports_ray(seeds_pipeline, tmp_path):
    """A process that answers questions (CLI ask, the app's pipeline, the eval) never loads Ray."""
    code = f"""
import sys
from rag.config import Settings
from rag.pipeline import Pipeline
import rag.cli, rag.evaluation, rag.feedback
p = Pipeline(Settings(articles_dir={str(SEEDS)!r}, index_dir={str(seeds_pipeline.settings.index_dir)!r}))
p.ensure_index()
a = p.ask({QUESTION!r})
assert a.answer, a
loaded = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
print("RAY_MODULES", loaded)
"""
    env = {**os.environ, "RAG_ENGINE": "ray"}  # even with the build engine set to ray
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "RAY_MODULES []" in r.stdout, r.stdout


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@needs_ray
def test_unreachable_cluster_is_one_line(tmp_path):
    address = f"127.0.0.1:{_closed_port()}"
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "rag.cli", "build", "--engine", "ray", "--ray-address", address,
         "--articles", str(SEEDS), "--index", str(tmp_path / "index")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert address in lines[0] and "Cannot reach the Ray cluster" in lines[0]
    assert "Traceback" not in r.stderr + r.stdout
    assert time.perf_counter() - t < 60  # ray.init alone retries for minutes
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_bad_address_is_one_line():
    from rag.ray_build import RayClusterError, _probe

    with pytest.raises(RayClusterError, match="Invalid Ray address 'nonsense'"):
        _probe("nonsense")


# -- a local Ray cluster ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU Ray instance on 127.0.0.1, started and stopped here; yields its address."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed")
    saved = {k: os.environ.get(k) for k in ("RAY_USAGE_STATS_ENABLED", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # node address 127.0.0.1: servers on loopback only
    import logging

    import ray

    ctx = ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 * 1024,
                   logging_level=logging.ERROR, log_to_driver=False)
    address = ctx.address_info["gcs_address"]
    assert address.startswith("127.0.0.1:"), address
    try:
        yield address
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The seeds, every 8th BBC article, an exact duplicate, an empty and a binary file."""
    folder = tmp_path_factory.mktemp("ray-corpus") / "articles"
    shutil.copytree(SEEDS, folder)
    if BBC.exists():
        for p in sorted(BBC.iterdir())[::BBC_EVERY]:
            shutil.copyfile(p, folder / p.name)
    first = sorted(SEEDS.iterdir())[0]
    shutil.copyfile(first, folder / "zz_copy_of_first.txt")
    (folder / "empty.txt").write_text("")
    (folder / "blob.txt").write_bytes(bytes(range(256)) * 8)
    return folder


def _settings(articles: Path, index: Path, **kw):
    # Several shards either way: 16 files a shard with the BBC part, 2 with the seeds alone.
    return make_settings(articles_dir=articles, index_dir=index, ray_shard_files=16 if BBC.exists() else 2, **kw)


@pytest.fixture(scope="module")
def built(ray_cluster, corpus, tmp_path_factory):
    """The same folder built locally and on the cluster: (local pipe, local report, ray pipe, ray report)."""
    root = tmp_path_factory.mktemp("ray-indexes")
    local = Pipeline(_settings(corpus, root / "local"))
    t = time.perf_counter()
    local_report = local.build(engine="local")
    local_s = time.perf_counter() - t
    on_ray = Pipeline(_settings(corpus, root / "ray"))
    t = time.perf_counter()
    ray_report = on_ray.build(engine="ray")
    print(f"\nlocal build {local_s:.1f} s, Ray build {time.perf_counter() - t:.1f} s "
          f"({ray_report.n_articles} articles, {ray_report.n_chunks} chunks)")
    return local, local_report, on_ray, ray_report


def _lines(vdir: Path, name: str) -> list:
    return [json.loads(line) for line in (vdir / name).read_text(encoding="utf-8").splitlines()]


def _assert_same_index(a, b) -> None:
    """Same articles, chunks (ids, text, offsets), BM25 tokens and manifest; vectors cosine >= 0.9999."""
    da, db = a.index(), b.index()
    assert _lines(da.path, "articles.jsonl") == _lines(db.path, "articles.jsonl")
    assert _lines(da.path, "chunks.jsonl") == _lines(db.path, "chunks.jsonl")
    assert _lines(da.path, "bm25_tokens.jsonl") == _lines(db.path, "bm25_tokens.jsonl")
    ma, mb = (dict(d.manifest) for d in (da, db))
    for m in (ma, mb):
        for key in ("built_at", "version", "checksums", "manifest_sha256"):  # the last two hash the files and the manifest itself (built_at in it)
            m.pop(key, None)
    assert ma == mb
    assert da.vectors.shape == db.vectors.shape and len(da.vectors) > 0
    cos = np.sum(da.vectors * db.vectors, axis=1)
    assert cos.min() >= 0.9999, cos.min()
    assert da.sent_vectors.shape == db.sent_vectors.shape
    assert np.sum(da.sent_vectors * db.sent_vectors, axis=1).min() >= 0.9999
    # Stronger, on one machine: each chunk is padded by its own length only (embed.PAD_MULTIPLE),
    # so shard-by-shard embedding gives the very same bits as one local pass, where the CPU's
    # kernels give a row the same bits whatever else is in its batch (AMD EPYC with AVX512-BF16:
    # yes). On Intel CPUs with AMX, torch's bf16 kernels depend on the batch's row count: there
    # the vectors agree to bf16 rounding, not bit for bit.
    if batch_invariant(a):
        assert np.array_equal(da.vectors, db.vectors) and np.array_equal(da.sent_vectors, db.sent_vectors)
    else:
        assert np.abs(da.vectors - db.vectors).max() <= BF16_BATCH_TOL
        assert np.abs(da.sent_vectors - db.sent_vectors).max() <= BF16_BATCH_TOL


BF16_BATCH_TOL = 3e-3  # largest |difference| of a unit vector's component between batchings seen: 1.1e-3 (Intel AMX, bf16)
_INVARIANT: dict[str, bool] = {}


def batch_invariant(pipe) -> bool:
    """Whether the build embedder gives each chunk the same bits alone-ish (batches of 3) as in one
    pass over 40 chunks of the index: a property of the CPU's kernels, probed once."""
    key = pipe.settings.build_backend
    if key not in _INVARIANT:
        emb = pipe.build_embedder
        texts = [c.text for c in pipe.index().chunks[:40]]
        together = emb.encode(texts)
        apart = np.vstack([emb.encode(texts[i : i + 3]) for i in range(0, len(texts), 3)])
        _INVARIANT[key] = bool(np.array_equal(together, apart))
        print(f"\nbuild embedder ({key}) batch-invariant on this CPU: {_INVARIANT[key]} "
              f"(max |diff| {np.abs(together - apart).max():.2e})")
    return _INVARIANT[key]


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_ray_build_equals_local_build(built, corpus):
    local, local_report, on_ray, ray_report = built
    _assert_same_index(local, on_ray)
    assert ray_report.engine == "ray" and local_report.engine == "local"
    assert ray_report.cluster["address"] == "local" or ray_report.cluster["cpus"] == 2
    assert ray_report.cluster["shards"] >= 2  # the merge really went shard by shard
    # The same report: every file accounted for, with the same reasons.
    for field in ("skipped", "duplicates", "warnings", "added", "n_articles", "n_chunks"):
        assert getattr(ray_report, field) == getattr(local_report, field), field
    reasons = {s.file: s.reason for s in ray_report.skipped}
    assert reasons["empty.txt"] == "empty file" and "binary" in reasons["blob.txt"]
    assert reasons["zz_copy_of_first.txt"].startswith("exact duplicate of")
    # Both versions answer the same.
    qa, qb = local.ask(QUESTION), on_ray.ask(QUESTION)
    assert qa.answer and qa.answer == qb.answer
    assert [(c.file, c.start, c.end) for c in qa.citations] == [(c.file, c.start, c.end) for c in qb.citations]
    # Nothing of the build is left beside the index.
    assert not list(Path(on_ray.settings.index_dir).glob(".build-*"))


def _diff(a, b, path="", rel: float = 0.0) -> list[str]:
    """Where ``a`` and ``b`` differ; numbers within ``rel`` (relative, or absolute below 1) count as equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in _diff(a.get(k), b.get(k), f"{path}.{k}", rel)]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]", rel)]
    if rel and isinstance(a, float) and isinstance(b, float) and abs(a - b) <= rel * max(1.0, abs(a), abs(b)):
        return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_ray_and_local_eval_figures_identical(built, tmp_path):
    """The same figures: bit for bit where the CPU's kernels are batch-invariant (``batch_invariant``)."""
    from rag.evaluation import run_eval

    local, _, on_ray, _ = built
    reports = []
    for name, pipe in (("local", local), ("ray", on_ray)):
        r = run_eval(ROOT / "eval" / "seeds_qa.jsonl", pipe.settings, json_out=tmp_path / f"{name}.json",
                     report_out=tmp_path / f"{name}.md")
        assert r["config"]["index"]["version"] == pipe.index().version  # the index as built, not a rebuild
        reports.append({k: r[k] for k in ("retrieval", "answer", "abstention", "misses")})
    if batch_invariant(local):
        assert reports[0] == reports[1], _diff(reports[0], reports[1])
    else:  # vectors equal to bf16 rounding: the same hits, answers and figures; scores to 1e-3
        assert not _diff(reports[0], reports[1], rel=1e-3), _diff(reports[0], reports[1], rel=1e-3)
    assert reports[0]["retrieval"]["hit@5"] > 0.9


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_ray_incremental_build_sends_only_new_articles(built, corpus, tmp_path):
    _, _, on_ray, first = built
    folder = tmp_path / "articles"
    shutil.copytree(corpus, folder)
    index = tmp_path / "index"
    shutil.copytree(on_ray.settings.index_dir, index)
    pipe = Pipeline(_settings(folder, index))

    same = pipe.build(engine="ray")
    assert same.unchanged and same.cluster["articles_embedded"] == 0 and same.cluster["chunks_embedded"] == 0
    assert same.cluster["files_hashed"] == len(list(folder.iterdir()))
    # Files whose bytes match the previous version are only hashed. Read again: the files the
    # manifest holds no hash for (skipped ones, and duplicates indexed under another name).
    not_hashed = len(first.skipped)
    assert same.cluster["files_read"] == not_hashed

    extra = sorted(BBC.iterdir())[1::BBC_EVERY][:6] if BBC.exists() else []
    for p in extra:
        shutil.copyfile(p, folder / p.name)
    (folder / "new_story.txt").write_text(
        "Zorblax opens plant in Leeds\nThe robotics firm Zorblax said on Monday it will open a plant in Leeds "
        "employing 740 people.\n", encoding="utf-8")
    changed = sorted(SEEDS.iterdir())[1].name
    with open(folder / changed, "a", encoding="utf-8") as f:
        f.write("\nA correction was appended to this article on Tuesday.\n")
    removed = sorted(SEEDS.iterdir())[2].name
    (folder / removed).unlink()

    report = pipe.build(engine="ray")
    new_files = sorted([p.name for p in extra] + ["new_story.txt"])
    assert sorted(report.added) == new_files
    assert report.updated == [changed] and report.removed == [removed]
    # Only the new and changed articles were chunked and embedded on the cluster.
    assert report.cluster["articles_embedded"] == len(new_files) + 1
    assert report.cluster["files_read"] == len(new_files) + 1 + not_hashed
    data = pipe.index()
    sent = {data.file_to_id[f] for f in [*new_files, changed]}
    assert report.cluster["chunks_embedded"] == sum(1 for c in data.chunks if c.article_id in sent)
    assert report.embedded_chunks == report.cluster["chunks_embedded"] > 0
    assert len(report.reused) == first.n_articles - 2  # all but the changed and the removed one

    # And the result is what a local incremental build from the same previous index gives (both
    # embed a small update with the question backend, by the small_build_chars rule).
    local_index = tmp_path / "local"
    shutil.copytree(built[0].settings.index_dir, local_index)
    local = Pipeline(_settings(folder, local_index))
    local_report = local.build(engine="local")
    assert local_report.added == report.added and local_report.embedded_chunks == report.embedded_chunks
    _assert_same_index(local, pipe)


def _embed_actor_pids() -> list[int]:
    """Processes of the embedding actors (Ray titles them after the Ray Data operator)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"MapBatches(EmbedShards)" in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_killed_worker_keeps_previous_version_answering(ray_cluster, built, corpus, tmp_path):
    """SIGKILL the embedding actor mid-build: Ray restarts it and retries the shard (or the build
    fails with one clear line); either way the previous version answers throughout."""
    if not BBC.exists():
        pytest.skip(f"{BBC} is missing: the seeds alone embed too fast to kill a worker mid-build")
    local = built[0]
    index = tmp_path / "index"
    old = Pipeline(_settings(SEEDS, index))
    old.build(engine="local")
    v1 = old.index().version
    pipe = Pipeline(_settings(corpus, index))
    outcome: dict = {}

    def run():
        try:
            outcome["report"] = pipe.build(engine="ray", full=True)
        except RagError as exc:
            outcome["error"] = str(exc)

    th = threading.Thread(target=run)
    th.start()
    killed = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and th.is_alive() and killed is None:
        shards = list(index.glob(".build-ray-*/shard-*.json"))
        pids = _embed_actor_pids()
        if shards and pids:  # at least one shard done, more to come
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
            break
        time.sleep(0.2)
    assert killed is not None, "the build ended before a worker could be killed"
    assert th.is_alive()
    # The live version answers while the build goes on.
    a = old.ask(QUESTION)
    assert a.answer and a.index_version == v1
    th.join(900)
    assert not th.is_alive()
    if "error" in outcome:  # allowed: a clear line, and the old version still live
        print("\nbuild after the kill failed with:", outcome["error"])
        assert "\n" not in outcome["error"] and "previous index version is still live" in outcome["error"]
        assert old.index().version == v1 and old.ask(QUESTION).answer
    else:
        print(f"\nbuild after the kill completed: {outcome['report'].n_chunks} chunks")
        assert outcome["report"].version != v1
        _assert_same_index(local, pipe)
    assert not list(index.glob(".build-*"))


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_cli_builds_on_a_running_cluster(ray_cluster, tmp_path):
    """`rag build --engine ray --ray-address ADDR` from another process: progress bar, report, index."""
    index = tmp_path / "index"
    r = subprocess.run(
        [sys.executable, "-m", "rag.cli", "build", "--engine", "ray", "--ray-address", ray_cluster,
         "--articles", str(SEEDS), "--index", str(index)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"on Ray ({ray_cluster}: 1 node(s), 2 CPUs, 1 embedding actor(s))" in r.stdout, r.stdout
    assert "embedding chunks" in r.stderr and "writing index" in r.stderr
    assert "Traceback" not in r.stderr
    report = Pipeline(make_settings(articles_dir=SEEDS, index_dir=index)).ask(QUESTION)
    assert report.answer


@pytest.fixture(scope="module")
def ray_seeds_index(ray_cluster, tmp_path_factory) -> Path:
    """The seeds built on the cluster: a previous version for an incremental Ray build to reuse."""
    index = tmp_path_factory.mktemp("ray-seeds") / "index"
    Pipeline(_settings(SEEDS, index)).build(engine="ray")
    return index


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
@pytest.mark.parametrize("name", ["sentences.npy", "bm25_tokens.jsonl"])
def test_ray_build_never_reuses_a_damaged_file(ray_seeds_index, articles_copy, tmp_path, name):
    """A Ray build checks what it reuses as a local build does (rag.build.plan): a flipped byte in a
    file that loading does not hash is caught, and everything is read and embedded again."""
    from rag import integrity
    from rag.index import IndexStore

    assert name in integrity.NOT_HASHED_AT_LOAD
    index = tmp_path / "index"
    shutil.copytree(ray_seeds_index, index)
    vdir = index / "versions" / (index / "CURRENT").read_text().strip()
    data = bytearray((vdir / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (vdir / name).write_bytes(bytes(data))
    (articles_copy / "new.txt").write_text("Quokka Bureau reports record zebra index\n\nThe zebra index rose to 7.5.\n")

    pipe = Pipeline(_settings(articles_copy, index))
    report = pipe.build(engine="ray")
    assert report.reused == [] and report.added == ["new.txt"]
    assert any(name in w and "re-embedding everything" in w for w in report.warnings), report.warnings
    assert report.embedded_chunks == report.n_chunks and report.cluster["articles_embedded"] == report.n_articles
    assert IndexStore(index).verify()["checksums"] is True
    # The new version holds the undamaged vectors and tokens: those of the seeds' own build.
    new, old = pipe.index(), Pipeline(_settings(SEEDS, ray_seeds_index)).index()
    assert sorted(report.updated) == sorted(a.file for a in old.articles.values())
    rows = [i for i, c in enumerate(new.chunks) if c.article_id in old.articles]
    assert [new.chunks[i].id for i in rows] == [c.id for c in old.chunks]
    sent_rows = np.concatenate([new.chunk_sentence_vectors(i) for i in rows])
    assert np.array_equal(sent_rows, old.sent_vectors)
    new_tokens = _lines(new.path, "bm25_tokens.jsonl")
    assert [new_tokens[i] for i in rows] == _lines(old.path, "bm25_tokens.jsonl")
