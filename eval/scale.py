"""Scale curve of the whole serving path at 10k / 100k / 1M passages, and the cost of checksums.

    python -m eval.scale [--sizes 10000,100000,1000000] [--questions 60] [--out FILE.json]
    python -m eval.scale --integrity INDEX_DIR      # checksum cost on load and verify time of a built index
    python -m eval.bench --scale 10000,100000       # the same from the benchmark

For each size a child process builds a real index version on disk through ``IndexStore.write``
(the function every build publishes through: FAISS by ``build_faiss``'s rule, bm25s, chunk and
article stores, sentence vectors, manifest with checksums), then a fresh child process serves it
with the real models (ONNX question embedder, span model) and measures:

* load time (``Pipeline.index()``), resident memory it added per passage (anonymous memory, i.e.
  what the process holds itself; pages of memory-mapped files are reported apart);
* BM25, dense and fused retrieval p50/p95 (each alone, the question already embedded), and the
  full ``ask()`` p50/p95 with the reader; index size on disk per passage, per file.

**Synthetic text.** Words are drawn from the unigram distribution of the seeds and BBC articles
(the BBC corpus when present), sentences of 8-30 words, each article with two invented proper
names (so the vocabulary keeps growing with the collection, as names do in news). An article is
19 sentences; its chunks are 7 sentences with 1 of overlap (3 chunks an article, about 130
words a chunk: the BBC chunks average 170 word pieces). Questions are 8 consecutive words of a
random passage's sentence, so BM25 finds their passage.

**Vectors are synthetic:** embedding a million passages here would take about 3 hours (110
chunks/s on 2 cores). Chunk vectors are a clustered mixture of Gaussians on the unit sphere (as
the FAISS section of the bench); each sentence vector is its chunk vector plus noise,
normalized. Dense search over them costs what it costs over real vectors (same size, same
index type); which passages it finds is meaningless, so the reader reads what fusion ranks
first. BM25 tokens are computed once per distinct word with the same stemmer and stop words as
``bm25_tokenize`` (checked equal on a sample), not per chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from eval.bench_common import REPORTS, SEEDS, Meter, Runner, bbc_articles, clustered, emit, pct, quiet, save_report, vm_status

DIM = 384
SENTS_PER_ARTICLE = 19
CHUNK_SENTS = 7
CHUNK_STEP = 6


def _vocabulary():
    """Word frequencies of the seeds and (when present) the BBC articles."""

    counts: Counter = Counter()
    for folder in (SEEDS, bbc_articles()):
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if p.suffix in (".txt", ".md"):
                    counts.update(re.findall(r"[A-Za-z][a-z]+|\d+", p.read_text(errors="ignore")))
    words = [w for w, _ in counts.most_common()]
    freqs = [c for _, c in counts.most_common()]
    return words, freqs


def _name(rng) -> str:
    syll = ["ka", "lo", "vi", "ren", "dor", "mi", "sa", "tu", "bel", "gar", "zo", "nen", "qui", "fa", "shi", "or"]
    return "".join(rng.choice(syll, rng.integers(2, 4))).capitalize()


def synthetic(n_passages: int, seed: int = 0):
    """Articles, chunks and each chunk's word ids, for ``n_passages`` chunks (see module doc)."""
    import numpy as np

    from rag.types import Article, Chunk

    rng = np.random.default_rng(seed)
    words, freqs = _vocabulary()
    p = np.asarray(freqs, dtype=np.float64)
    p /= p.sum()
    n_articles = -(-n_passages // 3)
    articles, chunks = [], []
    names: list[str] = []
    left = n_passages
    for ai in range(n_articles):
        k = min(3, left)
        n_sents = CHUNK_SENTS + CHUNK_STEP * (k - 1)
        lens = rng.integers(8, 31, n_sents)
        ids = rng.choice(len(words), int(lens.sum()), p=p)
        art_names = [_name(rng), _name(rng)]
        names.extend(art_names)
        sents, pos = [], 0
        for j, n in enumerate(lens):
            ws = [words[i] for i in ids[pos : pos + n]]
            pos += n
            if j % 3 == 0:
                ws[rng.integers(0, n)] = art_names[j % 2]
            ws[0] = ws[0].capitalize()
            sents.append(" ".join(ws) + ".")
        title = " ".join(sents[0].split()[:6])
        text = title + "\n\n" + " ".join(sents)
        spans, at = [], len(title) + 2
        for s in sents:
            spans.append((at, at + len(s)))
            at += len(s) + 1
        aid = f"{ai:016x}"
        articles.append(Article(id=aid, file=f"syn_{ai:07d}.txt", title=title, text=text, source_sha256=aid * 4))
        for c in range(k):
            ss = spans[c * CHUNK_STEP : c * CHUNK_STEP + CHUNK_SENTS]
            a, b = ss[0][0], ss[-1][1]
            chunks.append(Chunk(id=f"{aid}-{c}", article_id=aid, index=c, start=a, end=b, text=text[a:b],
                                n_tokens=int((b - a) / 4.5), n_pieces=int((b - a) / 4.2), sentences=ss))
        left -= k
    return articles, chunks


def _bm25_tokens(chunks):
    """Each chunk's BM25 tokens, stemming each distinct word once (equal to ``bm25_tokenize``)."""
    from rag.index import bm25_tokenize

    pattern = re.compile(r"(?u)\b\w\w+\b")
    cache: dict[str, tuple] = {}
    out = []
    for c in chunks:
        toks = []
        for w in pattern.findall(c.text.lower()):
            t = cache.get(w)
            if t is None:
                t = cache[w] = tuple(bm25_tokenize([w])[0])
            toks.extend(t)
        out.append(toks)
    sample = list(range(0, len(chunks), max(1, len(chunks) // 50)))
    assert bm25_tokenize([chunks[i].text for i in sample]) == [out[i] for i in sample], "token shortcut differs"
    return out


def worker_scale_build(p: dict) -> dict:
    """Synthetic collection of ``n`` passages published as a real index version."""
    import numpy as np

    from rag.config import Settings
    from rag.index import FORMAT_VERSION, IndexStore, now_iso

    quiet()
    try:  # on a shared machine, if memory runs out the kernel stops this process first
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass
    n = p["n"]
    t0 = time.perf_counter()
    articles, chunks = synthetic(n)
    t_text = time.perf_counter() - t0
    print(f"  {n:,}: text of {len(articles):,} articles, {len(chunks):,} chunks in {t_text:.0f} s "
          f"(RSS {vm_status('VmRSS') / 2**30:.1f} GiB)", file=sys.stderr, flush=True)
    t = time.perf_counter()
    tokens = _bm25_tokens(chunks)
    t_tok = time.perf_counter() - t
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((max(100, n // 500), DIM), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    t = time.perf_counter()
    vectors = clustered(n, DIM, rng, centers)
    counts = np.array([len(c.sentences) for c in chunks])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    work = Path(p["work"])
    work.mkdir(parents=True, exist_ok=True)
    # On disk: 10 KB a passage (10 GB at a million) need not be in memory to be written.
    sents = np.lib.format.open_memmap(work / "sentences-src.npy", mode="w+", dtype=np.float32, shape=(int(offsets[-1]), DIM))
    step = 50_000
    for a in range(0, n, step):
        b = min(n, a + step)
        rows = np.repeat(np.arange(a, b), counts[a:b])
        block = vectors[rows] + rng.standard_normal((len(rows), DIM), dtype=np.float32) * 0.6 / np.sqrt(DIM)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        sents[offsets[a] : offsets[b]] = block
    sents.flush()
    t_vec = time.perf_counter() - t
    print(f"  {n:,}: tokens {t_tok:.0f} s, vectors {t_vec:.0f} s (RSS {vm_status('VmRSS') / 2**30:.1f} GiB); writing",
          file=sys.stderr, flush=True)
    s = Settings()
    manifest = {
        "format_version": FORMAT_VERSION, "rag_version": "scale-bench", "model_name": s.model_name,
        "embedding": {"model_name": s.model_name, "int8": False, "synthetic": True}, "dimension": DIM,
        "max_pieces": 256, "chunking": s.chunking_signature(),
        "articles": {a.id: {"file": a.file, "aliases": [], "sha256": a.source_sha256, "title": a.title, "chunks": 3}
                     for a in articles},
        "files": {a.file: a.id for a in articles}, "built_at": now_iso(), "n_chunks": len(chunks),
    }
    store = IndexStore(Path(p["index_dir"]))
    t = time.perf_counter()
    version = store.write(articles=articles, chunks=chunks, vectors=vectors, sent_vectors=sents, manifest=manifest,
                          exact_max=s.exact_search_max, bm25_tokens=tokens)
    t_write = time.perf_counter() - t
    del sents
    (work / "sentences-src.npy").unlink()
    rng = np.random.default_rng(2)
    questions = []
    for i in rng.choice(len(chunks), p["questions"], replace=False):
        c = chunks[int(i)]
        a, b = c.sentences[int(rng.integers(0, len(c.sentences)))]
        ws = c.text[a - c.start : b - c.start].rstrip(".").split()
        questions.append("What " + " ".join(ws[: 8]).lower() + "?")
    vdir = store.root / "versions" / version
    files = {q.relative_to(vdir).as_posix(): q.stat().st_size for q in vdir.rglob("*") if q.is_file()}
    return {"n": len(chunks), "n_articles": len(articles), "version": version, "text_s": t_text, "tokens_s": t_tok,
            "vectors_s": t_vec, "write_s": t_write, "peak_rss": vm_status("VmHWM"), "questions": questions,
            "disk_bytes": files, "faiss_type": json.loads((vdir / "manifest.json").read_text())["faiss_type"]}


def worker_scale_serve(p: dict) -> dict:
    """Load the index in a fresh process and time every stage of the serving path."""
    from rag.config import Settings
    from rag.pipeline import Pipeline
    from rag.retrieve import bm25_search, dense_search, retrieve

    quiet()
    s = Settings(index_dir=Path(p["index_dir"]))
    pipe = Pipeline(s)
    pipe.embedder
    pipe.span_model
    pipe.embedder.encode_query("warm up")
    before = {k: vm_status(k) for k in ("VmRSS", "RssAnon", "RssFile")}
    t = time.perf_counter()
    data = pipe.index()
    load_s = time.perf_counter() - t
    after = {k: vm_status(k) for k in ("VmRSS", "RssAnon", "RssFile")}
    n = len(data.chunks)
    qs = p["questions"]
    qvecs = [pipe.embedder.encode_query(q) for q in qs]
    pipe.ask(qs[0])
    times = {"bm25": [], "dense": [], "fused": [], "ask": []}
    breakdown = []
    meter = Meter().__enter__()
    for q, v in zip(qs, qvecs):
        for name, fn in (("bm25", lambda: bm25_search(data, q, s.candidates)),
                         ("dense", lambda: dense_search(data, v, s.candidates)),
                         ("fused", lambda: retrieve(data, q, v, mode="hybrid", fusion=s.fusion, top_k=s.top_k,
                                                    candidates=s.candidates, rrf_k=s.rrf_k,
                                                    dedup_threshold=s.dedup_threshold))):
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        a = pipe.ask(q)
        times["ask"].append((time.perf_counter() - t) * 1000)
        breakdown.append(a.timings_ms)
    meter.__exit__(None, None, None)
    end = {k: vm_status(k) for k in ("VmRSS", "RssAnon", "RssFile")}
    keys = sorted({k for b in breakdown for k in b})
    return {
        "n": n, "load_s": load_s, "checked": data.checked, "faiss_type": data.manifest["faiss_type"],
        "rss_before_load": before, "rss_after_load": after, "rss_after_asks": end, "peak_rss": vm_status("VmHWM"),
        "ms": {k: {"p50": pct(v, 50), "p95": pct(v, 95)} for k, v in times.items()},
        "ask_timings_p50": {k: pct([b[k] for b in breakdown if k in b], 50) for k in keys},
        "answered": sum(1 for b in breakdown if b),
        "other_load": meter.other,  # cores the rest of the machine used while the questions ran
    }


def worker_integrity(p: dict) -> dict:
    """Index load with and without the load-time checks (median of ``runs``), and a full verify."""
    import statistics

    from rag import integrity
    from rag.config import Settings
    from rag.index import IndexStore

    store = IndexStore(Path(p["index_dir"]))
    model = Settings().model_name
    store.load(model)  # warms the page cache and the imports: both loads read from memory
    real = integrity.check
    with_check, without = [], []
    for _ in range(p["runs"]):
        integrity.check = real
        t = time.perf_counter()
        data = store.load(model)
        with_check.append(time.perf_counter() - t)
        integrity.check = lambda *a, **k: {}
        t = time.perf_counter()
        store.load(model)
        without.append(time.perf_counter() - t)
    integrity.check = real
    checks = []
    for _ in range(p["runs"]):
        t = time.perf_counter()
        integrity.check(data.path, data.manifest, skip_hash=integrity.NOT_HASHED_AT_LOAD)
        checks.append(time.perf_counter() - t)
    verifies = []
    for _ in range(p["runs"]):
        t = time.perf_counter()
        r = store.verify()
        verifies.append(time.perf_counter() - t)
    return {"index_dir": p["index_dir"], "n_chunks": len(data.chunks), "load_s_with_checks": statistics.median(with_check),
            "load_s_without": statistics.median(without), "load_check_s": statistics.median(checks),
            "load_hashed_bytes": data.checked.get("hashed_bytes"), "verify_s": statistics.median(verifies),
            "verify_bytes": r["hashed_bytes"], "files": r["files"], "runs": p["runs"]}


WORKERS = {"scale_build": worker_scale_build, "scale_serve": worker_scale_serve, "integrity": worker_integrity}


def _fmt(x, nd=1):
    return "-" if x is None else f"{x:,.{nd}f}"


def run_scale(runner, report: dict, sizes: list[int], questions: int = 60, keep: Path | None = None) -> dict:
    """Build and serve each size in child processes; print the table; fill ``report["scale"]``."""
    rows = report.setdefault("scale", {"method": __doc__.split("**Synthetic text.**")[1].strip(), "sizes": {}})["sizes"]
    base = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="rag-scale-"))
    try:
        for n in sizes:
            idx = base / f"scale-{n}" / "index"
            saved = base / f"scale-{n}" / "build.json"  # with --keep, a kept index is served again, not rebuilt
            if keep and saved.exists():
                b = json.loads(saved.read_text())
            else:
                b = runner.run("scale_build", {"n": n, "index_dir": str(idx), "work": str(base / f"work-{n}"),
                                               "questions": questions}, f"scale {n:,}: synthetic index", timeout=4 * 3600)
                if b and keep:
                    saved.write_text(json.dumps(b))
            if not b:
                rows[str(n)] = {"error": "build failed"}
                continue
            srv = runner.run("scale_serve", {"index_dir": str(idx), "questions": b["questions"]},
                             f"scale {n:,}: serving", timeout=3600)
            rows[str(n)] = {"build": b, "serve": srv}
            if not keep:
                shutil.rmtree(base / f"scale-{n}", ignore_errors=True)
            _table(runner.console, rows)
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    return rows


def _table(console, rows: dict) -> None:
    from rich.table import Table

    t = Table(title="7. Scale curve: whole serving path over a synthetic index (p50 / p95 ms; memory and disk per passage)")
    for col in ("passages", "faiss", "load s", "RSS added MiB", "anon B/passage", "BM25", "dense", "fused", "ask()",
                "ask read p50", "ask p50 vs first row", "other load", "disk B/passage", "of it sentences.npy",
                "build peak GiB"):
        t.add_column(col, justify="right")
    first = None
    for n, r in rows.items():
        if "serve" not in r or not r["serve"]:
            t.add_row(f"{int(n):,}", "failed", *[""] * 13)
            continue
        first = first or r["serve"]["ms"]["ask"]["p50"]
        srv, b = r["serve"], r["build"]
        ms = srv["ms"]
        anon = srv["rss_after_load"]["RssAnon"] - srv["rss_before_load"]["RssAnon"]
        rss = srv["rss_after_load"]["VmRSS"] - srv["rss_before_load"]["VmRSS"]
        disk = sum(b["disk_bytes"].values())
        nn = srv["n"]
        t.add_row(f"{nn:,}", srv["faiss_type"], _fmt(srv["load_s"], 1), _fmt(rss / 2**20, 0), _fmt(anon / nn, 0),
                  *(f"{_fmt(ms[k]['p50'], 1)} / {_fmt(ms[k]['p95'], 1)}" for k in ("bm25", "dense", "fused", "ask")),
                  _fmt(srv["ask_timings_p50"].get("read"), 1), f"{ms['ask']['p50'] / first:.2f}x",
                  _fmt(srv.get("other_load"), 2), _fmt(disk / nn, 0),
                  _fmt(b["disk_bytes"].get("sentences.npy", 0) / nn, 0), _fmt(b["peak_rss"] / 2**30, 1))
    console.print(t)


def run_integrity(runner, report: dict, index_dir: Path, runs: int = 9) -> dict | None:
    r = runner.run("integrity", {"index_dir": str(index_dir), "runs": runs}, f"checksums: load and verify of {index_dir}")
    report["integrity"] = r
    if r:
        runner.console.print(
            f"8. Checksums on {r['n_chunks']:,} chunks ({index_dir}), median of {runs}, files in the page cache: "
            f"load {r['load_s_with_checks']:.3f} s with the load-time checks, {r['load_s_without']:.3f} s without "
            f"(the checks alone {r['load_check_s']:.3f} s, {r['load_hashed_bytes'] / 1e6:,.1f} MB hashed, "
            f"{(r['load_s_with_checks'] / r['load_s_without'] - 1) * 100:+.0f}%); rag verify "
            f"{r['verify_s']:.3f} s for {r['verify_bytes'] / 1e6:,.1f} MB in {r['files']} files.")
    return r


def main(argv=None) -> int:
    from rich.console import Console

    ap = argparse.ArgumentParser(prog="python -m eval.scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--integrity", type=Path, default=None, help="only measure checksum costs on this built index")
    ap.add_argument("--keep", type=Path, default=None, help="build the indexes here and keep them")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        emit(WORKERS[a.worker](json.loads(a.params or "{}")))
        return 0
    console = Console(record=True, width=260)
    runner = Runner(console, module="eval.scale")
    report = {"date": datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
              "loadavg_start": os.getloadavg()}
    REPORTS.mkdir(parents=True, exist_ok=True)
    out = a.out or REPORTS / f"scale-{datetime.now().strftime('%Y-%m-%d')}.json"
    if a.integrity:
        run_integrity(runner, report, a.integrity)
    else:
        run_scale(runner, report, [int(x) for x in a.sizes.split(",") if x.strip()], a.questions, a.keep)
    report["loadavg_end"] = os.getloadavg()
    save_report(report, out, console)
    console.print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
