"""Performance bench: build throughput, ONNX parity, answer latency, vector search, memory, cold start.

    python -m eval.bench [--corpus seeds|bbc|both] [--quick] [--skip faiss,cold,...]

Prints rich tables and writes ``eval/reports/bench-<date>[-quick].json`` (and the same tables as
text beside it). Every measurement runs in a fresh child process (``--worker NAME``), so peak RSS
numbers are clean and one backend's imports never help another's timings.

Sections (see the README of the issue this answers):

1. **build**: full builds (``Pipeline.build(full=True)``) per backend, model load timed apart;
   encode-only with ``SentenceTransformer.encode`` and with our ``Embedder.encode_with_spans``
   over exactly the chunk texts the build embedded (read back from the built index). Ratio
   encode-only / build (target >= 0.9). Seeds: median of 3; BBC: 1 build per backend, and the
   embed stage of that build stands for encode_with_spans (it is that very call).
2. **onnx**: cosine of our vectors vs ``SentenceTransformer.encode(normalize_embeddings=True)``
   over all seed chunks, per backend/variant (onnx fp32, onnx int8, torch fp32, torch bf16), and
   their speed.
3. **ask**: warm ``Pipeline.ask`` p50/p95 and the ``timings_ms`` breakdown next to the time to
   embed one query; targets p50 <= 3x (seeds) / 5x (BBC) one query embedding, and 60 ms with
   the reader. The reader runs its int8 copy (``reader_int8``, the default); the same asks with
   the float reader are the baseline row (``reader-float``) and the ratio is printed.
4. **faiss**: synthetic clustered vectors (mixture of Gaussians on the sphere), flat vs HNSW vs IVF:
   build time, bytes, single-query p50, recall@10 vs exact on 200 queries.
5. **memory**: peak RSS (VmHWM) of a build process and of a serving process (load + 50 asks).
6. **cold**: process start -> first answer on the seeds per backend, and ``import torch`` alone;
   whether torch was imported by the onnx serving path.
7. **scale** (only with ``--scale SIZES``): the whole serving path over synthetic indexes of
   those many passages (``eval/scale.py``: load time, memory and disk per passage, BM25 / dense /
   fused retrieval and ``ask()`` p50/p95).
8. **integrity**: the cost of the load-time checksum checks and of ``rag verify`` on the largest
   index built here (``eval/scale.py``, ``worker_integrity``).

Every section runs with any ``--variants`` list: serving and cold start use ONNX questions over
whichever index was built.

The machine is shared: every timing also records the CPU the rest of the machine used meanwhile
("other load", in cores). Timings taken while other load was high are inflated; CPU seconds of
the measured process are more stable and are reported beside wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from eval.bench_common import (
    REPORTS, ROOT, SEEDS, Meter, Runner, bbc_articles, clustered, emit, med, pct, quiet, save_report, vm_status,
)

def _load_chunks(index_dir: Path):
    from rag.index import IndexStore

    store = IndexStore(index_dir)
    vdir = store.root / "versions" / str(store.current_version())
    from rag.types import Chunk

    chunks = [Chunk.model_validate_json(line) for line in (vdir / "chunks.jsonl").read_text("utf-8").splitlines()]
    texts = [c.text for c in chunks]
    spans = [[(a - c.start, b - c.start) for a, b in c.sentences] for c in chunks]
    return texts, spans


def _make_embedder(backend: str, precision: str, settings):
    from rag.embed import OnnxEmbedder, TorchEmbedder

    s = settings
    if backend == "torch":
        return TorchEmbedder(s.model_name, s.embed_batch_size, precision=precision)
    return OnnxEmbedder(s.model_name, s.embed_batch_size, s.cache_dir, int8=(precision == "int8"))


# ----------------------------------------------------------------------------------------------
# workers (each runs in its own process)


def worker_build(p: dict) -> dict:
    """Model load, then ``runs`` full builds; peak RSS; then encode_with_spans alone ``enc_runs`` times."""
    quiet()
    from rag.config import Settings
    from rag.pipeline import Pipeline

    s = Settings(index_dir=Path(p["index_dir"]), articles_dir=Path(p["articles"]), embed_backend=p["backend"],
                 answer_from_corrections=False)  # the reader, not a developer's marks
    with Meter() as m_load:
        emb = _make_embedder(p["backend"], p["precision"], s)
    rss_model = vm_status("VmRSS")
    pipe = Pipeline(s, embedder=emb)
    builds = []
    for r in range(p["runs"]):
        with Meter() as m:
            rep = pipe.build(full=True)
        builds.append({**m.dict(), "stages": rep.seconds, "n_articles": rep.n_articles, "n_chunks": rep.n_chunks,
                       "tiktoken_tokens": rep.embedded_tokens})
        print(f"  build {r + 1}/{p['runs']}: {m.wall:.1f}s (other load {m.other:.2f})", file=sys.stderr, flush=True)
    peak_build = vm_status("VmHWM")
    texts, spans = _load_chunks(Path(p["index_dir"]))
    pieces = emb.count_pieces(texts)
    emb.clear_cache()
    encodes = []
    for _ in range(p["enc_runs"]):
        emb.clear_cache()
        with Meter() as m:
            emb.encode_with_spans(texts, spans)
        encodes.append(m.dict())
    return {
        "model_load": m_load.dict(),
        "rss_after_model": rss_model,
        "peak_rss_build": peak_build,
        "builds": builds,
        "encode_with_spans": encodes,
        "n_chunks": len(texts),
        "word_pieces": int(sum(min(n, emb.max_pieces) for n in pieces)),
        "truncated_chunks": int(sum(n > emb.max_pieces for n in pieces)),
    }


def worker_st_encode(p: dict) -> dict:
    """``SentenceTransformer.encode`` alone over the built index's chunk texts (model loaded first)."""
    quiet()
    from sentence_transformers import SentenceTransformer

    from rag.embed import resolve_model_path

    texts, _ = _load_chunks(Path(p["index_dir"]))
    with Meter() as m_load:
        st = SentenceTransformer(str(resolve_model_path(p["model"])), device="cpu", local_files_only=True)
    st.encode(texts[:4], batch_size=p["batch_size"])
    runs = []
    for _ in range(p["runs"]):
        with Meter() as m:
            st.encode(texts, batch_size=p["batch_size"], normalize_embeddings=True)
        runs.append(m.dict())
    return {"model_load": m_load.dict(), "runs": runs, "n_chunks": len(texts)}


