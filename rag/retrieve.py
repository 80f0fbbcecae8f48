"""Dense (FAISS) and lexical (BM25) search, rank fusion, and near-duplicate folding.

All functions are pure over a loaded ``IndexData``; they return chunk rows and scores.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .index import IndexData, bm25_tokenize
from .types import Hit, Source

Ranked = list[tuple[int, float]]


def dense_search(data: IndexData, qvec: np.ndarray, n: int, allowed: np.ndarray | None = None) -> Ranked:
    """Top ``n`` rows by inner product. With ``allowed`` (a boolean mask over the rows) only those
    rows are searched, exactly (their stored vectors times the query)."""
    n = min(n, len(data.chunks))
    if n <= 0:
        return []
    if allowed is not None:
        rows = np.flatnonzero(allowed)
        if not len(rows):
            return []
        scores = data.vectors[rows] @ np.asarray(qvec, dtype=np.float32)
        n = min(n, len(rows))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(rows[i]), float(scores[i])) for i in top]
    import faiss

    # One query on one OpenMP thread: on a busy 2-core machine two threads wait for each other at
    # every barrier (measured under load, flat 10k: 24 ms on 2 threads, 0.3 ms on 1). The setting
    # is per calling thread; builds (index training and adding) keep all threads.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        scores, rows = data.faiss.search(np.ascontiguousarray(qvec[None], dtype=np.float32), n)
    finally:
        faiss.omp_set_num_threads(threads)
    return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]


def query_terms(query: str) -> list[str]:
    """The query's BM25 terms (stemmed, stop words removed)."""
    return list(_query_terms(query))


@lru_cache(maxsize=4096)
def _query_terms(query: str) -> tuple[str, ...]:
    # A chat re-asks, and the eval asks each question under several settings; bm25s.tokenize costs ~1 ms a call.
    return tuple(bm25_tokenize([query])[0])


def bm25_search(data: IndexData, query: str, n: int, allowed: np.ndarray | None = None) -> Ranked:
    """BM25 (Lucene IDF, always positive, so terms found in every chunk still count a little);
    rows outside ``allowed`` (a boolean mask) score 0."""
    if data.bm25 is None:
        return []
    vocab = data.bm25.vocab_dict
    terms = [t for t in query_terms(query) if t in vocab]
    if not terms:
        return []
    scores = data.bm25.get_scores(terms)
    if allowed is not None:
        scores = np.where(allowed, scores, 0.0)
    n = min(n, len(scores))
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(r), float(scores[r])) for r in top if scores[r] > 0]


def rrf(rankings: list[Ranked], k: int) -> dict[int, float]:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the rankings a row appears in.

    The constant ``k`` (60 in Cormack, Clarke & Buettcher 2009) flattens the head of each
    ranking, so that agreement between retrievers outweighs one retriever's top position.
    """
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (row, _) in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (k + rank)
    return fused


def score_fusion(rankings: list[Ranked], weights: list[float] | None = None) -> dict[int, float]:
    """Weighted sum of min-max normalized scores (a row missing from a ranking scores 0 there)."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for w, ranking in zip(weights, rankings):
        if not ranking:
            continue
        vals = np.array([s for _, s in ranking])
        lo, hi = float(vals.min()), float(vals.max())
        span = hi - lo or 1.0
        for row, s in ranking:
            fused[row] = fused.get(row, 0.0) + w * (s - lo) / span
    return fused


def fold_duplicates(order: list[int], vectors: np.ndarray, threshold: float, limit: int) -> list[tuple[int, list[int]]]:
    """Walk rows best-first; a row whose vector has cosine >= threshold with a kept row is
    folded into it (returned as its duplicate) instead of taking a place of its own."""
    kept: list[tuple[int, list[int]]] = []
    kept_vecs = np.empty((max(limit, 1), vectors.shape[1]), dtype=vectors.dtype)  # the kept rows' vectors
    for row in order:
        vec = vectors[row]
        if kept:
            sims = kept_vecs[: len(kept)] @ vec
            best = int(sims.argmax())
            if sims[best] >= threshold:
                kept[best][1].append(row)
                continue
        if len(kept) < limit:
            kept_vecs[len(kept)] = vec
            kept.append((row, []))
    return kept


def retrieve(
    data: IndexData,
    query: str,
    qvec: np.ndarray,
    *,
    mode: str,
    fusion: str,
    top_k: int,
    candidates: int,
    rrf_k: int,
    dedup_threshold: float,
    allowed: np.ndarray | None = None,
) -> list[Hit]:
    """The top passages for the query; with ``allowed`` (a boolean mask over chunk rows, e.g.
    :func:`date_mask`) only passages of those rows are searched and returned."""
    if not data.chunks:
        return []
    dense = dense_search(data, qvec, candidates, allowed) if mode in ("dense", "hybrid") else []
    lexical = bm25_search(data, query, candidates, allowed) if mode in ("bm25", "hybrid") else []
    if mode == "dense":
        fused = {r: s for r, s in dense}
    elif mode == "bm25":
        fused = {r: s for r, s in lexical}
    elif fusion == "rrf":
        fused = rrf([dense, lexical], rrf_k)
    else:
        fused = score_fusion([dense, lexical])
    order = sorted(fused, key=lambda r: -fused[r])
    kept = fold_duplicates(order, data.vectors, dedup_threshold, top_k)
    bm25_by_row = dict(lexical)
    hits = []
    for rank, (row, dups) in enumerate(kept, start=1):
        chunk = data.chunks[row]
        article = data.articles[chunk.article_id]
        hits.append(
            Hit(
                chunk=chunk,
                file=article.file,
                title=article.title,
                score=float(fused[row]),
                dense_score=float(data.vectors[row] @ qvec),
                bm25_score=bm25_by_row.get(row),
                rank=rank,
                duplicates=[_source(data, d) for d in dups],
                published=article.published,
            )
        )
    return hits


def _source(data: IndexData, row: int) -> Source:
    c = data.chunks[row]
    a = data.articles[c.article_id]
    return Source(article_id=a.id, file=a.file, title=a.title, start=c.start, end=c.end, chunk_id=c.id)


def date_mask(data: IndexData, since: str | None, until: str | None) -> tuple[np.ndarray, int, int]:
    """(mask over chunk rows, articles in range, undated articles) for articles published from
    ``since`` to ``until`` (``YYYY-MM-DD``, both inclusive, either may be None). Undated articles
    are outside every range."""
    key = (since, until)
    cached = data.masks.get(key)
    if cached is not None:
        return cached
    inside = set()
    undated = 0
    for a in data.articles.values():
        day = (a.published or "")[:10]
        if not day:
            undated += 1
            continue
        if (since is None or day >= since) and (until is None or day <= until):
            inside.add(a.id)
    mask = np.fromiter((c.article_id in inside for c in data.chunks), dtype=bool, count=len(data.chunks))
    data.masks[key] = (mask, len(inside), undated)
    return data.masks[key]
