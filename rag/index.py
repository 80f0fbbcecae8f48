"""The ``index/`` folder: versions, manifest, FAISS + BM25 + chunk store; atomic publish; lock.

Layout::

    index/
      CURRENT                 name of the live version (replaced atomically)
      versions/<version>/     one complete index
        manifest.json         format, model, dimension, chunking, articles (ids, hashes), build time,
                              size + SHA-256 of every other file (rag/integrity.py)
        articles.jsonl        cleaned article texts (all offsets point into them)
        chunks.jsonl          chunk records with offsets and sentence spans
        faiss.index           chunk vectors (flat, HNSW or IVF by size: build_faiss)
        sentences.npy         one vector per sentence of each chunk, for the reader
        bm25/                 bm25s index of the chunk texts
        bm25_tokens.jsonl     each chunk's BM25 tokens (one JSON list a line), reused by the
                              next incremental build instead of tokenizing every chunk again
      .build-*/               a build in progress (removed by the next build if it died)
      build.lock              held by the one writer

A build writes a whole new version beside the live one, then switches ``CURRENT`` with one
``os.replace``: a build killed at any moment leaves the previous version live and loadable.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import integrity
from .errors import REBUILD_HINT, BuildLockedError, IndexCorruptError, IndexIncompatibleError, IndexMissingError
from .types import Article, Chunk, IndexInfo

FORMAT_VERSION = 1


def bm25_tokenize(texts: list[str]) -> list[list[str]]:
    """Lowercased words, English stop words removed, Snowball-stemmed (same for chunks and queries)."""
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)


def read_bm25_tokens(vdir: Path, chunks: list[Chunk]) -> dict[str, list[str]]:
    """The stored BM25 tokens of a version by chunk id; empty when absent or not matching.

    Versions written before the tokens were stored have no file: their chunks are tokenized
    again, as before.
    """
    out = {}
    try:
        with open(Path(vdir) / BM25_TOKENS, encoding="utf-8") as f:
            for c, line in zip(chunks, f):
                out[c.id] = json.loads(line)
    except (OSError, ValueError):
        return {}
    return out if len(out) == len(chunks) else {}


BM25_TOKENS = "bm25_tokens.jsonl"
_STEMMER = None


def _stemmer():
    global _STEMMER
    if _STEMMER is None:
        import Stemmer

        _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER


HNSW_MAX = 100_000  # above this many vectors, IVF (see build_faiss)
IVF_NPROBE_SWITCH = 300_000  # IVF searches 32 lists up to here, 16 above


def build_faiss(vectors: np.ndarray, dim: int, exact_max: int, hnsw_max: int | None = None):
    """The FAISS index over ``vectors``, chosen by their number ``n``; returns (index, kind).

    The rule: exact while it is cheap, then the approximate index with the lowest single-query
    latency whose recall@10 against exact search stays >= 0.99. Measured by ``python -m
    eval.bench --faiss-n N`` (synthetic clustered 384-d vectors, 200 queries, 2-core CPU,
    2026-12-01; p50 of one query on one thread):

    ============  ===============  ===========================  =============================
    n             flat             HNSW M=32 efC=80             IVF-Flat, ~4*sqrt(n) lists
    ============  ===============  ===========================  =============================
    20,000        0.9 ms           -                            -
    100,000       4.9-5.7 ms       efS 128: 0.999, 0.20 ms, 8 s  nprobe 16: 0.988; 32: 0.998, 0.21 ms, 3 s
    300,000       15-18 ms         efS 128: 0.990; 256: 0.992,   nprobe 16: 0.996, 0.19 ms; 32: 1.000,
                                   0.37 ms; built in 45 s        0.33 ms; built in 14 s
    1,000,000     60 ms            efS 256: 0.989 (never 0.99),  nprobe 16: 0.999, 0.38 ms; 32: 1.000,
                                   built in 210 s                0.71 ms; built in 56 s
    ============  ===============  ===========================  =============================

    * Up to ``exact_max`` (setting ``exact_search_max``, 20,000 by default, about 30 MB of
      vectors) flat search: exact, about 1 ms, nothing to train.
    * Up to ``HNSW_MAX`` (100k) HNSW, M=32, efConstruction 80, efSearch 128: recall 0.999 at 100k.
    * Above that IVF-Flat wins on both counts (higher recall, lower latency, 3-4x faster build):
      about 4 * sqrt(n) lists, trained on at most 40 vectors per list, searching 32 lists up to
      300k and 16 above (recall grows with n at a fixed number of probed lists: 0.988 at 100k,
      0.996 at 300k, 0.999 at 1M with 16).
    """
    import faiss

    n = len(vectors)
    hnsw_max = HNSW_MAX if hnsw_max is None else hnsw_max
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if n <= exact_max:
        index, kind = faiss.IndexFlatIP(dim), "flat"
    elif n <= hnsw_max:
        index, kind = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT), "hnsw32"
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    else:
        nlist = max(1, min(n // 40, int(4 * np.sqrt(n))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(n, min(n, 40 * nlist), replace=False)
        index.train(x[np.sort(sample)])
        index.nprobe = min(32 if n <= IVF_NPROBE_SWITCH else 16, nlist)
        kind = f"ivf{nlist}"
    if n:
        index.add(x)
    return index, kind


def stored_vectors(index, dim: int):
    """The vectors a FAISS index holds, by row, without a second copy in memory.

    Flat and HNSW keep them as one float32 array: a read-only view of it (a copy was 1.5 KB a
    passage). IVF keeps them per list: rows are read back on demand (``IVFRows``).
    """
    import faiss

    if index.ntotal == 0:
        return np.zeros((0, dim), np.float32)
    if isinstance(index, faiss.IndexIVF):
        return IVFRows(index, dim)
    flat = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
    view = faiss.rev_swig_ptr(flat.get_xb(), index.ntotal * dim).reshape(index.ntotal, dim)
    view.flags.writeable = False
    return view


class IVFRows:
    """Row access to the vectors of an IVF index (what retrieval and incremental builds read)."""

    dtype = np.dtype(np.float32)

    def __init__(self, index, dim: int):
        index.make_direct_map()
        self.index = index
        self.shape = (int(index.ntotal), dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, (int, np.integer)):
            return self.index.reconstruct(int(rows))
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        return self.index.reconstruct_batch(rows) if len(rows) else np.zeros((0, self.shape[1]), np.float32)

    def __array__(self, dtype=None, copy=None):
        out = self.index.reconstruct_n(0, self.shape[0])
        return out if dtype is None else out.astype(dtype)


@dataclass
class IndexData:
    """A loaded, read-only index version."""

    version: str
    path: Path
    manifest: dict
    articles: dict[str, Article]
    chunks: list[Chunk]
    vectors: np.ndarray | IVFRows  # read-only view of the FAISS storage, or rows read back from IVF
    sent_vectors: np.ndarray
    sent_offsets: np.ndarray
    faiss: object
    bm25: object
    file_to_id: dict[str, str] = field(default_factory=dict)
    checked: dict = field(default_factory=dict)  # what loading checked (rag/integrity.py: check)
    _rows_by_article: dict[str, list[int]] = field(default_factory=dict, repr=False)
    masks: dict = field(default_factory=dict, repr=False)  # date filter -> row mask (rag.retrieve.date_mask)

    def info(self) -> IndexInfo:
        m = self.manifest
        dates = sorted(a.published[:10] for a in self.articles.values() if a.published)
        return IndexInfo(
            version=self.version,
            path=str(self.path),
            model_name=m["model_name"],
            dimension=m["dimension"],
            n_articles=len(self.articles),
            n_chunks=len(self.chunks),
            built_at=m["built_at"],
            faiss_type=m["faiss_type"],
            chunking=m["chunking"],
            n_dated=len(dates),
            published_from=dates[0] if dates else None,
            published_to=dates[-1] if dates else None,
        )

    def chunk_sentence_vectors(self, i: int) -> np.ndarray:
        return self.sent_vectors[self.sent_offsets[i] : self.sent_offsets[i + 1]]

    def article_vectors(self, article_id: str) -> tuple[list[Chunk], np.ndarray, list[np.ndarray]]:
        """Stored chunks and vectors of one article, for reuse by an incremental build."""
        if not self._rows_by_article:
            for i, c in enumerate(self.chunks):
                self._rows_by_article.setdefault(c.article_id, []).append(i)
        rows = self._rows_by_article.get(article_id, [])
        return (
            [self.chunks[i] for i in rows],
            self.vectors[rows],
            [self.chunk_sentence_vectors(i) for i in rows],
        )


class IndexStore:
    """Reads and writes versions under one index folder."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def current_file(self) -> Path:
        return self.root / "CURRENT"

    def current_version(self) -> str | None:
        try:
            name = self.current_file.read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def exists(self) -> bool:
        v = self.current_version()
        return v is not None and (self.root / "versions" / v / "manifest.json").exists()

    # -- reading --------------------------------------------------------------------
    def read_manifest(self) -> dict:
        version = self.current_version()
        if version is None:
            raise IndexMissingError(f"No index at {self.root}/. Build one with: rag build --articles DIR")
        path = self.root / "versions" / version / "manifest.json"
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise IndexCorruptError(f"Index at {self.root}/ is incomplete (no {path.name}). {REBUILD_HINT}") from exc
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"Index manifest {path} cannot be read ({exc}). {REBUILD_HINT}") from exc
        return manifest

    def check_compatible(self, manifest: dict, model_name: str) -> None:
        fmt = manifest.get("format_version")
        if fmt != FORMAT_VERSION:
            raise IndexIncompatibleError(
                f"Index at {self.root}/ has format version {fmt}; this version of rag reads {FORMAT_VERSION}. "
                f"{REBUILD_HINT}"
            )
        if manifest.get("model_name") != model_name:
            raise IndexIncompatibleError(
                f"Index at {self.root}/ was built with model '{manifest.get('model_name')}', but the setting "
                f"model_name is '{model_name}'. {REBUILD_HINT} (or set RAG_MODEL_NAME='{manifest.get('model_name')}')"
            )

    def load(self, model_name: str) -> IndexData:
        import bm25s
        import faiss

        manifest = self.read_manifest()
        self.check_compatible(manifest, model_name)
        version = self.current_version()
        vdir = self.root / "versions" / str(version)
        # Sizes of every file, digests of the files read whole below (rag/integrity.py).
        checked = integrity.check(vdir, manifest, skip_hash=integrity.NOT_HASHED_AT_LOAD)
        try:
            articles = {}
            # Line by line: the whole file as one string (1 GB at a million passages) is never held.
            with open(vdir / "articles.jsonl", encoding="utf-8") as f:
                for line in f:
                    a = Article.model_validate_json(line)
                    articles[a.id] = a
            with open(vdir / "chunks.jsonl", encoding="utf-8") as f:
                chunks = [Chunk.model_validate_json(line) for line in f]
            index = faiss.read_index(str(vdir / "faiss.index"))
            vectors = stored_vectors(index, manifest["dimension"])
            # Memory-mapped: the reader touches only the sentences of the passages it reads
            # (about 10 KB a passage: 10 GB at a million passages).
            sent_vectors = np.load(vdir / "sentences.npy", mmap_mode="r")
            if sent_vectors.dtype != np.float32 or sent_vectors.ndim != 2 or sent_vectors.shape[1] != manifest["dimension"] \
                    or not sent_vectors.flags.c_contiguous:  # a damaged header (the file is not hashed at load)
                raise ValueError(f"sentences.npy holds {sent_vectors.dtype} {sent_vectors.shape}, "
                                 f"not float32 rows of {manifest['dimension']}")
            bm25 = bm25s.BM25.load(str(vdir / "bm25"), show_progress=False) if chunks else None
        except Exception as exc:  # whatever a damaged file makes a parser raise: one line, never a traceback
            why = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            raise IndexCorruptError(f"Index at {vdir} cannot be read ({why}). Check it with: rag verify. "
                                    f"{REBUILD_HINT}") from exc
        counts = np.array([len(c.sentences) for c in chunks], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if index.ntotal != len(chunks) or offsets[-1] != len(sent_vectors):
            raise IndexCorruptError(
                f"Index at {vdir} is inconsistent ({index.ntotal} vectors, {len(chunks)} chunks). {REBUILD_HINT}"
            )
        file_to_id = {}
        for a in articles.values():
            for name in [a.file, *a.aliases]:
                file_to_id[name] = a.id
        return IndexData(
            version=str(version),
            path=vdir,
            manifest=manifest,
            articles=articles,
            chunks=chunks,
            vectors=vectors,
            sent_vectors=sent_vectors,
            sent_offsets=offsets,
            faiss=index,
            bm25=bm25,
            file_to_id=file_to_id,
            checked=checked,
        )

    def verify(self, progress: integrity.Progress | None = None) -> dict:
        """Check every file of the live version against its recorded size and digest.

        Raises ``IndexCorruptError`` (one line naming the files); returns what was checked.
        """
        manifest = self.read_manifest()
        vdir = self.root / "versions" / str(self.current_version())
        return {"version": vdir.name, **integrity.check(vdir, manifest, progress=progress)}

    # -- writing --------------------------------------------------------------------
    def lock(self, wait: float = 0.0) -> "BuildLock":
        return BuildLock(self.root, wait)

    def clean_leftovers(self) -> list[str]:
        """Remove temp folders of builds that died, and versions nobody points at (call under the lock)."""
        removed = []
        if not self.root.exists():
            return removed
        for p in self.root.glob(".build-*"):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
        versions = self.root / "versions"
        current = self.current_version()
        if versions.exists():
            # Keep the live version and the one before it (a reader may still be loading it).
            olds = sorted((p for p in versions.iterdir() if p.name != current), key=lambda p: p.stat().st_mtime)
            for p in olds[:-1]:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
        return removed

    def write(
        self,
        *,
        articles: list[Article],
        chunks: list[Chunk],
        vectors: np.ndarray,
        sent_vectors: np.ndarray,
        manifest: dict,
        exact_max: int,
        bm25_tokens: list[list[str]] | None = None,
    ) -> str:
        """Write a complete new version and make it live atomically. Returns its name.

        ``bm25_tokens`` are the chunks' BM25 tokens when the caller has them (an incremental
        build reuses the stored tokens of unchanged chunks); otherwise every chunk is tokenized.
        """
        import bm25s
        import faiss

        self.root.mkdir(parents=True, exist_ok=True)
        version = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        tmp = self.root / f".build-{version}"
        tmp.mkdir()
        dim = manifest["dimension"]
        index, kind = build_faiss(vectors.reshape(len(chunks), dim), dim, exact_max)
        faiss.write_index(index, str(tmp / "faiss.index"))
        del index  # 1.5 GB at a million passages, not needed while BM25 is indexed
        np.save(tmp / "sentences.npy", np.ascontiguousarray(sent_vectors, dtype=np.float32))
        if bm25_tokens is None:
            bm25_tokens = bm25_tokenize([c.text for c in chunks]) if chunks else []
        if len(bm25_tokens) != len(chunks):
            raise ValueError(f"{len(bm25_tokens)} BM25 token lists for {len(chunks)} chunks")
        if chunks:
            bm25 = bm25s.BM25(method="lucene")
            bm25.index(bm25_tokens, show_progress=False)
            bm25.save(str(tmp / "bm25"), show_progress=False)
        with open(tmp / BM25_TOKENS, "w", encoding="utf-8") as f:
            for tokens in bm25_tokens:
                f.write(json.dumps(tokens, ensure_ascii=False) + "\n")
        with open(tmp / "articles.jsonl", "w", encoding="utf-8") as f:
            for a in articles:
                f.write(a.model_dump_json() + "\n")
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
            for c in chunks:
                f.write(c.model_dump_json() + "\n")
        manifest = {**manifest, "faiss_type": kind, "version": version, "checksums": integrity.record(tmp)}
        (tmp / "manifest.json").write_bytes(integrity.seal(manifest))
        _fsync_tree(tmp)
        versions = self.root / "versions"
        versions.mkdir(exist_ok=True)
        os.replace(tmp, versions / version)
        _fsync_dir(versions)
        pointer = self.root / f".CURRENT.{os.getpid()}.tmp"
        pointer.write_text(version + "\n")
        _fsync_file(pointer)
        os.replace(pointer, self.current_file)
        _fsync_dir(self.root)
        return version


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync_file(path)
    except OSError:
        pass


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            _fsync_file(p)
    _fsync_dir(root)


class BuildLock:
    """One writer per index folder. The holder's pid, host and start time are written beside it."""

    def __init__(self, root: Path, wait: float = 0.0):
        from filelock import FileLock

        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.info_file = self.root / "build.lock.json"
        self._lock = FileLock(str(self.root / "build.lock"), thread_local=False)
        self.wait = wait

    def holder(self) -> str:
        try:
            info = json.loads(self.info_file.read_text())
            return f"pid {info['pid']} on {info['host']}, started {info['started']}"
        except (OSError, ValueError, KeyError):
            return "another process"

    def __enter__(self) -> "BuildLock":
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=self.wait if self.wait > 0 else 0.05)
        except Timeout:
            raise BuildLockedError(
                f"Another build is running on {self.root}/ ({self.holder()}). "
                "Wait for it to finish, or pass --wait SECONDS."
            ) from None
        self.info_file.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "thread": threading.get_ident(),
                }
            )
        )
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.info_file.unlink(missing_ok=True)
        finally:
            self._lock.release()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