def worker_onnx(p: dict) -> dict:
    """Cosine of every backend variant vs sentence-transformers over all seed chunks, and speed."""
    quiet()
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from rag.config import Settings

    s = Settings()
    texts, spans = _load_chunks(Path(p["index_dir"]))
    speed_texts = texts
    if p.get("speed_index_dir"):
        more, _ = _load_chunks(Path(p["speed_index_dir"]))
        rng = np.random.default_rng(0)
        speed_texts = [more[i] for i in rng.choice(len(more), min(len(more), p["speed_n"]), replace=False)]
    from rag.embed import resolve_model_path

    st = SentenceTransformer(str(resolve_model_path(s.model_name)), device="cpu", local_files_only=True)
    ref = st.encode(texts, batch_size=s.embed_batch_size, normalize_embeddings=True)
    st.encode(speed_texts[:4])
    st_speed = []
    for _ in range(p["runs"]):
        with Meter() as m:
            st.encode(speed_texts, batch_size=s.embed_batch_size)
        st_speed.append(m.dict())
    out = {"n_chunks": len(texts), "speed_chunks": len(speed_texts),
           "variants": {"sentence-transformers": {"speed": st_speed, "cos_min": 1.0, "cos_mean": 1.0}}}
    for name, backend, precision in (("onnx fp32", "onnx", "fp32"), ("onnx int8", "onnx", "int8"),
                                      ("torch fp32", "torch", "fp32"), ("torch bf16", "torch", "bf16")):
        print(f"  {name}", file=sys.stderr, flush=True)
        with Meter() as m_load:
            emb = _make_embedder(backend, precision, s)
        vecs = emb.encode(texts)
        cos = (vecs * ref).sum(axis=1)
        emb.encode(speed_texts[:4])
        speed = []
        for _ in range(p["runs"]):
            emb.clear_cache()
            with Meter() as m:
                emb.encode(speed_texts)
            speed.append(m.dict())
        out["variants"][name] = {
            "cos_min": float(cos.min()),
            "cos_mean": float(cos.mean()),
            "load": m_load.dict(),
            "export_seconds": getattr(emb, "export_seconds", None),
            "speed": speed,
        }
        del emb
    return out


