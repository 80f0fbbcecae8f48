"""Typed records that flow through the pipeline.

Every offset is a character offset into ``Article.text`` (the cleaned text stored in the
index), so ``article.text[start:end]`` is always the quoted text.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Article(BaseModel):
    id: str = Field(description="Content hash of the cleaned text (16 hex digits).")
    file: str = Field(description="File name relative to the articles folder.")
    aliases: list[str] = Field(default_factory=list, description="Other files with exactly the same content.")
    title: str
    text: str = Field(description="Cleaned text; all offsets point into it.")
    source_sha256: str = Field(description="Hash of the raw file bytes (change detection).")
    encoding: str = "utf-8"
    removed_lines: int = Field(0, description="Lines dropped by cleaning (page furniture, repeats).")
    published: str | None = Field(None, description="Publication date, ISO 8601 (YYYY-MM-DD, or with a time).")
    author: str | None = None
    site: str | None = Field(None, description="Site or source name (web page, feed, export record).")
    url: str | None = Field(None, description="Canonical URL of a web page or feed item.")
    link: str | None = Field(None, description="The link a feed gave for it, when other than the canonical URL.")
    pages: list[int] = Field(
        default_factory=list, description="PDF: start offset in ``text`` of each page (page n starts at pages[n-1])."
    )

    def page_of(self, offset: int) -> int | None:
        """The PDF page (1-based) holding ``text[offset]``; None for other articles."""
        if not self.pages:
            return None
        from bisect import bisect_right

        return max(1, bisect_right(self.pages, offset))


class Chunk(BaseModel):
    id: str
    article_id: str
    index: int = Field(description="Position of the chunk within its article.")
    start: int
    end: int
    text: str
    n_tokens: int = Field(description="tiktoken tokens.")
    n_pieces: int = Field(0, description="Word pieces of the embedding model (incl. special tokens).")
    sentences: list[tuple[int, int]] = Field(
        default_factory=list, description="Sentence spans (absolute article offsets) inside the chunk."
    )


class Source(BaseModel):
    """Where a passage (or a near-duplicate of it) stands."""

    article_id: str
    file: str
    title: str
    start: int
    end: int
    chunk_id: str | None = None


class Hit(BaseModel):
    chunk: Chunk
    file: str
    title: str
    score: float = Field(description="Fused retrieval score (higher is better).")
    dense_score: float | None = None
    bm25_score: float | None = None
    rank: int
    duplicates: list[Source] = Field(
        default_factory=list, description="Near-duplicate passages folded into this one."
    )
    published: str | None = Field(None, description="The article's publication date (ISO 8601), if known.")


class Citation(BaseModel):
    file: str = Field(description="The article's file name.")
    article_id: str
    title: str
    start: int
    end: int
    quote: str = Field(description="article.text[start:end]")
    sentence_start: int
    sentence_end: int
    sentence: str = Field(description="The sentence around the quote.")
    passage_rank: int | None = Field(None, description="Rank of the retrieved passage it came from (1-based).")
    published: str | None = Field(None, description="The article's publication date (ISO 8601), if known.")
    page: int | None = Field(None, description="PDF page of the quote (1-based).")


class SourceCount(BaseModel):
    file: str = Field(description="The article's file name.")
    article_id: str
    title: str
    passages: int
    published: str | None = None


class DisagreeingAnswer(BaseModel):
    """One of several different answers that articles give to the same question."""

    answer: str
    confidence: float = Field(ge=0.0, le=1.0, description="What the reader's confidence would be for this answer alone.")
    published: str | None = Field(None, description="Newest publication date among its articles.")
    citations: list[Citation] = Field(default_factory=list, description="One per article that states it.")


class Answer(BaseModel):
    question: str
    query: str = Field(description="The query actually searched (follow-ups are rewritten).")
    answer: str | None
    candidate: str | None = Field(None, description="Best answer found before the abstention threshold.")
    abstained: bool
    confidence: float = Field(ge=0.0, le=1.0)
    kind: Literal["span", "none"] = "none"
    corrected: bool = Field(False, description="Answered from a mark made in the chat (rag.corrections), not by the reader.")
    citations: list[Citation] = Field(default_factory=list)
    sources: list[SourceCount] = Field(default_factory=list)
    n_sources: int = Field(0, description="Articles that state the answer.")
    passages: list[Hit] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Things the user should know (e.g. question cut).")
    features: dict[str, float] = Field(default_factory=dict, description="The reader's scores behind the confidence (margin, span and no-answer scores, retrieval).")
    disagreement: bool = Field(False, description="Articles give different answers: see ``disagreements``.")
    disagreements: list[DisagreeingAnswer] = Field(
        default_factory=list, description="When articles disagree: each answer with its articles, newest first."
    )
    since: str | None = Field(None, description="Only articles published on or after this date were searched.")
    until: str | None = Field(None, description="Only articles published on or before this date were searched.")
    index_version: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)


class Skipped(BaseModel):
    file: str
    reason: str


class BuildReport(BaseModel):
    articles_dir: str
    index_dir: str
    engine: str = Field("local", description="What read, chunked and embedded: 'local' or 'ray' (a Ray cluster).")
    cluster: dict[str, object] | None = Field(
        None, description="Ray builds: the cluster and what was sent to it (files hashed, read, chunks embedded, pool)."
    )
    version: str | None = None
    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    replaced: list[str] = Field(default_factory=list, description="Files of the folder that an added file replaced.")
    removed: list[str] = Field(default_factory=list)
    reused: list[str] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list)
    duplicates: dict[str, list[str]] = Field(default_factory=dict, description="Kept file -> identical files.")
    warnings: list[str] = Field(default_factory=list)
    n_articles: int = 0
    n_chunks: int = 0
    embedded_chunks: int = 0
    embedded_tokens: int = 0
    unchanged: bool = False
    seconds: dict[str, float] = Field(default_factory=dict)
    embedding: dict = Field(
        default_factory=dict,
        description="What embedded this build: backend, precision, threads, batch size, CPU, load average at start.",
    )


class IndexInfo(BaseModel):
    version: str
    path: str
    model_name: str
    dimension: int
    n_articles: int
    n_chunks: int
    built_at: str
    faiss_type: str
    chunking: dict
    n_dated: int = Field(0, description="Articles with a publication date.")
    published_from: str | None = Field(None, description="Oldest publication date.")
    published_to: str | None = Field(None, description="Newest publication date.")
