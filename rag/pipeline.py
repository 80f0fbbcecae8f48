"""The one object that wires the stages: ingest -> chunk -> embed -> index -> retrieve -> answer.

The CLI, the Streamlit app and the eval harness are thin shells over ``Pipeline``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import library, questions
from .build import Progress, build_local, small_update
from .config import Settings
from .corrections import Corrections, marked_articles, marked_on
from .embed import Embedder, load_embedder
from .feedback import question_key
from .index import IndexData, IndexStore
from .reader import Reader, Reading, citation, disagreements, source_counts
from .readers import SHIPPED, ActiveReader, ReaderStore
from .retrieve import date_mask, retrieve
from .questions import History, resolve_followup
from .span_model import SpanModel, abstain_threshold
from .types import Answer, BuildReport


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
        self._corrections: Corrections | None = None

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
        """The build backend, or for a small update (``build.small_update``) the question embedder
        when the build one is not loaded yet: loading torch costs more than embedding a few chunks."""
        if self._build_embedder is None and not self._embedder_injected:
            if small_update(self.settings, sum(len(a.text) for a in new_articles)):
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
            model = SpanModel(active.path, max_pieces=s.read_window_pieces, int8=s.reader_int8,
                              cache_dir=s.cache_dir)
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
            model = SpanModel(active.path, max_pieces=s.read_window_pieces, int8=s.reader_int8,
                              cache_dir=s.cache_dir)
        self._span_model, self.active_reader, self._reader_name = model, active, name

    def with_reader(self, reader_dir: Path) -> "Pipeline":
        """A pipeline over the same loaded index and question embedder that answers with the reader
        in ``reader_dir`` only (no versions): how ``rag train`` scores two readers side by side."""
        p = Pipeline(self.settings.model_copy(update={"reader_dir": Path(reader_dir), "readers_dir": None,
                                                      "answer_from_corrections": False}), embedder=self.embedder)
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
            if self.settings.abstain_threshold is None:
                return model.threshold  # the fit of the precision it runs at
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

        ``engine`` (default: the ``engine`` setting) is ``local`` (``rag.build``) or ``ray``: a Ray
        build reads, chunks and embeds on a cluster (``rag.ray_build``) and plans, assembles and
        publishes through ``rag.build`` too.
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

                return build_on_ray(self.store, s, folder, report, full=full, load=self.index, progress=progress, t0=t0)
            return build_local(self.store, s, folder, report, full=full, load=self.index,
                               embedder_for=self._embedder_for, progress=progress, t0=t0)

    def ensure_index(self, progress: Progress | None = None) -> BuildReport:
        """Build (incrementally) when the index is missing or differs from the articles folder.
        Always local: the app never imports Ray."""
        return self.build(progress=progress, wait=600, engine="local")

    def add(self, files: Sequence[Path], *, progress: Progress | None = None, wait: float = 0.0,
            replace: bool = False) -> BuildReport:
        """Copy usable files into the articles folder (``library.copy_in``: safe names only,
        unusable files refused, an existing article replaced only with ``replace``) and update
        the index; replaced files are listed in ``report.replaced``."""
        refused, replaced = library.copy_in(self.settings, files, replace=replace)
        report = self.build(self.settings.articles_dir, progress=progress, wait=wait, engine="local")  # small updates: local
        report.skipped = refused + report.skipped
        report.replaced = replaced
        return report

    def add_feed(self, source: str, *, progress: Progress | None = None, wait: float = 0.0, files: bool = True):
        """Poll an RSS/Atom feed (URL, or a file when ``files``) for new articles
        (``library.poll_feed``) and index them."""
        known = list(self.index().articles.values()) if self.store.exists() else []
        report = library.poll_feed(self.settings, source, known, progress, files=files)
        if report.added:
            report.build = self.build(progress=progress, wait=wait)
        return report

    def remove(self, names: Sequence[str], *, progress: Progress | None = None, wait: float = 0.0) -> BuildReport:
        """Delete articles (by file name or article id) from the folder and the index."""
        indexed = self.store.read_manifest().get("files", {}) if self.store.exists() else {}
        library.delete(self.settings, names, indexed)
        return self.build(self.settings.articles_dir, progress=progress, wait=wait, engine="local")

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
            "passages": [{"article": h.file, "article_id": h.chunk.article_id, "start": h.chunk.start,
                          "end": h.chunk.end} for h in answer.passages[: s.read_passages]],
            "query": answer.query,  # a follow-up's mark is not reused for the bare question (rag.corrections)
            "from_correction": answer.corrected,
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
        s = self.settings
        since, until = questions.date_range(since, until)
        t0 = time.perf_counter()
        question = question if isinstance(question, str) else str(question)
        threshold = self.abstain_threshold if threshold is None else threshold
        q = questions.prepare(question, history, lambda: self.embedder, s.max_question_chars)
        if not q.has_words:
            return Answer(question=question, query=q.query, answer=None, abstained=True, confidence=0.0, notes=q.notes)
        data = self.index()
        allowed = None
        if since or until:
            allowed, n_in, n_undated = date_mask(data, since, until)
            q.notes.append(questions.range_note(since, until, n_in, n_undated))
        timings: dict[str, float] = {}
        qvec, hits = self.search(data, q.query, top_k=top_k, mode=mode, fusion=fusion, timings=timings, allowed=allowed)
        t3 = time.perf_counter()
        # A follow-up is read as rewritten: it carries the earlier turn's terms.
        result = self._corrected(question, q, data, hits)
        if result is None:
            result = self.reader_for(data).read(q.query, hits, qvec)
        timings.update({f"read_{k}": v for k, v in result.timings_ms.items()})
        timings["read"] = (time.perf_counter() - t3) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        return answer_from(question, q, result, hits, threshold, since=since, until=until, version=data.version,
                           timings=timings)

    def _corrected(self, question: str, q: questions.Query, data: IndexData, hits: list) -> Reading | None:
        """The answer a person marked for this question (``rag.corrections``), when it still holds:
        its words cited in their article, if that article was retrieved now (or folded into a
        retrieved passage as a near-duplicate); an abstention, if the passages read now come from
        the articles read when it was marked "no answer"."""
        s = self.settings
        if not s.answer_from_corrections or question_key(q.query) != question_key(question):  # a rewritten follow-up
            return None
        if self._corrections is None or self._corrections.path != Path(s.feedback_file):
            self._corrections = Corrections(s.feedback_file)
        ex = self._corrections.lookup(question, data)
        if ex is None or not hits:
            return None
        when = marked_on(ex)
        if ex.answerable:
            ranks = {}  # the retrieved articles, and the near-duplicates folded into them, by best rank
            for h in reversed(hits):
                ranks.update({d.article_id: h.rank for d in h.duplicates} | {h.chunk.article_id: h.rank})
            found = [sp for sp in ex.spans if sp[0] in ranks]
            if not found:
                return None
            aid, start, end = min(found, key=lambda sp: ranks[sp[0]])
            q.notes.append(f"Answered from a correction marked on {when}: the words marked for this question.")
            return Reading(answer=data.articles[aid].text[start:end], confidence=1.0,
                           citations=[citation(data, aid, start, end, ranks[aid])], features={"correction": 1.0})
        read = {h.chunk.article_id for h in hits[: s.read_passages]}
        if not read <= marked_articles(ex):
            return None
        q.notes.append(f"Marked “no answer in the articles” on {when}, and the same articles were found now.")
        return Reading(answer=None, confidence=0.0, features={"correction": 0.0})


def answer_from(question: str, q: questions.Query, result, hits: list, threshold: float, *, since: str | None,
                until: str | None, version: str, timings: dict[str, float]) -> Answer:
    """The ``Answer`` record of what the reader found: an abstention below ``threshold``, and
    every disagreeing answer, with its articles, when the articles disagree."""
    confidence = float(min(1.0, max(0.0, result.confidence)))
    abstained = result.answer is None or confidence < threshold
    citations = [] if abstained else result.citations
    found = [] if abstained else disagreements(result.alternatives, threshold)
    notes = list(q.notes)
    if found:
        notes.append(f"The articles disagree: {len(found)} different answers, each shown with its articles "
                     "and dates, newest first.")
    return Answer(
        question=question,
        query=q.query,
        answer=None if abstained else result.answer,
        candidate=result.answer,
        abstained=abstained,
        confidence=confidence,
        kind="none" if abstained else "span",
        corrected="correction" in result.features,
        citations=citations,
        # when articles disagree, every disagreeing answer's articles are sources
        sources=source_counts([c for v in found for c in v.citations] if found else citations, hits),
        n_sources=len({c.article_id for c in citations}),
        passages=hits,
        notes=notes,
        features=result.features,
        disagreement=bool(found),
        disagreements=found,
        since=since,
        until=until,
        index_version=version,
        timings_ms=timings,
    )


__all__ = ["Pipeline", "answer_from", "resolve_followup"]