def worker_serve(p: dict) -> dict:
    """Warm answer latency with its breakdown, one-query embedding time, serving peak RSS."""
    quiet()
    import numpy as np

    from rag.config import Settings
    from rag.pipeline import Pipeline

    qs = [json.loads(line)["question"] for line in Path(p["questions"]).read_text().splitlines() if line.strip()]
    s = Settings(index_dir=Path(p["index_dir"]), embed_backend=p["backend"], reader_int8=p.get("reader_int8", True),
                 answer_from_corrections=False)
    with Meter() as m_model:
        emb = _make_embedder(p["backend"], p["precision"], s)
    pipe = Pipeline(s, embedder=emb)
    with Meter() as m_index:
        pipe.index()
    # Serving memory: load + 50 asks.
    for i in range(p["mem_asks"]):
        pipe.ask(qs[i % len(qs)])
    peak_serve = vm_status("VmHWM")
    # Warm latency.
    walls, timings = [], []
    for _ in range(p["passes"]):
        for q in qs:
            t = time.perf_counter()
            a = pipe.ask(q)
            walls.append((time.perf_counter() - t) * 1000)
            timings.append(a.timings_ms)
    qemb = []
    for _ in range(p["passes"]):
        for q in qs:
            t = time.perf_counter()
            emb.encode_query(q)
            qemb.append((time.perf_counter() - t) * 1000)
    profile = None
    if p.get("profile"):
        try:
            from pyinstrument import Profiler

            prof = Profiler(interval=0.0005)
            prof.start()
            for q in qs:
                pipe.ask(q)
            prof.stop()
            profile = prof.output_text(color=False, unicode=False, show_all=False)
            Path(p["profile"]).write_text(profile)
        except ImportError:
            profile = None
    keys = sorted({k for t in timings for k in t})
    return {
        "model_load": m_model.dict(),
        "index_load": m_index.dict(),
        "peak_rss_serve": peak_serve,
        "n_questions": len(qs),
        "n_asks": len(walls),
        "ask_ms": {"p50": pct(walls, 50), "p95": pct(walls, 95), "mean": float(np.mean(walls))},
        "timings_ms_p50": {k: pct([t[k] for t in timings if k in t], 50) for k in keys},
        "query_embed_ms": {"p50": pct(qemb, 50), "p95": pct(qemb, 95)},
        "faiss_type": pipe.index().manifest.get("faiss_type"),
        "n_chunks": len(pipe.index().chunks),
        "profile_file": p.get("profile") if profile else None,
    }


def worker_cold(p: dict) -> dict:
    """Process start -> first answer (the parent passes its spawn time)."""
    t_main = time.time()
    t0 = time.perf_counter()
    from rag.config import Settings
    from rag.pipeline import Pipeline

    t_imp = time.perf_counter()
    s = Settings(index_dir=Path(p["index_dir"]), embed_backend=p["backend"], answer_from_corrections=False)
    pipe = Pipeline(s)
    pipe.embedder
    t_embedder = time.perf_counter()
    pipe.span_model
    t_model = time.perf_counter()
    pipe.index()
    t_index = time.perf_counter()
    a = pipe.ask(p["question"])
    t_ans = time.perf_counter()
    return {
        "start_to_answer": (t_main - p["spawned"]) + (t_ans - t0),
        "interpreter_start": t_main - p["spawned"],
        "imports": t_imp - t0,
        "model_load": t_embedder - t_imp,
        "reader_load": t_model - t_embedder,
        "index_load": t_index - t_model,
        "first_ask": t_ans - t_index,
        "answer": a.answer,
        "torch_imported": "torch" in sys.modules,
        "sentence_transformers_imported": "sentence_transformers" in sys.modules,
        "transformers_imported": "transformers" in sys.modules,
    }


def worker_import_torch(p: dict) -> dict:
    t_main = time.time()
    t0 = time.perf_counter()
    import torch  # noqa: F401

    return {"import_torch": time.perf_counter() - t0, "start_to_imported": t_main - p["spawned"] + time.perf_counter() - t0}


