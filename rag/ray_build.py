"""``rag build --engine ray``: read, clean, chunk and embed on a Ray cluster; publish as a local build.

Ray is an optional extra (``pip install -e '.[ray]'``); only this module imports it, and only a
build with ``engine="ray"`` imports this module, so serving never loads Ray.

How a build runs (design for an archive of millions of articles, not for the tests):

1. The driver (the process running ``rag build``) takes the build lock, lists the folder and
   cuts the sorted file names into *shards* of ``ray_shard_files`` (64) consecutive files. For every
   file the previous version indexed under that name, the shard carries the hash of its raw
   bytes, and the cluster gets the ids of the stored articles (8 bytes each).
2. **Read tasks** (Ray Data ``map``, one task per shard, run to their end first) hash each file; a file whose bytes are
   unchanged goes no further. Every other file is read and cleaned (``rag.ingest``); an
   article whose cleaned text is not stored yet is chunked (``rag.chunk``) and its chunks
   tokenized for BM25, exactly as a local build does. Only these new or changed articles
   reach the embedding stage.
3. **Embedding actors** (Ray Data ``map_batches`` with an actor pool: each actor loads the
   embedder once) embed a shard's chunks and sentences and write the shard's results as files
   in a scratch folder beside the index (``<index>/.build-ray-*/``, on the file system that the
   cluster and the driver share): ``shard-N.json`` (files, articles, chunks, BM25 tokens) and
   ``shard-N.vectors.npy`` / ``shard-N.sentences.npy``. A shard is written under a temporary
   name and renamed, so a task that Ray retries after a worker died rewrites it whole.
4. The driver merges the shards' records in file order (the same duplicate and skip rules as
   ``rag.ingest.load_folder``) and plans the build with ``rag.build.plan``, as a local build
   does: the same added / updated / reused / removed sorting, the same "up to date" test, the
   same check of the previous version's reused files (when it fails, the cluster reads and
   embeds every file again). ``rag.build.assemble`` then appends the vectors, shard by shard,
   to two files on disk that are memory-mapped: the driver never holds more than one shard's
   vectors in its own memory; the stored vectors of unchanged articles come from the previous
   version.
5. It publishes through ``rag.build.publish``, as a local build: same manifest, same new version
   folder, same atomic switch of ``CURRENT``, under the same lock. A build that fails at any
   point leaves the previous version live.

The pool is sized from the cluster's CPUs (``pool_plan``): with C >= 2 CPUs, C - 1 actors of one
CPU each, so that a read task always finds a free CPU (on a 2-CPU cluster two one-CPU actors
would hold both and the read task would wait forever); with less than 2 CPUs one actor and the
read tasks share them in fractions.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import build
from .build import chunk, embed
from .config import Settings
from .errors import ConfigError, RagError
from .index import IndexData, IndexStore
from .ingest import IngestResult, list_article_files
from .types import Article, BuildReport, Chunk, Skipped

RETRIES = 3  # a task whose worker died is retried this many times (actors restarted as often)
PROBE_SECONDS = 5.0


class RayClusterError(RagError):
    """The Ray cluster cannot be reached or the build failed on it."""


# -- connecting ---------------------------------------------------------------------------
def pool_plan(cpus: float) -> dict:
    """Embedding actors and CPUs for a cluster of ``cpus`` logical CPUs.

    With C >= 2 CPUs: C - 1 actors of 1 CPU each, read tasks 1 CPU; at least one whole CPU is
    always left for reading, on some node. (On a 2-CPU cluster ``concurrency=2`` with one CPU
    per actor deadlocks: both actors hold a CPU and the read task never gets one.) Below 2
    CPUs: one actor and the read tasks take half each. ``threads`` is how many threads each
    actor's model runs on: the CPUs per actor, rounded down, at least 1.
    """
    if cpus >= 2:
        actors, actor_cpus, read_cpus = int(cpus) - 1, 1.0, 1.0
    else:
        actors, actor_cpus, read_cpus = 1, max(cpus, 0.01) / 2, max(cpus, 0.01) / 2
    return {"actors": actors, "actor_cpus": actor_cpus, "read_cpus": read_cpus,
            "threads": max(1, int(cpus // actors))}


def _probe(address: str) -> None:
    """Fail fast, in one line, when nothing listens at ``address`` (ray.init retries for minutes)."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayClusterError(
            f"Invalid Ray address '{address}' (--ray-address / RAG_RAY_ADDRESS): give HOST:PORT of the head "
            "node (printed by `ray start --head`), or 'auto'."
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer in {PROBE_SECONDS:.0f} s"
        raise RayClusterError(
            f"Cannot reach the Ray cluster at {address} ({reason}). Start its head with `ray start --head`, "
            "or give the right --ray-address / RAG_RAY_ADDRESS."
        ) from None


