"""One build for both engines: plan -> read -> chunk -> embed -> assemble -> publish.

``build_local`` runs every stage in this process. The Ray engine (``rag.ray_build``) supplies
only a distributed read (with chunking and BM25 tokens) and a distributed embed; it plans,
assembles and publishes through the same functions, so both engines reuse, check and write
an index version the same way.

* plan: ``previous`` (the current version, if its vectors may be reused), then ``plan``
  (sort files into added / updated / reused / removed, stop when nothing changed, hash what
  will be reused but loading did not check);
* read: ``read`` (``rag.ingest``), ``require_articles``;
* chunk: ``chunk`` (``rag.chunk``, pieces counted by the embedding model's tokenizer);
* embed: ``embed`` (chunk and sentence vectors);
* assemble: ``assemble`` (new and reused chunks, vectors and BM25 tokens in file order, in
  memory or spilled to files on disk);
* publish: ``publish`` (``IndexStore.write``: new version folder, atomic switch of ``CURRENT``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, integrity
from .chunk import chunk_articles
from .config import Settings
from .embed import Embedder, embedder_info
from .errors import IndexCorruptError, IndexIncompatibleError, IngestError
from .index import FORMAT_VERSION, IndexData, IndexStore, bm25_tokenize, now_iso, read_bm25_tokens
from .ingest import IngestResult, load_folder
from .types import Article, BuildReport, Chunk

# progress(stage, done, total): stages are "read", "embed", "write".
Progress = Callable[[str, int, int], None]
#: A new article's parts for ``assemble``: chunks, their vectors, their sentence vectors, and
#: their BM25 tokens (None: tokenized by ``assemble``).
NewParts = tuple[list[Chunk], np.ndarray, np.ndarray, list[list[str]] | None]


# -- plan ---------------------------------------------------------------------------------------
def embedding_signature(settings: Settings) -> dict:
    """What a stored vector depends on besides the text and the chunking."""
    return {"model_name": settings.model_name, "int8": settings.onnx_int8}


def previous(store: IndexStore, settings: Settings, load: Callable[[], IndexData],
             warnings: list[str]) -> IndexData | None:
    """The current version (``load()``), if its vectors may be reused: same model, chunking, format."""
    if not store.exists():
        return None
    try:
        data = load()  # the caller's loaded copy when it is current: no second read from disk
    except (IndexIncompatibleError, IndexCorruptError) as exc:
        warnings.append(f"previous index not reused: {exc}")
        return None
    m = data.manifest
    if m.get("chunking") != settings.chunking_signature() or m.get("embedding") != embedding_signature(settings):
        warnings.append("previous index built with other chunking or embedding settings: re-embedding everything")
        return None
    return data


def classify(articles: Sequence[Article], prev: IndexData | None, report: BuildReport) -> dict[str, str]:
    """Sort the folder's articles into added / updated / reused / removed against the
    previous version; returns every file name -> article id."""
    prev_files: dict[str, str] = prev.manifest.get("files", {}) if prev else {}
    files = {name: a.id for a in articles for name in [a.file, *a.aliases]}
    for a in articles:
        if prev is not None and a.id in prev.articles:
            report.reused.append(a.file)
        elif a.file in prev_files:
            report.updated.append(a.file)
        else:
            report.added.append(a.file)
    report.removed = sorted(f for f in prev_files if f not in files)
    report.n_articles = len(articles)
    return files


def up_to_date(prev: IndexData | None, articles: Sequence[Article], files: dict[str, str], report: BuildReport,
               t0: float) -> bool:
    """True (and the report says so) when the folder holds exactly the indexed articles, from
    the same bytes (a new date or title alone rewrites the version with the same vectors)."""
    if prev is None or files != prev.manifest.get("files", {}):
        return False
    prev_meta = prev.manifest.get("articles", {})
    if not all(prev_meta.get(a.id, {}).get("sha256") == a.source_sha256 for a in articles):
        return False
    report.unchanged = True
    report.version = prev.version
    report.n_chunks = len(prev.chunks)
    report.seconds["total"] = time.perf_counter() - t0
    return True


def reuse_checked(prev: IndexData, warnings: list[str]) -> bool:
    """Hash what a build reuses but loading did not (sentence vectors, BM25 tokens), so that a
    damaged file is never carried into the new version under a fresh checksum."""
    try:
        integrity.check(prev.path, prev.manifest, hash_files=integrity.NOT_HASHED_AT_LOAD)
    except IndexCorruptError as exc:
        warnings.append(f"previous index not reused, re-embedding everything: {exc}")
        return False
    return True


@dataclass
class Plan:
    """What a build writes: every file name -> article id, the version it reuses vectors from
    (None: none), and the articles to chunk and embed."""

    files: dict[str, str]
    prev: IndexData | None
    new_articles: list[Article]


def plan(articles: Sequence[Article], prev: IndexData | None, report: BuildReport, t0: float) -> Plan | None:
    """The build's plan, or None when the index is up to date (the report says so).

    A previous version whose reused files fail their checksums is not reused: everything is
    re-embedded, and the report's added / updated / reused say so.
    """
    files = classify(articles, prev, report)
    if up_to_date(prev, articles, files, report, t0):
        return None
    if prev is not None and not reuse_checked(prev, report.warnings):
        prev_files = prev.manifest.get("files", {})
        prev = None
        report.reused = []
        report.updated = [a.file for a in articles if a.file in prev_files]
        report.added = [a.file for a in articles if a.file not in prev_files]
    new_articles = [a for a in articles if prev is None or a.id not in prev.articles]
    return Plan(files, prev, new_articles)


def small_update(settings: Settings, new_chars: int) -> bool:
    """True when new articles this small are embedded with the question backend rather than the
    build backend (which would have to be loaded first); ``small_build_chars``."""
    return settings.build_backend != settings.embed_backend and new_chars < settings.small_build_chars


# -- read, chunk, embed -----------------------------------------------------------------------
def read(folder: Path, settings: Settings) -> IngestResult:
    """The folder's articles, cleaned and deduplicated (``rag.ingest``)."""
    return load_folder(folder, settings.max_file_bytes, settings.max_export_bytes)