def worker_faiss(p: dict) -> dict:
    """Flat vs HNSW on synthetic clustered vectors: build, bytes, single-query p50, recall@10."""
    import faiss
    import numpy as np

    n, d, nq = p["n"], p["dim"], p["queries"]
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((max(100, n // 500), d), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    t = time.perf_counter()
    xb = clustered(n, d, rng, centers)
    xq = clustered(nq, d, rng, centers)
    gen = time.perf_counter() - t
    print(f"  generated {n:,} x {d} in {gen:.1f}s", file=sys.stderr, flush=True)
    threads = faiss.omp_get_max_threads()

    def single_query_ms(index, k=10, m=100):
        out = {}
        for th in p["query_threads"]:
            faiss.omp_set_num_threads(th)
            ts = []
            for q in xq[:m]:
                t = time.perf_counter()
                index.search(q[None], k)
                ts.append((time.perf_counter() - t) * 1000)
            out[th] = (pct(ts, 50), pct(ts, 95))
        faiss.omp_set_num_threads(threads)
        return out

    rows = []
    flat = faiss.IndexFlatIP(d)
    with Meter() as m:
        flat.add(xb)
    _, gt = flat.search(xq, 10)
    sims, _ = flat.search(xq, 10)
    # Flat latency at the sizes below n (prefixes of the same data).
    for size in sorted({x for x in p["flat_sizes"] if x < n} | {n}):
        sub = flat if size == n else faiss.IndexFlatIP(d)
        if size != n:
            sub.add(xb[:size])
        lat = single_query_ms(sub)
        rows.append({"index": "flat", "n": size, "params": "", "build_s": m.wall * size / n, "bytes": size * d * 4,
                     "recall@10": 1.0, "p50_ms": lat, "other_load": m.other})
        print(f"  flat n={size:,}: p50 {lat}", file=sys.stderr, flush=True)
        if size != n:
            del sub

    def recall(index):
        _, got = index.search(xq, 10)
        return float(np.mean([len(set(gt[i]) & set(got[i])) / 10 for i in range(nq)]))

    for M, efc in p["hnsw"]:
        index = faiss.IndexHNSWFlat(d, M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = efc
        with Meter() as m:
            index.add(xb)
        nbytes = int(faiss.serialize_index(index).nbytes)
        print(f"  hnsw M={M} efC={efc}: built in {m.wall:.1f}s", file=sys.stderr, flush=True)
        for ef in p["ef_search"]:
            index.hnsw.efSearch = ef
            rows.append({"index": "hnsw", "n": n, "params": f"M={M} efC={efc} efS={ef}", "M": M, "efC": efc, "efS": ef,
                         "build_s": m.wall, "bytes": nbytes, "recall@10": recall(index), "p50_ms": single_query_ms(index),
                         "other_load": m.other})
        del index
    # IVF-Flat, what rag build uses above 100k vectors (rag/index.py: build_faiss).
    nlist = max(1, min(n // 40, int(4 * np.sqrt(n))))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    with Meter() as m:
        index.train(xb[np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))])
        index.add(xb)
    nbytes = int(faiss.serialize_index(index).nbytes)
    print(f"  ivf nlist={nlist}: built in {m.wall:.1f}s", file=sys.stderr, flush=True)
    for nprobe in p.get("nprobe", [16, 32, 64]):
        index.nprobe = min(nprobe, nlist)
        rows.append({"index": "ivf", "n": n, "params": f"nlist={nlist} nprobe={nprobe}", "nlist": nlist, "nprobe": nprobe,
                     "build_s": m.wall, "bytes": nbytes, "recall@10": recall(index), "p50_ms": single_query_ms(index),
                     "other_load": m.other})
    del index
    return {
        "n": n, "dim": d, "queries": nq, "generate_s": gen, "omp_threads": threads,
        "data": f"mixture of {len(centers)} Gaussians on the unit sphere (Zipf-weighted, sigma 1/sqrt(d) per "
        "coordinate); queries drawn from the same mixture",
        "nn_cos_p50": float(np.median(sims[:, 0])), "tenth_cos_p50": float(np.median(sims[:, 9])),
        "rows": rows,
    }


WORKERS = {
    "build": worker_build,
    "st_encode": worker_st_encode,
    "onnx": worker_onnx,
    "serve": worker_serve,
    "cold": worker_cold,
    "import_torch": worker_import_torch,
    "faiss": worker_faiss,
}

# ----------------------------------------------------------------------------------------------
# the orchestrating parent


def _fmt(x, nd=1, unit=""):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{nd}f}{unit}"
    return f"{x:,}{unit}"


def _mib(b):
    return None if b is None else b / 2**20


def bench_corpus(runner: Runner, corpus: str, articles: Path, qa: Path, tmp: Path, quick: bool, report: dict, skip: set,
                 variants: list[str]):
    from rich.table import Table

    from rag.config import Settings

    console = runner.console
    s = Settings()
    small = corpus == "seeds"
    runs = 3 if small else 1
    enc_runs = 3 if small else 0
    variants = [tuple(v.split("-")) for v in variants]
    res: dict = {"articles_dir": str(articles), "runs": runs, "builds": {}, "serve": {}}
    report["corpora"][corpus] = res
    index_dirs = {}
    if "build" not in skip or "ask" not in skip or "memory" not in skip:
        for backend, prec in variants:
            key = f"{backend}-{prec}"
            index_dirs[key] = tmp / f"{corpus}-{key}" / "index"
            r = runner.run("build", {"index_dir": str(index_dirs[key]), "articles": str(articles), "backend": backend,
                                     "precision": prec, "runs": runs, "enc_runs": enc_runs},
                           f"{corpus}: {runs} full build(s) with {key}")
            res["builds"][key] = r
    ref_index = index_dirs.get("torch-fp32")
    st = None
    if "build" not in skip and ref_index and res["builds"].get("torch-fp32"):
        st = runner.run("st_encode", {"index_dir": str(ref_index), "model": s.model_name, "batch_size": s.embed_batch_size,
                                      "runs": runs}, f"{corpus}: SentenceTransformer.encode alone x{runs}")
        res["st_encode"] = st

    # ---- 1. build throughput
    if "build" not in skip and res["builds"]:
        t = Table(title=f"1. Build throughput: {corpus} ({'median of 3 runs' if small else '1 run each'})")
        for col in ("what", "wall s", "CPU s", "other load", "articles/s", "chunks/s", "pieces/s",
                    "encode-only ST / build", "encode-only ours / build"):
            t.add_column(col, justify="right" if col != "what" else "left")
        st_wall = med([x["wall"] for x in st["runs"]]) if st else None
        any_b = next((b for b in res["builds"].values() if b), None)
        if any_b:
            n_art = any_b["builds"][0]["n_articles"]
            n_chunks = any_b["n_chunks"]
            pieces = any_b["word_pieces"]
            res["n_articles"], res["n_chunks"], res["word_pieces"] = n_art, n_chunks, pieces
            res["truncated_chunks"] = any_b["truncated_chunks"]

            def rate_row(what, wall, cpu, other, ours=None, build=None):
                t.add_row(what, _fmt(wall, 2), _fmt(cpu, 1), _fmt(other, 2), _fmt(n_art / wall, 1), _fmt(n_chunks / wall, 1),
                          _fmt(pieces / wall, 0), _fmt(st_wall / build, 2) if build and st_wall else "",
                          _fmt(ours / build, 2) if build and ours else "")

            if st:
                rate_row("ST encode only", st_wall, med([x["cpu"] for x in st["runs"]]),
                         med([x["other_load"] for x in st["runs"]]))
            for key, b in res["builds"].items():
                if not b:
                    continue
                enc = b["encode_with_spans"]
                ours = med([x["wall"] for x in enc]) if enc else med([x["stages"]["embed"] for x in b["builds"]])
                if enc:
                    rate_row(f"{key} encode_with_spans only", ours, med([x["cpu"] for x in enc]),
                             med([x["other_load"] for x in enc]))
                bw = med([x["wall"] for x in b["builds"]])
                rate_row(f"{key} full build" + ("" if key != "torch-bf16" else " (default on bf16 CPUs)"), bw,
                         med([x["cpu"] for x in b["builds"]]), med([x["other_load"] for x in b["builds"]]), ours, bw)
                b["summary"] = {"build_wall": bw, "encode_ours": ours, "encode_ours_source": "separate runs" if enc else
                                "embed stage of the build", "ratio_st": st_wall / bw if st_wall else None,
                                "ratio_ours": ours / bw, "chunks_per_s": n_chunks / bw, "pieces_per_s": pieces / bw,
                                "articles_per_s": n_art / bw}
            console.print(t)
            console.print(f"   {n_art:,} articles, {n_chunks:,} chunks, {pieces:,} word pieces embedded, "
                          f"{res['truncated_chunks']} chunks over the model's limit (truncated). "
                          "Model load is not in the build times; it is in the next table.")
            t2 = Table(title=f"   Build stages (median s) and model load: {corpus}")
            for col in ("backend", "model load s", "read", "chunk", "embed", "write", "total", "peak RSS MiB"):
                t2.add_column(col, justify="right" if col != "backend" else "left")
            for key, b in res["builds"].items():
                if not b:
                    continue
                st_ = {k: med([x["stages"].get(k) for x in b["builds"]]) for k in ("read", "chunk", "embed", "write", "total")}
                t2.add_row(key, _fmt(b["model_load"]["wall"], 2), *(_fmt(st_[k], 2) for k in st_), _fmt(_mib(b["peak_rss_build"]), 0))
                b["stages_median"] = st_
            console.print(t2)

    # ---- 3. answer latency
    if "ask" not in skip or "memory" not in skip:
        for key in ("torch-fp32", "onnx-fp32", "torch-bf16"):
            backend, prec = key.split("-")
            index_dir = index_dirs.get(key) if res["builds"].get(key) else None
            if index_dir is None and key == "onnx-fp32":
                # Same model (cosine >= 0.9999 between backends): the product serves ONNX queries over
                # an index built by any backend, so measure that over whichever index was built.
                index_dir = next((index_dirs[k] for k in index_dirs if res["builds"].get(k)), None)
            if index_dir is None:
                continue
            prof = REPORTS / f"profile-ask-{corpus}-{key}.txt"
            serve = {"index_dir": str(index_dir), "backend": backend, "precision": prec, "questions": str(qa),
                     "mem_asks": 50, "passes": 1 if small else 2}
            res["serve"][key] = runner.run("serve", {**serve, "profile": str(prof) if key == "onnx-fp32" else None},
                                           f"{corpus}: serving with {key} (load + 50 asks, then warm latency)")
            if key == "onnx-fp32":  # the baseline of the int8 reader copy: the float reader, same run
                res["serve"][f"{key} reader-float"] = runner.run(
                    "serve", {**serve, "reader_int8": False},
                    f"{corpus}: serving with {key} and the float reader (reader_int8 off)")
        target = 60.0  # ms, warm, 2 cores, with the span model (issue 13)
        t = Table(title=f"3. Answer latency, warm process: {corpus} ({qa.name}; target ask p50 <= {target:.0f} ms)")
        for col in ("backend", "asks", "ask p50 ms", "ask p95 ms", "embed p50", "retrieve p50", "read p50",
                    "tokenize", "model", "spans", "1 query embed p50 ms", "faiss"):
            t.add_column(col, justify="right" if col != "backend" else "left")
        for key, r in res["serve"].items():
            if not r:
                continue
            tm = r["timings_ms_p50"]
            ok = "ok" if r["ask_ms"]["p50"] <= target else "over"
            t.add_row(key, str(r["n_asks"]), f"{_fmt(r['ask_ms']['p50'], 1)} {ok}", _fmt(r["ask_ms"]["p95"], 1),
                      _fmt(tm.get("embed"), 1), _fmt(tm.get("retrieve"), 1), _fmt(tm.get("read"), 1),
                      _fmt(tm.get("read_tokenize"), 1), _fmt(tm.get("read_model"), 1), _fmt(tm.get("read_spans"), 1),
                      _fmt(r["query_embed_ms"]["p50"], 1), r["faiss_type"])
        console.print(t)
        q8, fl = res["serve"].get("onnx-fp32"), res["serve"].get("onnx-fp32 reader-float")
        if q8 and fl:
            console.print(f"int8 reader copy / float reader: ask p50 {q8['ask_ms']['p50'] / fl['ask_ms']['p50']:.2f}x, "
                          f"model p50 {q8['timings_ms_p50'].get('read_model', 0) / max(fl['timings_ms_p50'].get('read_model', 1e-9), 1e-9):.2f}x")

    # ---- 5. memory
    if "memory" not in skip:
        t = Table(title=f"5. Memory (peak RSS, measured in child processes): {corpus}")
        for col in ("backend", "build peak MiB", "RSS after model load MiB", "serve peak MiB (load + 50 asks)"):
            t.add_column(col, justify="right" if col != "backend" else "left")
        for key in dict.fromkeys([*res["builds"], *res["serve"]]):
            b, srv = res["builds"].get(key), res["serve"].get(key)
            t.add_row(key, _fmt(_mib(b["peak_rss_build"]) if b else None, 0), _fmt(_mib(b["rss_after_model"]) if b else None, 0),
                      _fmt(_mib(srv["peak_rss_serve"]) if srv else None, 0))
        console.print(t)
    return index_dirs


def bench_onnx(runner: Runner, seeds_index: Path, bbc_index: Path | None, report: dict, quick: bool):
    from rich.table import Table

    r = runner.run("onnx", {"index_dir": str(seeds_index), "speed_index_dir": str(bbc_index) if bbc_index else None,
                            "speed_n": 128 if quick else 320, "runs": 2 if quick else 3},
                   "onnx: cosine vs sentence-transformers on all seed chunks, and speed per variant")
    report["onnx"] = r
    if not r:
        return
    t = Table(title=f"2. Vectors vs SentenceTransformer.encode(normalize_embeddings=True) over all {r['n_chunks']} seed chunks; "
              f"speed on {r['speed_chunks']} {'BBC' if bbc_index else 'seed'} chunks (median)")
    for col in ("variant", "min cosine", "max deviation", "chunks/s", "CPU s / 100 chunks", "other load", "speed vs ST"):
        t.add_column(col, justify="right" if col != "variant" else "left")
    st_w = med([x["wall"] for x in r["variants"]["sentence-transformers"]["speed"]])
    st_c = med([x["cpu"] for x in r["variants"]["sentence-transformers"]["speed"]])
    for name, v in r["variants"].items():
        w = med([x["wall"] for x in v["speed"]])
        c = med([x["cpu"] for x in v["speed"]])
        v["chunks_per_s"] = r["speed_chunks"] / w
        t.add_row(name, f"{v['cos_min']:.7f}", f"{1 - v['cos_min']:.1e}", _fmt(r["speed_chunks"] / w, 1),
                  _fmt(c * 100 / r["speed_chunks"], 2), _fmt(med([x["other_load"] for x in v["speed"]]), 2),
                  f"{st_w / w:.2f}x wall, {st_c / c:.2f}x CPU")
    runner.console.print(t)


def bench_cold(runner: Runner, seeds_index: dict, report: dict, runs: int):
    from rich.table import Table

    rows = {}
    # Serving embeds questions with ONNX over an index built by any variant, so the ONNX cold start
    # runs whatever --variants built; torch's only when a torch-fp32 index was built.
    any_index = next(iter(seeds_index.values()), None)
    plan = {"onnx-fp32": seeds_index.get("onnx-fp32", any_index), "torch-fp32": seeds_index.get("torch-fp32")}
    for key, index_dir in plan.items():
        if index_dir is None:
            continue
        backend = key.split("-")[0]
        out = []
        for i in range(runs):
            r = runner.run("cold", {"index_dir": str(index_dir), "backend": backend,
                                    "question": "What share of OpenAI does Microsoft hold?"},
                           f"cold start {i + 1}/{runs}: {backend}")
            if r:
                out.append(r)
        rows[key] = out
    imp = [runner.run("import_torch", {}, f"import torch alone {i + 1}/{runs}") for i in range(runs)]
    report["cold"] = {"runs": rows, "import_torch": imp}
    t = Table(title=f"6. Cold start on the seeds: process start -> first answer (median of {runs} fresh processes)")
    for col in ("backend", "start->answer s", "interpreter", "imports", "model load", "reader load", "index load", "first ask",
                "torch imported?", "answer"):
        t.add_column(col, justify="right" if col not in ("backend", "answer") else "left")
    for key, out in rows.items():
        if not out:
            continue
        g = lambda k: med([x[k] for x in out])  # noqa: E731
        t.add_row(key, _fmt(g("start_to_answer"), 2), _fmt(g("interpreter_start"), 2), _fmt(g("imports"), 2),
                  _fmt(g("model_load"), 2), _fmt(g("reader_load"), 2), _fmt(g("index_load"), 2), _fmt(g("first_ask"), 2),
                  "yes" if any(x["torch_imported"] for x in out) else "no", str(out[0]["answer"]))
    imp = [x for x in imp if x]
    if imp:
        t.add_row("import torch alone", _fmt(med([x["start_to_imported"] for x in imp]), 2), "", _fmt(med([x["import_torch"] for x in imp]), 2),
                  "", "", "", "", "yes", "")
    runner.console.print(t)


def bench_faiss(runner: Runner, report: dict, quick: bool, n: int | None = None):
    from rich.table import Table

    n = n or (100_000 if quick else 1_000_000)
    p = {"n": n, "dim": 384, "queries": 200, "flat_sizes": [10_000, 20_000, 30_000, 100_000, 300_000],
         "hnsw": [[32, 80]] if not quick else [[16, 80], [32, 80]], "ef_search": [64, 128, 256],
         "query_threads": [1, 2]}
    r = runner.run("faiss", p, f"faiss: {n:,} synthetic clustered vectors, flat vs HNSW vs IVF", timeout=3000)
    report["faiss"] = r
    if not r:
        return
    t = Table(title=f"4. Vector search: {n:,} x 384 synthetic clustered vectors (mixture of Gaussians; nearest-neighbour "
              f"cosine p50 {r['nn_cos_p50']:.2f}, 10th {r['tenth_cos_p50']:.2f}); 200 queries")
    for col in ("index", "n", "params", "build s", "MiB", "recall@10", "p50 ms (1 thread)", "p50 ms (2 threads)"):
        t.add_column(col, justify="right" if col not in ("index", "params") else "left")
    for row in r["rows"]:
        lat = {int(k): v for k, v in row["p50_ms"].items()}
        t.add_row(row["index"], f"{row['n']:,}", row["params"], _fmt(row["build_s"], 1), _fmt(_mib(row["bytes"]), 0),
                  f"{row['recall@10']:.3f}", _fmt(lat.get(1, (None,))[0], 2), _fmt(lat.get(2, (None,))[0], 2))
    runner.console.print(t)
    runner.console.print("   flat rows below n are prefixes of the same data; flat build time is scaled from the full add.")


def _safe(console, fn):
    try:
        fn()
    except Exception:
        console.print_exception()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", choices=["seeds", "bbc", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="100k vectors for the FAISS section, fewer speed runs")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: build,onnx,ask,faiss,memory,cold,integrity,scale")
    ap.add_argument("--out", type=Path, default=None, help="JSON report path")
    ap.add_argument("--variants", default="torch-fp32,onnx-fp32,torch-bf16",
                    help="embedder variants built per corpus (torch-fp32, onnx-fp32, torch-bf16, onnx-int8)")
    ap.add_argument("--bbc-variants", default=None, help="variants for BBC only (default: --variants)")
    ap.add_argument("--faiss-n", type=int, default=None, help="vectors for the FAISS section (default 1M; 100k with --quick)")
    ap.add_argument("--scale", default=None, help="comma list of passage counts for the scale section, e.g. 10000,100000,1000000")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        emit(WORKERS[a.worker](json.loads(a.params or "{}")))
        return 0

    from rich.console import Console

    console = Console(record=True, width=200)
    skip = {x.strip() for x in a.skip.split(",") if x.strip()}
    runner = Runner(console)
    date = datetime.now().strftime("%Y-%m-%d")
    out = a.out or REPORTS / f"bench-{date}{'-quick' if a.quick else ''}.json"
    REPORTS.mkdir(parents=True, exist_ok=True)
    import platform

    report = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "quick": a.quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_start": os.getloadavg()},
        "corpora": {},
    }
    corpora = ["seeds", "bbc"] if a.corpus == "both" else [a.corpus]
    bbc = bbc_articles()
    if "bbc" in corpora and not bbc.is_dir():
        console.print(f"[yellow]BBC corpus not found at {bbc}: skipping it.[/yellow]")
        corpora.remove("bbc")
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmpd:
        tmp = Path(tmpd)
        dirs = {}
        for corpus in corpora:
            articles = SEEDS if corpus == "seeds" else bbc
            qa = ROOT / "eval" / ("seeds_qa.jsonl" if corpus == "seeds" else "bbc_qa.jsonl")
            vs = (a.bbc_variants if corpus == "bbc" and a.bbc_variants else a.variants).split(",")
            try:
                dirs[corpus] = bench_corpus(runner, corpus, articles, qa, tmp, a.quick, report, skip, vs)
            except Exception:
                console.print_exception()
            save_report(report, out, console)
        if "onnx" not in skip:
            seeds_index = dirs.get("seeds", {}).get("torch-fp32")
            if seeds_index is None:
                seeds_index = tmp / "seeds-onnx-check" / "index"
                runner.run("build", {"index_dir": str(seeds_index), "articles": str(SEEDS), "backend": "onnx",
                                     "precision": "fp32", "runs": 1, "enc_runs": 0}, "seeds: one build for the onnx check")
            _safe(console, lambda: bench_onnx(runner, seeds_index, dirs.get("bbc", {}).get("torch-fp32"), report, a.quick))
            save_report(report, out, console)
        if "cold" not in skip and "seeds" in dirs:
            _safe(console, lambda: bench_cold(runner, dirs["seeds"], report, 3))
            save_report(report, out, console)
        if "integrity" not in skip:
            built = [d for c in ("bbc", "seeds") for d in dirs.get(c, {}).values() if (d / "CURRENT").exists()]
            if built:
                from eval.scale import run_integrity

                _safe(console, lambda: run_integrity(Runner(console, module="eval.scale"), report, built[0]))
                save_report(report, out, console)
        if "faiss" not in skip:
            _safe(console, lambda: bench_faiss(runner, report, a.quick, a.faiss_n))
        if a.scale and "scale" not in skip:
            from eval.scale import run_scale

            sizes = [int(x) for x in a.scale.split(",") if x.strip()]
            _safe(console, lambda: run_scale(Runner(console, module="eval.scale"), report, sizes))
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["total_seconds"] = time.perf_counter() - runner.started
    console.print(f"{runner.elapsed()} done in {report['total_seconds'] / 60:.1f} min; load average at start "
                  f"{report['machine']['loadavg_start'][0]:.2f}, at end {report['machine']['loadavg_end'][0]:.2f} "
                  f"(2 cores; other users' load inflates wall times)")
    console.print(f"JSON: {out}")
    save_report(report, out, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