def connect(address: str | None):
    """Connect to the cluster at ``address``, or start a local Ray instance (127.0.0.1 only).

    Returns the ``ray`` module and whether this call started the connection (and so ends it).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing reported out
    # Ray's C++ core logs notices (e.g. about actor arguments Ray Data keeps in the object store)
    # to the terminal at ERROR level; failures reach the user as exceptions, turned into one line.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if not address:
        # A local instance on loopback only: Ray's servers listen on the node address, which
        # this makes 127.0.0.1 (read when ray is imported).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "The Ray engine needs Ray: pip install -e '.[ray]' (or use --engine local)."
        ) from None
    if ray.is_initialized():  # the caller (a test, a notebook) already connected
        return ray, False
    if address and address != "auto":
        _probe(address)
    kwargs = {"logging_level": logging.ERROR, "log_to_driver": False}
    if not address:
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address or None, **kwargs)
    except Exception as exc:  # ConnectionError, version mismatch, ...
        where = f"at {address}" if address else "(local instance)"
        raise RayClusterError(f"Cannot connect to the Ray cluster {where}: {_one_line(exc)}") from None
    return ray, True


def _one_line(exc: BaseException) -> str:
    """A user-facing line for an exception from Ray: the RagError inside it when there is one."""
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, RagError):
            return str(e)
        e = getattr(e, "cause", None) or e.__cause__ or e.__context__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text[:300]


# -- worker side ----------------------------------------------------------------------------
_TOKENIZERS: dict[str, object] = {}
_KNOWN: dict[str, np.ndarray] = {}


def _counter(model_name: str):
    """The embedding model's tokenizer (no weights): counts word pieces for the chunker."""
    if model_name not in _TOKENIZERS:
        from .embed import _Base

        _TOKENIZERS[model_name] = _Base(model_name)
    return _TOKENIZERS[model_name]


def _known_ids(ref) -> np.ndarray:
    if ref is None:
        return np.zeros(0, np.uint64)
    key = str(ref)
    if key not in _KNOWN:
        import ray

        _KNOWN.clear()
        _KNOWN[key] = ray.get(ref)
    return _KNOWN[key]


def _id_int(article_id: str) -> int:
    return int(article_id, 16)


def read_shard(row: dict, *, folder: str, conf: dict, known_ref=None) -> dict:
    """Read task: one shard of files -> its records (what happened to each file), new articles'
    chunks and BM25 tokens, as one JSON payload for the embedding stage."""
    import hashlib

    from .index import bm25_tokenize
    from .ingest import UnusableFile, read_file

    known = _known_ids(known_ref)
    records: list[dict] = []
    new: list[Article] = []
    new_ids: set[str] = set()
    for name, expect in zip(row["files"], row["expect"]):
        path = Path(folder) / name
        if expect:
            try:
                if path.stat().st_size <= conf["max_file_bytes"]:
                    data = path.read_bytes()
                    if hashlib.sha256(data).hexdigest() == expect:
                        records.append({"file": name, "same": True})
                        continue
            except OSError:
                pass  # read_file below says why
        try:
            got = read_file(path, name, conf["max_file_bytes"], conf.get("max_export_bytes"))
        except UnusableFile as exc:
            records.append({"file": name, "skipped": exc.reason})
            continue
        records.extend({"file": sk.file, "skipped": sk.reason} for sk in got.skipped)
        for article in got.articles:  # one, or one per good record of a bulk export
            records.append({"file": article.file, "article": article.model_dump()})
            key = np.uint64(_id_int(article.id))
            stored = len(known) > 0 and known[min(np.searchsorted(known, key), len(known) - 1)] == key
            if not stored and article.id not in new_ids:
                new_ids.add(article.id)
                new.append(article)
    chunks: list[Chunk] = []
    if new:
        by_article = chunk(new, _counter(conf["model_name"]), conf["chunking"])
        chunks = [c for a in new for c in by_article[a.id]]
    tokens = bm25_tokenize([c.text for c in chunks]) if chunks else []
    payload = {"records": records, "chunks": [c.model_dump() for c in chunks], "tokens": tokens}
    return {
        "shard": int(row["shard"]),
        "payload": json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        "n_files": len(records),
        "n_read": sum(1 for r in records if not r.get("same")),
        "n_new": len(new),
        "new_chars": sum(len(a.text) for a in new),
        "n_chunks": len(chunks),
    }