def require_articles(ingest: IngestResult, folder: Path) -> None:
    """One line naming every skipped file when the folder gave no article."""
    if not ingest.articles:
        reasons = "; ".join(f"{x.file}: {x.reason}" for x in ingest.skipped) or "no .txt, .md, .html, .pdf, .jsonl or .csv files"
        raise IngestError(f"No usable articles in {folder}/ ({reasons})")


def chunk(articles: Sequence[Article], counter, chunking: dict) -> dict[str, list[Chunk]]:
    """Article id -> its chunks. ``counter`` (an embedder, or its tokenizer alone) counts word
    pieces; ``chunking`` is ``Settings.chunking_signature()``."""
    return chunk_articles(
        articles,
        chunk_tokens=chunking["chunk_tokens"],
        chunk_overlap=chunking["chunk_overlap"],
        encoding=chunking["tiktoken_encoding"],
        count_pieces=counter.count_pieces,
        max_pieces=counter.max_pieces,
    )


def embed(embedder: Embedder, chunks: Sequence[Chunk], progress: Progress | None = None
          ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Chunk vectors (one row a chunk) and each chunk's sentence vectors."""
    if progress:
        progress("embed", 0, len(chunks))  # starts the stage's clock: chunks/s counts from here
    return embedder.encode_with_spans(
        [c.text for c in chunks],
        [[(a - c.start, b - c.start) for a, b in c.sentences] for c in chunks],
        (lambda done, total: progress("embed", done, total)) if progress else None,
    )


# -- assemble ---------------------------------------------------------------------------------
class _Rows:
    """Rows of float32 vectors appended in order: in memory, or to a file that is then mapped."""

    def __init__(self, dim: int, path: Path | None = None):
        self.dim, self.path, self.n = dim, path, 0
        self.parts: list[np.ndarray] = []
        self.file = open(path, "wb") if path is not None else None

    def add(self, rows: np.ndarray) -> None:
        if self.file is not None:
            self.file.write(np.ascontiguousarray(rows, dtype=np.float32).tobytes())
        else:
            self.parts.append(rows)
        self.n += len(rows)

    def array(self) -> np.ndarray:
        if self.file is not None:
            self.file.close()
            if self.n:
                return np.memmap(self.path, dtype=np.float32, mode="r", shape=(self.n, self.dim))
        elif self.parts:
            return np.concatenate(self.parts)
        return np.zeros((0, self.dim), np.float32)


def assemble(articles: Sequence[Article], new_parts: Callable[[str], NewParts | None], prev: IndexData | None,
             dim: int, spill: Path | None = None
             ) -> tuple[list[Chunk], np.ndarray, np.ndarray, list[list[str]]]:
    """Every article's chunks, vectors, sentence vectors and BM25 tokens, in the folder's order.

    ``new_parts(article_id)`` gives a new article's parts (None: reuse them from ``prev``). With
    ``spill`` (a folder), vectors are appended to files there and memory-mapped, so that a build
    of millions of articles never holds them all in memory. BM25 tokens of reused chunks come
    from ``prev``; those missing are tokenized here.
    """
    old_tokens = read_bm25_tokens(prev.path, prev.chunks) if prev is not None else {}
    chunks: list[Chunk] = []
    tokens: list[list[str] | None] = []
    vecs_out = _Rows(dim, spill / "vectors.f32" if spill else None)
    sents_out = _Rows(dim, spill / "sentences.f32" if spill else None)
    for a in articles:
        parts = new_parts(a.id)
        if parts is not None:
            cs, vecs, sents, toks = parts
        else:
            cs, vecs, old_sents = prev.article_vectors(a.id)
            sents = np.concatenate(old_sents) if old_sents else np.zeros((0, dim), np.float32)
            toks = [old_tokens.get(c.id) for c in cs]
        chunks.extend(cs)
        tokens.extend(toks if toks is not None else [None] * len(cs))
        vecs_out.add(vecs)
        sents_out.add(sents)
    todo = [i for i, t in enumerate(tokens) if t is None]
    for i, t in zip(todo, bm25_tokenize([chunks[i].text for i in todo]) if todo else []):
        tokens[i] = t
    return chunks, vecs_out.array(), sents_out.array(), tokens


# -- publish ----------------------------------------------------------------------------------
def manifest(settings: Settings, articles: Sequence[Article], chunks: Sequence[Chunk], files: dict[str, str],
             dim: int, max_pieces: int) -> dict:
    """The manifest of a new version."""
    per_article = Counter(c.article_id for c in chunks)
    return {
        "format_version": FORMAT_VERSION,
        "rag_version": __version__,
        "model_name": settings.model_name,
        "embedding": embedding_signature(settings),
        "dimension": dim,
        "max_pieces": max_pieces,
        "chunking": settings.chunking_signature(),
        "articles": {
            a.id: {"file": a.file, "aliases": a.aliases, "sha256": a.source_sha256, "title": a.title,
                   "published": a.published, "chunks": per_article[a.id]}
            for a in articles
        },
        "files": files,
        "built_at": now_iso(),
        "n_chunks": len(chunks),
    }


def publish(store: IndexStore, settings: Settings, articles: Sequence[Article], chunks: Sequence[Chunk],
            files: dict[str, str], vectors: np.ndarray, sent_vectors: np.ndarray, bm25_tokens: list[list[str]],
            dim: int, max_pieces: int, report: BuildReport, progress: Progress | None, t_start: float) -> None:
    """Write the new version and switch ``CURRENT`` to it."""
    report.version = store.write(
        articles=articles,
        chunks=chunks,
        vectors=vectors,
        sent_vectors=sent_vectors,
        manifest=manifest(settings, articles, chunks, files, dim, max_pieces),
        exact_max=settings.exact_search_max,
        bm25_tokens=bm25_tokens,
    )
    report.n_chunks = len(chunks)
    if progress:
        progress("write", 1, 1)
    report.seconds["write"] = time.perf_counter() - t_start


# -- the local engine -------------------------------------------------------------------------
def build_local(store: IndexStore, settings: Settings, folder: Path, report: BuildReport, *, full: bool,
                load: Callable[[], IndexData], embedder_for: Callable[[Sequence[Article]], Embedder],
                progress: Progress | None = None, t0: float) -> BuildReport:
    """Every stage in this process (the caller holds the build lock). ``load`` gives the current
    version; ``embedder_for(new_articles)`` the embedder for them."""
    ingest = read(folder, settings)
    report.skipped = ingest.skipped
    report.warnings = ingest.warnings
    report.duplicates = ingest.duplicates
    if progress:
        progress("read", len(ingest.articles), len(ingest.articles))
    report.seconds["read"] = time.perf_counter() - t0
    require_articles(ingest, folder)

    the_plan = plan(ingest.articles, None if full else previous(store, settings, load, report.warnings), report, t0)
    if the_plan is None:
        return report
    prev, new_articles = the_plan.prev, the_plan.new_articles
    # Only removals: nothing to chunk or embed, so the model is not loaded.
    tm = time.perf_counter()
    embedder = embedder_for(new_articles) if new_articles else None
    report.seconds["model"] = time.perf_counter() - tm  # 0 when already loaded (the app, the eval)
    report.embedding = embedder_info(embedder) if embedder is not None else {}

    t1 = time.perf_counter()
    new_chunks = chunk(new_articles, embedder, settings.chunking_signature()) if new_articles else {}
    flat = [c for a in new_articles for c in new_chunks[a.id]]
    report.seconds["chunk"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    dim = embedder.dim if embedder is not None else prev.manifest["dimension"]
    max_pieces = embedder.max_pieces if embedder is not None else prev.manifest["max_pieces"]
    vecs, sent_vecs = embed(embedder, flat, progress) if embedder is not None else (np.zeros((0, dim), np.float32), [])
    report.embedded_chunks = len(flat)
    report.embedded_tokens = sum(c.n_tokens for c in flat)
    report.seconds["embed"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    if progress:
        progress("write", 0, 1)
    row = {c.id: i for i, c in enumerate(flat)}

    def new_parts(article_id: str) -> NewParts | None:
        if article_id not in new_chunks:
            return None
        cs = new_chunks[article_id]
        rows = [row[c.id] for c in cs]
        sents = np.concatenate([sent_vecs[r] for r in rows]) if rows else np.zeros((0, dim), np.float32)
        return cs, vecs[rows], sents, None

    chunks, vectors, sent_vectors, tokens = assemble(ingest.articles, new_parts, prev, dim)
    publish(store, settings, ingest.articles, chunks, the_plan.files, vectors, sent_vectors, tokens, dim, max_pieces,
            report, progress, t3)
    report.seconds["total"] = time.perf_counter() - t0
    return report


__all__ = [
    "Plan", "Progress", "assemble", "build_local", "chunk", "classify", "embed", "embedding_signature", "manifest",
    "plan", "previous", "publish", "read", "require_articles", "reuse_checked", "small_update", "up_to_date",
]
