"""Questions before they are searched: cleaning, cutting to what the model reads, follow-ups
that lean on the previous turn, and the date range a question is limited to."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .errors import RagError
from .formats import day
from .types import Answer

History = Sequence[object]

_FOLLOWUP_START = re.compile(r"^\s*(and|also|then|so|but|what about|how about|and what about)\b", re.I)
_PRONOUNS = re.compile(r"\b(it|its|it's|they|them|their|theirs|he|him|his|she|her|hers|this|that|these|those|the company|the firm|the deal)\b", re.I)
_STOP = frozenset(
    "what which who whom whose when where why how much many does did do is are was were has have had be been the a an "
    "of in on to for by with and or it its their they them he she his her this that these those also then so but about "
    "make made get got say said tell told give given there any some more most".split()
)


@dataclass
class Query:
    """A question made ready for search: ``text`` is the cleaned question, ``query`` what is
    searched and read (the question plus a follow-up's carried terms); ``notes`` tell the user
    what was changed. ``has_words`` is False for a question with nothing to search."""

    text: str
    query: str
    has_words: bool
    notes: list[str] = field(default_factory=list)


def clean(question: object, max_chars: int) -> tuple[str, bool]:
    """The question on one line, cut to ``max_chars``; and whether it was cut.

    Control characters (C0, DEL, C1) become spaces; lone surrogates (not text: the tokenizer
    refuses them) become U+FFFD.
    """
    text = question if isinstance(question, str) else str(question)
    text = " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", text).split())
    text = re.sub(r"[\ud800-\udfff]", "\ufffd", text)
    cut = len(text) > max_chars
    return (text[:max_chars] if cut else text), cut


def fit_to_model(text: str, embedder, max_chars: int) -> tuple[str, bool]:
    """``text`` cut to the word pieces the embedding model reads (``max_pieces``: CJK, digits and
    symbols take one or more per character), rather than truncated silently; and whether it was cut."""
    if embedder.count_pieces([text])[0] <= embedder.max_pieces:
        return text, False
    enc = embedder.tokenizer.encode(text)  # truncates to the model's limit
    end = max((e for (_, e), special in zip(enc.offsets, enc.special_tokens_mask) if not special), default=0)
    return text[:end].rstrip() or text[:max_chars], True


def prepare(question: object, history: History | None, embedder: Callable[[], object], max_chars: int) -> Query:
    """Clean the question, cut it to what the model reads, and carry a follow-up's terms.
    ``embedder()`` gives the question embedder; it is not loaded for a question without words."""
    text, cut = clean(question, max_chars)
    if not re.search(r"\w", text):
        notes = [f"Your question was cut to its first {len(text):,} characters."] if cut else []
        return Query(text, text, False, notes + ["Please type a question with some words in it."])
    text, cut_more = fit_to_model(text, embedder(), max_chars)
    notes = []
    if cut or cut_more:
        notes.append(f"Your question was cut to its first {len(text):,} characters (the part the model reads).")
    query = resolve_followup(text, history)
    if len(query) > 2 * max_chars:  # terms carried from an oversized history entry
        query = query[: 2 * max_chars].rsplit(" ", 1)[0]
    return Query(text, query, True, notes)


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


def date_range(since: object, until: object) -> tuple[str | None, str | None]:
    """``YYYY-MM-DD`` of each end of a date filter (None: open); an empty range is an error."""
    since, until = day(since, "since"), day(until, "until")
    if since and until and since > until:
        raise RagError(f"The date range is empty: since {since} is after until {until}.")
    return since, until


def range_note(since: str | None, until: str | None, n_in: int, n_undated: int) -> str:
    """The note that says which articles a date-limited question searched."""
    span = f"from {since} to {until}" if since and until else f"from {since} on" if since else f"up to {until}"
    note = f"Searched only the {n_in:,} article{'s' if n_in != 1 else ''} published {span}"
    if n_undated:
        note += f" ({n_undated:,} without a date left out)"
    return note + "."


__all__ = ["History", "Query", "clean", "date_range", "fit_to_model", "prepare", "range_note", "resolve_followup"]