class EmbedShards:
    """Embedding actor: loads the embedder once, then embeds whole shards and writes their files."""

    def __init__(self, conf: dict, scratch: str, threads: int):
        if conf["build_backend"] == "torch":
            import torch

            torch.set_num_threads(threads)  # Ray sets 1 thread per logical CPU of the actor
        from .embed import load_embedder

        self.embedder = load_embedder(
            conf["model_name"], conf["build_backend"], conf["embed_batch_size"], Path(conf["cache_dir"]),
            conf["onnx_int8"], conf["embed_precision"],
        )
        self.scratch = Path(scratch)

    def __call__(self, batch: dict) -> dict:
        out = {"shard": [], "n_files": [], "n_read": [], "n_new": [], "n_chunks": [], "dim": [], "max_pieces": []}
        for i, raw in enumerate(batch["payload"]):
            payload = json.loads(bytes(raw))
            vecs, sents = embed(self.embedder, [Chunk.model_validate(c) for c in payload["chunks"]])
            dim = self.embedder.dim
            sent = np.concatenate(sents) if sents else np.zeros((0, dim), np.float32)
            self._write(int(batch["shard"][i]), bytes(raw), vecs, sent)
            for key in ("shard", "n_files", "n_read", "n_new", "n_chunks"):
                out[key].append(int(batch[key][i]))
            out["dim"].append(dim)
            out["max_pieces"].append(self.embedder.max_pieces)
        return {k: np.asarray(v) for k, v in out.items()}

    def _write(self, k: int, payload: bytes, vecs: np.ndarray, sent: np.ndarray) -> None:
        stem = self.scratch / f"shard-{k:07d}"
        tag = f".tmp{os.getpid()}-{uuid.uuid4().hex[:6]}"
        for suffix, arr in ((".vectors.npy", vecs), (".sentences.npy", sent)):
            tmp = Path(f"{stem}{suffix}{tag}")
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(arr, dtype=np.float32))
            os.replace(tmp, f"{stem}{suffix}")
        tmp = Path(f"{stem}.json{tag}")
        tmp.write_bytes(payload)
        os.replace(tmp, f"{stem}.json")  # written last: the shard is complete when this exists


# -- driver side ----------------------------------------------------------------------------
def _shards(names: list[str], expect: dict[str, str], shard_files: int) -> list[dict]:
    return [
        {"shard": k, "files": part, "expect": [expect.get(n, "") for n in part]}
        for k, part in enumerate(names[i : i + shard_files] for i in range(0, len(names), shard_files))
    ]


@dataclass
class _Gathered:
    """What the cluster read and embedded, merged in file order (records only; the vectors stay
    in the shard files): the articles, and each new article's shard, rows and sentence rows."""

    stats: list[dict]
    ingest: IngestResult = field(default_factory=IngestResult)
    new_rows: dict[str, tuple[int, int, int, int, int]] = field(default_factory=dict)
    new_chunks: dict[str, list[Chunk]] = field(default_factory=dict)
    new_tokens: dict[str, list[list[str]]] = field(default_factory=dict)
    embedded_tokens: int = 0


