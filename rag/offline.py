"""The process environment the model libraries read: set when a model or tokenizer is first
loaded (never at import), so that importing ``rag`` changes nothing in the caller's process."""

from __future__ import annotations

import os


def hf_offline() -> None:
    """Hugging Face libraries stay offline (models are never downloaded) and the tokenizers'
    own thread pool is off (fork safety). A value already in the environment wins."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
