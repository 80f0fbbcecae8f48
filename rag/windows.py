"""Question + passage windows for the span reader, shared by training and serving.

A window is ``[CLS] question [SEP] part of the passage [SEP]`` of at most ``max_pieces`` word
pieces. A passage longer than that is cut into overlapping windows (``stride`` word pieces of
overlap), the way BERT was fine-tuned on SQuAD. Every passage token keeps its character offsets
into the passage, so a predicted token span maps back to exact characters of the stored text.

This module imports no torch: serving builds its windows with it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .offline import hf_offline

MAX_PIECES = 256
STRIDE = 96
MAX_QUESTION_PIECES = 64


@dataclass(slots=True)
class Window:
    """One model input. ``offsets[i]`` is the passage character span of token i, or (-1, -1)
    for tokens that are not passage text (question, special tokens)."""

    ids: np.ndarray
    type_ids: np.ndarray
    offsets: np.ndarray  # (n, 2) int32, character offsets into the passage
    passage: int  # index of the passage it came from

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def context(self) -> np.ndarray:
        """Token positions that are passage text."""
        return np.flatnonzero(self.offsets[:, 0] >= 0)


class WindowTokenizer:
    """The model's own fast tokenizer twice: one instance cuts (question, passage) pairs into
    windows, the other (no truncation) measures questions. No state is toggled between calls,
    so one instance serves every thread."""

    def __init__(self, model_dir: Path, max_pieces: int = MAX_PIECES, stride: int = STRIDE):
        hf_offline()
        from tokenizers import Tokenizer

        path = str(Path(model_dir) / "tokenizer.json")
        self.pairs = Tokenizer.from_file(path)
        self.pairs.no_padding()
        self.pairs.enable_truncation(max_length=max_pieces, stride=stride, strategy="only_second")
        self.plain = Tokenizer.from_file(path)
        self.plain.no_padding()
        self.plain.no_truncation()
        # "[SEP]" or "[CLS]" typed in a question or printed in an article is text, not a marker.
        self.pairs.encode_special_tokens = True
        self.plain.encode_special_tokens = True

    def __getattr__(self, name):  # token_to_id, id_to_token, ...
        return getattr(self.plain, name)


def load_tokenizer(model_dir: Path, max_pieces: int = MAX_PIECES, stride: int = STRIDE) -> WindowTokenizer:
    return WindowTokenizer(model_dir, max_pieces, stride)


def _window(enc, passage: int) -> Window:
    seq = enc.sequence_ids
    offs = np.asarray(enc.offsets, dtype=np.int32).reshape(-1, 2)
    ctx = np.array([s == 1 for s in seq], dtype=bool)
    offs[~ctx] = -1
    return Window(
        ids=np.asarray(enc.ids, dtype=np.int64),
        type_ids=np.asarray(enc.type_ids, dtype=np.int64),
        offsets=offs,
        passage=passage,
    )


def make_windows(tokenizer: WindowTokenizer, question: str, passages: list[str]) -> list[Window]:
    """All windows of ``question`` over each passage, in passage order.

    The question is cut to ``MAX_QUESTION_PIECES`` word pieces first (a pasted paragraph as a
    question would otherwise leave no room for the passage).
    """
    if not passages:
        return []
    q = _cut_question(tokenizer, question)
    encs = tokenizer.pairs.encode_batch([(q, p) for p in passages])
    out: list[Window] = []
    for i, enc in enumerate(encs):
        out.append(_window(enc, i))
        out.extend(_window(o, i) for o in enc.overflowing)
    return out


def _cut_question(tokenizer, question: str) -> str:
    enc = tokenizer.plain.encode(question, add_special_tokens=False)
    if len(enc.ids) <= MAX_QUESTION_PIECES:
        return question
    return question[: enc.offsets[MAX_QUESTION_PIECES - 1][1]]


def pad(windows: list[Window]) -> dict[str, np.ndarray]:
    """Right-padded model inputs for a batch of windows."""
    n = max(len(w) for w in windows)
    ids = np.zeros((len(windows), n), dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for i, w in enumerate(windows):
        ids[i, : len(w)] = w.ids
        types[i, : len(w)] = w.type_ids
        mask[i, : len(w)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def answer_tokens(w: Window, start: int, end: int) -> tuple[int, int]:
    """Token span of the passage characters [start, end) in window ``w``; (0, 0) (the [CLS]
    token, "no answer") when the span is not wholly inside the window."""
    ctx = w.context
    if len(ctx) == 0 or start < 0 or end <= start:
        return 0, 0
    offs = w.offsets
    if offs[ctx[0], 0] > start or offs[ctx[-1], 1] < end:
        return 0, 0
    i = int(np.searchsorted(offs[ctx, 1], start, side="right"))
    j = int(np.searchsorted(offs[ctx, 0], end, side="left")) - 1
    if i >= len(ctx) or j < i:
        return 0, 0
    return int(ctx[i]), int(ctx[j])