def build_on_ray(store: IndexStore, s: Settings, folder: Path, report: BuildReport, *, full: bool,
                 load: Callable[[], IndexData], progress=None, t0: float) -> BuildReport:
    """The Ray build (called by ``Pipeline.build`` under the build lock): the cluster reads,
    chunks and embeds; planning, assembling and publishing are ``rag.build``'s, as in a local build."""
    folder = Path(folder).resolve()
    names = [p.name for p in list_article_files(folder)]
    prev = None if full else build.previous(store, s, load, report.warnings)

    tc = time.perf_counter()
    ray, owned = connect(s.ray_address)
    report.seconds["connect"] = time.perf_counter() - tc
    scratch = store.root / f".build-ray-{uuid.uuid4().hex[:8]}"
    scratch.mkdir(parents=True)
    try:
        cpus = float(ray.cluster_resources().get("CPU", 0))
        if cpus <= 0:
            raise RayClusterError(f"The Ray cluster at {s.ray_address or 'local'} has no CPUs.")
        plan = pool_plan(cpus)
        report.cluster = {
            "address": s.ray_address or "local", "nodes": sum(1 for n in ray.nodes() if n.get("Alive")),
            "cpus": cpus, **plan, "shard_files": s.ray_shard_files,
        }
        got = _gather(ray, names, prev, folder, scratch, s, plan, progress, report)
        report.skipped = got.ingest.skipped
        report.warnings.extend(got.ingest.warnings)
        report.duplicates = got.ingest.duplicates
        if progress:
            progress("read", len(names), len(names))
        build.require_articles(got.ingest, folder)
        the_plan = build.plan(got.ingest.articles, prev, report, t0)
        if the_plan is None:
            return report
        if prev is not None and the_plan.prev is None:
            # The previous version failed its checksums: nothing of it is reused, so the
            # cluster reads and embeds every file again.
            got = _gather(ray, names, None, folder, scratch, s, plan, progress, report)
        prev = the_plan.prev

        # Assemble article by article in file order, from one shard file at a time (memory-mapped)
        # or from the previous version, spilled to files on disk.
        tm = time.perf_counter()
        if progress:
            progress("write", 0, 1)
        dim = int(got.stats[0]["dim"]) if got.stats else prev.manifest["dimension"]
        max_pieces = int(got.stats[0]["max_pieces"]) if got.stats else prev.manifest["max_pieces"]
        open_shard: list = [None]

        def new_parts(article_id: str):
            if article_id not in got.new_rows:
                return None
            k, r0, r1, s0, s1 = got.new_rows[article_id]
            if open_shard[0] is None or open_shard[0][0] != k:
                open_shard[0] = (k, np.load(scratch / f"shard-{k:07d}.vectors.npy", mmap_mode="r"),
                                 np.load(scratch / f"shard-{k:07d}.sentences.npy", mmap_mode="r"))
            _, vecs, sents = open_shard[0]
            return got.new_chunks[article_id], vecs[r0:r1], sents[s0:s1], got.new_tokens[article_id]

        chunks, vectors, sent_vectors, tokens = build.assemble(got.ingest.articles, new_parts, prev, dim, spill=scratch)
        open_shard[0] = None
        report.seconds["merge"] = time.perf_counter() - tm

        build.publish(store, s, got.ingest.articles, chunks, the_plan.files, vectors, sent_vectors, tokens, dim,
                      max_pieces, report, progress, time.perf_counter())
        del vectors, sent_vectors
        report.seconds["total"] = time.perf_counter() - t0
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if owned:
            ray.shutdown()


def _gather(ray, names: list[str], prev: IndexData | None, folder: Path, scratch: Path, s: Settings, plan: dict,
            progress, report: BuildReport) -> _Gathered:
    """Read and embed on the cluster the files of ``folder`` that ``prev`` does not hold with the
    same bytes, then merge the shards' records in file order (the same duplicate and skip rules
    as ``rag.ingest.load_folder``)."""
    expect: dict[str, str] = {}
    known = None
    if prev is not None:
        for aid, meta in prev.manifest.get("articles", {}).items():
            if prev.manifest.get("files", {}).get(meta.get("file")) == aid and meta.get("sha256"):
                expect[meta["file"]] = meta["sha256"]
        known = np.sort(np.fromiter((_id_int(a) for a in prev.articles), np.uint64, len(prev.articles)))
    shards = _shards(names, expect, s.ray_shard_files)
    report.cluster["shards"] = len(shards)
    t1 = time.perf_counter()
    got = _Gathered(_run(ray, shards, folder, scratch, s, plan, known, progress, report.cluster) if shards else [])
    report.seconds["cluster"] = time.perf_counter() - t1
    report.cluster.update(
        files_hashed=sum(x["n_files"] for x in got.stats),
        files_read=sum(x["n_read"] for x in got.stats),
        articles_embedded=sum(x["n_new"] for x in got.stats),
        chunks_embedded=sum(x["n_chunks"] for x in got.stats),
    )
    for k in range(len(shards)):
        payload = json.loads((scratch / f"shard-{k:07d}.json").read_bytes())
        chunks = [Chunk.model_validate(c) for c in payload["chunks"]]
        got.embedded_tokens += sum(c.n_tokens for c in chunks)
        row = srow = 0
        for i, c in enumerate(chunks):
            aid = c.article_id
            if aid not in got.new_rows or got.new_rows[aid][0] != k:
                if aid in got.new_rows:  # a duplicate chunked again in a later shard: keep the first
                    row, srow = row + 1, srow + len(c.sentences)
                    continue
                got.new_rows[aid] = (k, row, row, srow, srow)
                got.new_chunks[aid] = []
                got.new_tokens[aid] = []
            kk, r0, _, s0, _ = got.new_rows[aid]
            row, srow = row + 1, srow + len(c.sentences)
            got.new_rows[aid] = (kk, r0, row, s0, srow)
            got.new_chunks[aid].append(c)
            got.new_tokens[aid].append(payload["tokens"][i])
        for rec in payload["records"]:
            if "skipped" in rec:
                got.ingest.skipped.append(Skipped(file=rec["file"], reason=rec["skipped"]))
            elif rec.get("same"):
                stored = prev.articles[prev.manifest["files"][rec["file"]]]
                got.ingest.add(rec["file"], stored.model_copy(update={"file": rec["file"], "aliases": []}))
            else:
                got.ingest.add(rec["file"], Article.model_validate(rec["article"]))
    report.embedded_chunks = report.cluster["chunks_embedded"]
    report.embedded_tokens = got.embedded_tokens
    return got


