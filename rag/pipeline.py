"""The one object that wires the stages: ingest -> chunk -> embed -> index -> retrieve -> answer.

The CLI, the Streamlit app and the eval harness are thin shells over ``Pipeline``.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import __version__, integrity
from .reader import Reader, source_counts, versions
from .chunk import chunk_articles
from .config import Settings
from .embed import Embedder, embedder_info, load_embedder
from .errors import IndexCorruptError, IndexIncompatibleError, IngestError
from .index import FORMAT_VERSION, IndexData, IndexStore, bm25_tokenize, now_iso, read_bm25_tokens
from .ingest import load_folder
from .readers import SHIPPED, ActiveReader, ReaderStore
from .span_model import SpanModel, abstain_threshold
from .retrieve import date_mask, retrieve
from .types import Answer, BuildReport, Chunk, Skipped

# progress(stage, done, total): stages are "read", "embed", "write".
Progress = Callable[[str, int, int], None]
History = Sequence[object]

_FOLLOWUP_START = re.compile(r"^\s*(and|also|then|so|but|what about|how about|and what about)\b", re.I)
_PRONOUNS = re.compile(r"\b(it|its|it's|they|them|their|theirs|he|him|his|she|her|hers|this|that|these|those|the company|the firm|the deal)\b", re.I)
_STOP = frozenset(
    "what which who whom whose when where why how much many does did do is are was were has have had be been the a an "
    "of in on to for by with and or it its their they them he she his her this that these those also then so but about "
    "make made get got say said tell told give given there any some more most".split()
)


def _content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[\w][\w'.%$-]*", text) if w.lower() not in _STOP and len(w) > 1]


def resolve_followup(question: str, history: History | None) -> str:
    """Rewrite a follow-up that leans on the previous turn by carrying that turn's key terms.

    A question is a follow-up when it starts like one ("And ...", "What about ..."), refers back
    with a pronoun ("it", "they", "the company"), or has at most one content word of its own.
    The rewritten query is the question plus the previous query's content words it lacks.
    """
    if not history:
        return question
    prev = _previous_query(history)
    if not prev:
        return question
    own = _content_words(question)
    if not (_FOLLOWUP_START.search(question) or _PRONOUNS.search(question) or len(own) <= 1):
        return question
    have = {w.lower() for w in own}
    carry = [w for w in dict.fromkeys(_content_words(prev)) if w.lower() not in have]
    return f"{question.strip()} {' '.join(carry)}".strip() if carry else question


def _previous_query(history: History) -> str | None:
    for turn in reversed(list(history)):
        if isinstance(turn, Answer):
            return turn.query
        if isinstance(turn, str) and turn.strip():
            return turn
        if isinstance(turn, dict):
            if turn.get("query"):
                return str(turn["query"])
            if turn.get("role", "user") == "user" and turn.get("content"):
                return str(turn["content"])
            if turn.get("question"):
                return str(turn["question"])
    return None


class Pipeline:
    """Builds and serves one index. Thread-safe for concurrent ``ask`` calls."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None):
        self.settings = settings or Settings()
        self.store = IndexStore(self.settings.index_dir)
        self._embedder = embedder
        self._embedder_injected = embedder is not None
        self._build_embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._data: IndexData | None = None
        self._reader: Reader | None = None
        self._span_model: SpanModel | None = None
        # The reader in use: a trained version when the readers folder's CURRENT names one (rag.readers).
        self.readers = ReaderStore(self.settings.readers_dir, self.settings.reader_dir)
        self._reader_name: str | None = None  # the CURRENT name the loaded span model was chosen for
        self.active_reader: ActiveReader | None = None
        self._switch_lock = threading.Lock()

    # -- components -------------------------------------------------------------------
    def _load_embedder(self, backend: str) -> Embedder:
        s = self.settings
        return load_embedder(s.model_name, backend, s.embed_batch_size, s.cache_dir, s.onnx_int8, s.embed_precision)

    @property
    def embedder(self) -> Embedder:
        """Embeds questions (``embed_backend``); loaded once, on first use."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    self._embedder = self._load_embedder(self.settings.embed_backend)
        return self._embedder

    @property
    def build_embedder(self) -> Embedder:
        """Embeds passages in builds (``build_backend``); the question embedder when they agree.

        Both backends compute the same vectors (cosine >= 0.9999), so an index built by one
        is searched by the other: serving never needs to import torch.
        """
        if self._build_embedder is None:
            with self._embedder_lock:
                if self._build_embedder is None:
                    if self._embedder is not None and (
                        self._embedder_injected or self._embedder.backend == self.settings.build_backend
                    ):
                        self._build_embedder = self._embedder
                    else:
                        self._build_embedder = self._load_embedder(self.settings.build_backend)
        return self._build_embedder

    def _embedder_for(self, new_articles: Sequence) -> Embedder:
        """The build backend, or for a small update the question embedder when the build one
        is not loaded yet (measured on BBC, adding 10 articles: 4.2 s of the 8.6 s went into
        loading torch, 0.4 s into embedding their 28 chunks)."""
        s = self.settings
        if self._build_embedder is None and not self._embedder_injected and s.build_backend != s.embed_backend:
            if sum(len(a.text) for a in new_articles) < s.small_build_chars:
                return self.embedder
        return self.build_embedder

    @property
    def span_model(self) -> SpanModel:
        """The span model (ONNX) of the reader in use; loaded on first use and again when the
        readers folder's ``CURRENT`` names another version (``rag train``, a rollback).

        A switch never fails a question: while one thread loads the new reader, the others keep
        answering with the old one; a version that cannot be loaded leaves the old one serving
        (or the shipped reader on a first load), with the reason in ``active_reader.note``."""
        name = self.readers.current_name()
        model = self._span_model
        if model is not None and name == self._reader_name:
            return model
        if model is not None:
            if not self._switch_lock.acquire(blocking=False):
                return model  # another thread is loading the new reader
        else:
            self._switch_lock.acquire()
        try:
            if self._span_model is None or self._reader_name != name:
                self._load_span_model(name)
            return self._span_model
        finally:
            self._switch_lock.release()

    def _load_span_model(self, name: str) -> None:
        s = self.settings
        active = self.readers.active(name)
        try:
            model = SpanModel(active.path, max_pieces=s.read_window_pieces)
        except Exception as exc:  # a damaged version: keep serving
            if active.name == SHIPPED:
                raise
            note = f"reader version {active.name} cannot be loaded ({type(exc).__name__}: {exc})"
            if self._span_model is not None:
                self._reader_name = name  # do not retry on every question
                self.active_reader = ActiveReader(self.active_reader.name, self.active_reader.path,
                                                  note + f": still using {self.active_reader.name}")
                return
            active = ActiveReader(SHIPPED, s.reader_dir, note + ": using the shipped reader")
            model = SpanModel(active.path, max_pieces=s.read_window_pieces)
        self._span_model, self.active_reader, self._reader_name = model, active, name

    def with_reader(self, reader_dir: Path) -> "Pipeline":
        """A pipeline over the same loaded index and question embedder that answers with the reader
        in ``reader_dir`` only (no versions): how ``rag train`` scores two readers side by side."""
        p = Pipeline(self.settings.model_copy(update={"reader_dir": Path(reader_dir), "readers_dir": None}),
                     embedder=self.embedder)
        p._data = self._data if self._data is not None else self.index()  # read-only, shared
        return p

    def reader_name(self) -> str:
        """The reader answering now: "shipped" or the version's name."""
        self.span_model
        return self.active_reader.name if self.active_reader else SHIPPED

    @property
    def abstain_threshold(self) -> float:
        """The abstention threshold: the ``abstain_threshold`` setting when set, else the one
        calibrated with the reader in use (its ``calibration.json``)."""
        model = self._span_model
        if model is not None and self._reader_name == self.readers.current_name():
            path = model.model_dir
        else:
            path = self.readers.active().path  # without loading the model
        return abstain_threshold(self.settings.model_copy(update={"reader_dir": path}))

    def warm_up(self) -> None:
        self.embedder
        self.span_model
        self.index()

    def index(self) -> IndexData:
        """The live index version; reloaded when a build has switched ``CURRENT``."""
        current = self.store.current_version()
        data = self._data
        if data is not None and data.version == current:
            return data
        with self._load_lock:
            if self._data is None or self._data.version != self.store.current_version():
                data = self.store.load(self.settings.model_name)
                self._reader = self._make_reader(data)
                self._data = data
            return self._data

    def _make_reader(self, data: IndexData) -> Reader:
        s = self.settings
        return Reader(
            data,
            self.span_model,
            read_passages=s.read_passages,
            read_sentences=s.read_sentences,
            read_context=s.read_context,
            max_answer_pieces=s.max_answer_pieces,
            retrieval_weight=s.retrieval_weight,
        )

    def reader_for(self, data: IndexData) -> Reader:
        reader = self._reader
        if reader is None or reader.data is not data or reader.model is not self.span_model:
            reader = self._make_reader(data)
            if data is self._data:
                self._reader = reader
        return reader

    # -- building ---------------------------------------------------------------------
    def _reusable(self, warnings: list[str]) -> IndexData | None:
        """The current index, if its vectors may be reused (same model, chunking, format)."""
        if not self.store.exists():
            return None
        try:
            data = self.index()  # the loaded copy when it is current: no second read from disk
        except (IndexIncompatibleError, IndexCorruptError) as exc:
            warnings.append(f"previous index not reused: {exc}")
            return None
        m = data.manifest
        if m.get("chunking") != self.settings.chunking_signature() or m.get("embedding") != self._embedding_signature():
            warnings.append("previous index built with other chunking or embedding settings: re-embedding everything")
            return None
        return data

    @staticmethod
    def _reuse_checked(prev: IndexData, warnings: list[str]) -> bool:
        """Hash what a build reuses but loading did not (sentence vectors, BM25 tokens), so that a
        damaged file is never carried into the new version under a fresh checksum."""
        try:
            integrity.check(prev.path, prev.manifest, hash_files=integrity.NOT_HASHED_AT_LOAD)
        except IndexCorruptError as exc:
            warnings.append(f"previous index not reused, re-embedding everything: {exc}")
            return False
        return True

    def _embedding_signature(self) -> dict:
        return {"model_name": self.settings.model_name, "int8": self.settings.onnx_int8}

    def build(
        self,
        articles_dir: Path | None = None,
        *,
        full: bool = False,
        progress: Progress | None = None,
        wait: float = 0.0,
        engine: str | None = None,
    ) -> BuildReport:
        """Bring the index in line with the articles folder, embedding only what changed.

        ``engine`` (default: the ``engine`` setting) is ``local`` or ``ray``: a Ray build reads,
        chunks and embeds on a cluster (``rag.ray_build``) and publishes the same way.
        """
        s = self.settings
        engine = engine or s.engine
        folder = Path(articles_dir or s.articles_dir)
        report = BuildReport(articles_dir=str(folder), index_dir=str(self.store.root), engine=engine)
        t0 = time.perf_counter()
        with self.store.lock(wait):
            self.store.clean_leftovers()
            if engine == "ray":
                from .ray_build import build_on_ray  # Ray is imported only here (the [ray] extra)

                return build_on_ray(self, folder, report, full=full, progress=progress, t0=t0)
            ingest = load_folder(folder, s.max_file_bytes, s.max_export_bytes)
            report.skipped = ingest.skipped
            report.warnings = ingest.warnings
            report.duplicates = ingest.duplicates
            if progress:
                progress("read", len(ingest.articles), len(ingest.articles))
            report.seconds["read"] = time.perf_counter() - t0
            if not ingest.articles:
                reasons = "; ".join(f"{x.file}: {x.reason}" for x in ingest.skipped) or "no .txt, .md, .html, .pdf, .jsonl or .csv files"
                raise IngestError(f"No usable articles in {folder}/ ({reasons})")

            prev = None if full else self._reusable(report.warnings)
            files = self._classify(ingest.articles, prev, report)
            if self._up_to_date(prev, ingest.articles, files, report, t0):
                return report
            if prev is not None and not self._reuse_checked(prev, report.warnings):
                prev_files = prev.manifest.get("files", {})
                prev = None
                report.reused = []
                report.updated = [a.file for a in ingest.articles if a.file in prev_files]
                report.added = [a.file for a in ingest.articles if a.file not in prev_files]

            new_articles = [a for a in ingest.articles if prev is None or a.id not in prev.articles]
            # Only removals: nothing to chunk or embed, so the model is not loaded.
            tm = time.perf_counter()
            embedder = self._embedder_for(new_articles) if new_articles else None
            report.seconds["model"] = time.perf_counter() - tm  # 0 when already loaded (the app, the eval)
            report.embedding = embedder_info(embedder) if embedder is not None else {}
            t1 = time.perf_counter()
            new_chunks: dict[str, list[Chunk]] = {}
            if new_articles:
                new_chunks = chunk_articles(
                    new_articles,
                    chunk_tokens=s.chunk_tokens,
                    chunk_overlap=s.chunk_overlap,
                    encoding=s.tiktoken_encoding,
                    count_pieces=embedder.count_pieces,
                    max_pieces=embedder.max_pieces,
                )
            flat = [c for a in new_articles for c in new_chunks[a.id]]
            report.seconds["chunk"] = time.perf_counter() - t1

            t2 = time.perf_counter()
            embed_progress = (lambda done, total: progress("embed", done, total)) if progress else None
            if embedder is not None:
                if progress:
                    progress("embed", 0, len(flat))  # starts the stage's clock: chunks/s counts from here
                vecs, sent_vecs = embedder.encode_with_spans(
                    [c.text for c in flat],
                    [[(a - c.start, b - c.start) for a, b in c.sentences] for c in flat],
                    embed_progress,
                )
            else:
                vecs, sent_vecs = np.zeros((0, prev.manifest["dimension"]), np.float32), []
            report.embedded_chunks = len(flat)
            report.embedded_tokens = sum(c.n_tokens for c in flat)
            report.seconds["embed"] = time.perf_counter() - t2

            t3 = time.perf_counter()
            if progress:
                progress("write", 0, 1)
            new_rows = {c.id: i for i, c in enumerate(flat)}
            chunks: list[Chunk] = []
            vec_parts: list[np.ndarray] = []
            sent_parts: list[np.ndarray] = []
            for a in ingest.articles:
                if a.id in new_chunks:
                    for c in new_chunks[a.id]:
                        chunks.append(c)
                        vec_parts.append(vecs[new_rows[c.id]][None])
                        sent_parts.append(sent_vecs[new_rows[c.id]])
                else:
                    old_chunks, old_vecs, old_sents = prev.article_vectors(a.id)
                    chunks.extend(old_chunks)
                    vec_parts.append(old_vecs)
                    sent_parts.extend(old_sents)
            dim = embedder.dim if embedder is not None else prev.manifest["dimension"]
            max_pieces = embedder.max_pieces if embedder is not None else prev.manifest["max_pieces"]
            vectors = np.concatenate(vec_parts) if vec_parts else np.zeros((0, dim), np.float32)
            sent_vectors = np.concatenate(sent_parts) if sent_parts else np.zeros((0, dim), np.float32)
            # BM25 tokens of unchanged chunks come from the previous version; only new chunks are tokenized.
            old_tokens = read_bm25_tokens(prev.path, prev.chunks) if prev is not None else {}
            bm25_tokens: list[list[str] | None] = [old_tokens.get(c.id) for c in chunks]
            todo = [i for i, t in enumerate(bm25_tokens) if t is None]
            if todo:
                for i, t in zip(todo, bm25_tokenize([chunks[i].text for i in todo])):
                    bm25_tokens[i] = t
            self._publish(ingest.articles, chunks, files, vectors, sent_vectors, bm25_tokens, dim, max_pieces,
                          report, progress, t3)
        report.seconds["total"] = time.perf_counter() - t0
        return report

    def _publish(self, articles: Sequence, chunks: Sequence[Chunk], files: dict[str, str], vectors, sent_vectors,
                 bm25_tokens, dim: int, max_pieces: int, report: BuildReport, progress: Progress | None,
                 t_start: float) -> None:
        """Write and switch to the new version (both engines publish through here)."""
        report.version = self.store.write(
            articles=articles,
            chunks=chunks,
            vectors=vectors,
            sent_vectors=sent_vectors,
            manifest=self._manifest(articles, chunks, files, dim, max_pieces),
            exact_max=self.settings.exact_search_max,
            bm25_tokens=bm25_tokens,
        )
        report.n_chunks = len(chunks)
        if progress:
            progress("write", 1, 1)
        report.seconds["write"] = time.perf_counter() - t_start

    def _classify(self, articles: Sequence, prev: IndexData | None, report: BuildReport) -> dict[str, str]:
        """Sort the folder's articles into added / updated / reused / removed against the
        previous version; returns every file name -> article id (both engines)."""
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

    @staticmethod
    def _up_to_date(prev: IndexData | None, articles: Sequence, files: dict[str, str], report: BuildReport,
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

    def _manifest(self, articles: Sequence, chunks: Sequence[Chunk], files: dict[str, str], dim: int,
                  max_pieces: int) -> dict:
        """The manifest of a new version (both engines write the same one)."""
        s = self.settings
        per_article = Counter(c.article_id for c in chunks)
        return {
            "format_version": FORMAT_VERSION,
            "rag_version": __version__,
            "model_name": s.model_name,
            "embedding": self._embedding_signature(),
            "dimension": dim,
            "max_pieces": max_pieces,
            "chunking": s.chunking_signature(),
            "articles": {
                a.id: {"file": a.file, "aliases": a.aliases, "sha256": a.source_sha256, "title": a.title,
                       "published": a.published, "chunks": per_article[a.id]}
                for a in articles
            },
            "files": files,
            "built_at": now_iso(),
            "n_chunks": len(chunks),
        }

    def ensure_index(self, progress: Progress | None = None) -> BuildReport:
        """Build (incrementally) when the index is missing or differs from the articles folder.
        Always local: the app never imports Ray."""
        return self.build(progress=progress, wait=600, engine="local")

    def add(self, files: Sequence[Path], *, progress: Progress | None = None, wait: float = 0.0) -> BuildReport:
        """Copy usable files into the articles folder (safe names only) and update the index.

        Each file is read and checked first: one that could not become an article (empty,
        binary, undecodable, too large) is reported and never copied, so the folder does not
        collect files that every later build would skip again.
        """
        from .ingest import UnusableFile, read_file, safe_name

        folder = Path(self.settings.articles_dir)
        folder.mkdir(parents=True, exist_ok=True)
        refused: list[Skipped] = []
        for f in files:
            f = Path(f)
            name, problem = safe_name(f.name)
            if problem:
                refused.append(Skipped(file=f.name, reason=problem))
                continue
            if not f.is_file():
                refused.append(Skipped(file=str(f), reason="not found"))
                continue
            try:
                read_file(f, name, self.settings.max_file_bytes, self.settings.max_export_bytes)
            except UnusableFile as exc:
                refused.append(Skipped(file=f.name, reason=exc.reason))
                continue
            target = folder / name
            if target.is_symlink():  # copying would write through the link, outside the folder
                refused.append(Skipped(file=f.name, reason=f"refused: {name} in the articles folder is a symbolic link"))
                continue
            if target.exists() and target.samefile(f):
                continue  # already in the articles folder: nothing to copy, the build indexes it
            try:
                shutil.copyfile(f, target)
            except OSError as exc:  # e.g. a read-only file of that name in the folder
                refused.append(Skipped(file=f.name, reason=f"cannot be copied into {folder}/: {exc.strerror or exc}"))
                continue
        report = self.build(folder, progress=progress, wait=wait, engine="local")  # small updates: local
        report.skipped = refused + report.skipped
        return report

    def add_feed(self, source: str, *, progress: Progress | None = None, wait: float = 0.0):
        """Poll an RSS/Atom feed (URL or file): new items' pages are fetched, written to the
        articles folder and indexed (``rag.feeds``). The only network access, made when asked."""
        from .feeds import canonical, poll

        s = self.settings
        known_urls: dict[str, str] = {}
        known_ids: dict[str, str] = {}
        if self.store.exists():
            for a in self.index().articles.values():
                known_ids[a.id] = a.file
                for u in (a.url, a.link):
                    if canonical(u):
                        known_urls[canonical(u)] = a.file
        report = poll(source, Path(s.articles_dir), known_urls=known_urls, known_ids=known_ids,
                      timeout=s.fetch_timeout, max_bytes=s.fetch_max_bytes, max_items=s.feed_max_items,
                      progress=progress)
        if report.added:
            report.build = self.build(progress=progress, wait=wait)
        return report

    def remove(self, names: Sequence[str], *, progress: Progress | None = None, wait: float = 0.0) -> BuildReport:
        """Delete articles (by file name or article id) from the folder and the index."""
        folder = Path(self.settings.articles_dir)
        known = {}
        if self.store.exists():
            m = self.store.read_manifest()
            known = m.get("files", {})
        from .ingest import record_file

        missing = []
        for name in names:
            if record_file(name) != name:
                raise IngestError(f"{name} is a record of the export {record_file(name)}: remove {record_file(name)} "
                                  "(all its records) or edit that file.")
            targets = [f for f, aid in known.items() if f == name or aid == name] or [name]
            hit = False
            for t in targets:
                p = folder / Path(t).name
                if p.is_file():
                    p.unlink()
                    hit = True
            if not hit:
                missing.append(name)
        if missing:
            raise IngestError(f"Not in {folder}/: {', '.join(missing)}")
        return self.build(folder, progress=progress, wait=wait, engine="local")

    # -- feedback -----------------------------------------------------------------------
    def feedback(self, answer: Answer, verdict: str, *, typed: str | None = None, span=None) -> dict:
        """Record a person's mark on ``answer`` in the feedback Q&A file (``rag.feedback``)."""
        from .feedback import FeedbackStore

        s = self.settings
        meta = {
            "embedding_model": s.model_name,
            "reader": self.reader_name(),
            "settings": {**{k: getattr(s, k) for k in ("retrieval_mode", "fusion", "top_k", "read_passages",
                                                       "read_sentences")}, "abstain_threshold": self.abstain_threshold},
            # what the reader read: a "no answer in the articles" mark trains no-answer on these (rag train)
            "passages": [{"article": h.file, "start": h.chunk.start, "end": h.chunk.end}
                         for h in answer.passages[: s.read_passages]],
        }
        return FeedbackStore(s.feedback_file).record(answer, self.index().articles, verdict, typed=typed, span=span,
                                                     meta=meta)

    # -- answering --------------------------------------------------------------------
    def search(
        self,
        data: IndexData,
        query: str,
        *,
        top_k: int | None = None,
        mode: str | None = None,
        fusion: str | None = None,
        timings: dict[str, float] | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list]:
        """The query's vector and its top passages (dense + BM25 fused, near-duplicates folded)."""
        s = self.settings
        t1 = time.perf_counter()
        qvec = self.embedder.encode_query(query)
        t2 = time.perf_counter()
        hits = retrieve(
            data,
            query,
            qvec,
            mode=mode or s.retrieval_mode,
            fusion=fusion or s.fusion,
            top_k=top_k or s.top_k,
            candidates=max(s.candidates, top_k or s.top_k),
            rrf_k=s.rrf_k,
            dedup_threshold=s.dedup_threshold,
            allowed=allowed,
        )
        if timings is not None:
            timings["embed"] = (t2 - t1) * 1000
            timings["retrieve"] = (time.perf_counter() - t2) * 1000
        return qvec, hits

    def ask(
        self,
        question: str,
        history: History | None = None,
        *,
        top_k: int | None = None,
        mode: str | None = None,
        threshold: float | None = None,
        fusion: str | None = None,
        since: object = None,
        until: object = None,
    ) -> Answer:
        """Answer ``question`` from the articles (``since``/``until``: only articles published in
        that range, dates inclusive, are searched)."""
        from .formats import day

        s = self.settings
        since, until = day(since, "since"), day(until, "until")
        if since and until and since > until:
            from .errors import RagError

            raise RagError(f"The date range is empty: since {since} is after until {until}.")
        t0 = time.perf_counter()
        notes: list[str] = []
        question = question if isinstance(question, str) else str(question)
        # Control characters (C0, DEL, C1) become spaces; lone surrogates (not text: the tokenizer
        # refuses them) become U+FFFD.
        clean = " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", question).split())
        clean = re.sub(r"[\ud800-\udfff]", "\ufffd", clean)
        cut = len(clean) > s.max_question_chars
        if cut:
            clean = clean[: s.max_question_chars]
        threshold = self.abstain_threshold if threshold is None else threshold
        if not re.search(r"\w", clean):
            if cut:
                notes.append(f"Your question was cut to its first {len(clean):,} characters.")
            return Answer(question=question, query=clean, answer=None, abstained=True, confidence=0.0,
                          notes=notes + ["Please type a question with some words in it."])
        # The model reads at most ``max_pieces`` word pieces (CJK, digits and symbols take one or
        # more per character): cut the question to what it reads rather than truncating silently.
        embedder = self.embedder
        if embedder.count_pieces([clean])[0] > embedder.max_pieces:
            enc = embedder.tokenizer.encode(clean)  # truncates to the model's limit
            end = max((e for (_, e), special in zip(enc.offsets, enc.special_tokens_mask) if not special), default=0)
            clean = clean[:end].rstrip() or clean[: s.max_question_chars]
            cut = True
        if cut:
            notes.append(f"Your question was cut to its first {len(clean):,} characters (the part the model reads).")
        query = resolve_followup(clean, history)
        if len(query) > 2 * s.max_question_chars:  # terms carried from an oversized history entry
            query = query[: 2 * s.max_question_chars].rsplit(" ", 1)[0]
        data = self.index()
        reader = self.reader_for(data)
        timings: dict[str, float] = {}
        allowed = None
        if since or until:
            allowed, n_in, n_undated = date_mask(data, since, until)
            notes.append(_range_note(since, until, n_in, n_undated))
        qvec, hits = self.search(data, query, top_k=top_k, mode=mode, fusion=fusion, timings=timings, allowed=allowed)
        t3 = time.perf_counter()
        # The model reads the user's own question; a follow-up reads the rewritten one, which
        # carries the earlier turn's terms.
        result = reader.read(query, hits, qvec)
        t4 = time.perf_counter()
        confidence = float(min(1.0, max(0.0, result.confidence)))
        abstained = result.answer is None or confidence < threshold
        citations = [] if abstained else result.citations
        found = [] if abstained else versions(result.alternatives, threshold)
        if found:
            notes.append(f"The articles disagree: {len(found)} different answers, each shown with its articles "
                         "and dates, newest first.")
        return Answer(
            question=question,
            query=query,
            answer=None if abstained else result.answer,
            candidate=result.answer,
            abstained=abstained,
            confidence=confidence,
            kind="none" if abstained else "span",
            citations=citations,
            # when articles disagree, every version's articles are sources
            sources=source_counts([c for v in found for c in v.citations] if found else citations, hits),
            n_sources=len({c.article_id for c in citations}),
            passages=hits,
            notes=notes,
            features=result.features,
            disagreement=bool(found),
            versions=found,
            since=since,
            until=until,
            index_version=data.version,
            timings_ms={**timings, **{f"read_{k}": v for k, v in result.timings_ms.items()},
                        "read": (t4 - t3) * 1000, "total": (t4 - t0) * 1000},
        )


def _range_note(since: str | None, until: str | None, n_in: int, n_undated: int) -> str:
    span = f"from {since} to {until}" if since and until else f"from {since} on" if since else f"up to {until}"
    note = f"Searched only the {n_in:,} article{'s' if n_in != 1 else ''} published {span}"
    if n_undated:
        note += f" ({n_undated:,} without a date left out)"
    return note + "."


__all__ = ["Pipeline", "resolve_followup"]