def _run(ray, shards: list[dict], folder: Path, scratch: Path, s, plan: dict, known, progress,
         cluster: dict) -> list[dict]:
    """Run the read tasks, then the embedding actor pool, over the shards; returns each shard's counts.

    The read stage runs to its end first (its results wait in Ray's object store, spilled to disk
    when large; reading is a few % of a build): then the number of chunks is known, and the
    backend is chosen by the same rule as a local build (``small_build_chars``: a small update
    embeds with the question backend, which is cheaper to load), so both give the same vectors.
    """
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the build's own progress bar reports
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    conf = {
        "model_name": s.model_name, "build_backend": s.build_backend, "embed_batch_size": s.embed_batch_size,
        "cache_dir": str(Path(s.cache_dir).resolve()), "onnx_int8": s.onnx_int8, "embed_precision": s.embed_precision,
        "chunking": s.chunking_signature(),
        "max_file_bytes": s.max_file_bytes,
        "max_export_bytes": s.max_export_bytes,
    }
    known_ref = ray.put(known) if known is not None and len(known) else None
    total_files = sum(len(x["files"]) for x in shards)
    stats: list[dict] = []
    if progress:
        progress("read", 0, total_files)
    try:
        with warnings.catch_warnings():
            # Bounded retries are passed as Ray remote arguments, which Ray Data 2.60 (pinned) marks
            # as deprecated; its default, retrying forever, would hang on a shard that kills every worker.
            warnings.simplefilter("ignore", DeprecationWarning)
            read = ray.data.from_items(shards, override_num_blocks=len(shards)).map(
                read_shard, fn_kwargs={"folder": str(folder), "conf": conf, "known_ref": known_ref},
                num_cpus=plan["read_cpus"], max_retries=RETRIES,
            ).materialize()
            counts = read.select_columns(["n_chunks", "new_chars"]).take_all()
            total_chunks = sum(int(c["n_chunks"]) for c in counts)
            new_chars = sum(int(c["new_chars"]) for c in counts)
            if progress:
                progress("read", total_files, total_files)
            if build.small_update(s, new_chars):
                conf["build_backend"] = s.embed_backend  # as a local build does for a small update
            cluster["embed_backend"] = conf["build_backend"]
            embedded = read.map_batches(
                EmbedShards,
                fn_constructor_kwargs={"conf": conf, "scratch": str(scratch), "threads": plan["threads"]},
                batch_size=1,
                concurrency=plan["actors"],
                num_cpus=plan["actor_cpus"],
                max_restarts=RETRIES,
                max_task_retries=RETRIES,
            )
        if progress:
            progress("embed", 0, total_chunks)  # starts the stage's clock
        chunks_done = 0
        for row in embedded.iter_rows():
            stats.append({k: int(v) for k, v in row.items()})
            chunks_done += int(row["n_chunks"])
            if progress:
                progress("embed", chunks_done, total_chunks)
    except RagError:
        raise
    except Exception as exc:
        raise RayClusterError(
            f"The build failed on the Ray cluster ({_one_line(exc)}); the previous index version is still live."
        ) from None
    done = {x["shard"] for x in stats}
    missing = [k for k in range(len(shards)) if k not in done or not (scratch / f"shard-{k:07d}.json").exists()]
    if missing:
        raise RayClusterError(
            f"The Ray cluster returned {len(shards) - len(missing)} of {len(shards)} shards; "
            "the previous index version is still live. Run the build again."
        )
    return stats
