"""The span model: a fine-tuned MiniLM encoder with a start/end head, run by onnxruntime.

The model (``rag/models/reader/``, trained by ``rag/training/train.py``, its card in
``rag/models/reader/README.md``) scores each token of a question + passage window as the first
and the last token of the answer. The [CLS] token's start + end score is the score of "no
answer in this window". Serving imports no torch: the ONNX file and the tokenizer are all it
reads.

With ``reader_int8`` (the default) the session runs an int8 copy of the reader, made once per
reader file by onnxruntime's dynamic quantization and cached under ``cache_dir/onnx/`` (see
:func:`int8_copy`): about half the time of the float model on 2 cores, measured on the news
sets within noise of it (``rag/models/reader/README.md``). The float file stays the reader: it
is what ``rag train`` continues and what the cache is rebuilt from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Settings
from .errors import ModelNotFoundError
from .windows import MAX_PIECES, Window, load_tokenizer, make_windows, pad

log = logging.getLogger(__name__)

DEFAULT_READER_DIR: Path = Settings.model_fields["reader_dir"].default
ONNX_FILE = "reader.onnx"
CALIBRATION_FILE = "calibration.json"
TRAINING_FILE = "training.json"
DEFAULT_THRESHOLD = 0.5  # a model without a calibrated threshold: abstain below even odds
# How the int8 copy is made; part of its cache name, so a change of recipe makes a new copy.
# Kept in float: the span head, and the first layer's feed-forward output: with it quantized
# too, the best span moved on 11% of 120 news dev questions, with it in float on 6% (and news
# F1 went from -0.014 to +0.011 against the float model; the model card has the table).
INT8_RECIPE = "dyn-pc-q8-v1"
INT8_KEEP_FLOAT = ("qa_outputs", "layer.0/output/dense")


@dataclass(slots=True)
class Logits:
    start: np.ndarray  # (windows, seq)
    end: np.ndarray

    def null(self) -> np.ndarray:
        """Each window's no-answer score: [CLS] as start and end."""
        return self.start[:, 0] + self.end[:, 0]

    def shared_null(self) -> float:
        """The no-answer score of all the windows read together, for a model trained with shared
        normalisation (``rag.training.data``): "no answer" is every window's [CLS], so its score
        is the log-sum-exp of their start scores plus that of their end scores."""
        if len(self.start) == 0:
            return 0.0
        return float(_logsumexp(self.start[:, 0]) + _logsumexp(self.end[:, 0]))


def calibration_for(cal: dict, precision: str) -> dict:
    """The calibration of ``calibration.json`` for the precision served: its top level is the fit
    of the precision named by its ``"precision"`` (``"float"`` when absent); a fit of another
    precision sits under ``"other_precisions"``. A precision without a fit of its own uses the
    top level (and says so in ``"fit_for"``)."""
    if not cal:
        return {}
    top = cal.get("precision", "float")
    other = (cal.get("other_precisions") or {}).get(precision)
    if precision == top or not other:
        return {**cal, "fit_for": top}
    return {**cal, **other, "fit_for": precision}


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x))
    return m + float(np.log(np.sum(np.exp(x - m))))


class SpanModel:
    """Tokenizer + ONNX session of the reader; thread-safe (onnxruntime sessions are)."""

    def __init__(self, model_dir: Path | None = None, threads: int | None = None, max_pieces: int = MAX_PIECES,
                 int8: bool = False, cache_dir: Path | None = None):
        import onnxruntime as ort

        self.model_dir = Path(model_dir or DEFAULT_READER_DIR)
        path = self.model_dir / ONNX_FILE
        if not path.is_file():
            raise ModelNotFoundError(
                f"Reader model not found: {path} (setting reader_dir / env RAG_READER_DIR). It ships in the "
                "repository under rag/models/reader/; train one with: python -m rag.training.train"
            )
        self.tokenizer = load_tokenizer(self.model_dir, max_pieces)
        self.max_pieces = max_pieces
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.log_severity_level = 3
        # No spin-waiting after a run: the embedder's and the reader's sessions take turns on
        # the same cores, and a spinning pool starves the other (the reader's model time doubled).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.precision, self.note = "float", None
        self.onnx_file = path  # the file the session runs
        if int8:
            try:
                self.session = self._int8_session(ort, opts, path, Path(cache_dir or Settings().cache_dir))
                self.precision = "int8"
            except Exception as exc:  # no int8 copy (disk full, read-only cache, ...): serve the float model
                self.note = f"int8 copy unavailable ({type(exc).__name__}: {exc}); serving the float model"
                log.warning("reader: %s", self.note)
        if self.precision == "float":
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}
        cal = self.model_dir / CALIBRATION_FILE
        self.calibration: dict = calibration_for(json.loads(cal.read_text()) if cal.is_file() else {}, self.precision)
        # How the model's scores compare across windows (its training.json): "shared" (trained with
        # shared normalisation: one no-answer score for all windows read) or "window" (each alone).
        trained = self.model_dir / TRAINING_FILE
        self.normalisation: str = (json.loads(trained.read_text()) if trained.is_file() else {}).get(
            "normalisation", "window")

    def _int8_session(self, ort, opts, path: Path, cache_dir: Path):
        copy = int8_copy(path, cache_dir)
        try:
            session = ort.InferenceSession(str(copy), opts, providers=["CPUExecutionProvider"])
        except Exception:  # a damaged copy (or one an older onnxruntime wrote): made again, once
            copy.unlink(missing_ok=True)
            copy = int8_copy(path, cache_dir)
            session = ort.InferenceSession(str(copy), opts, providers=["CPUExecutionProvider"])
        self.onnx_file = copy
        return session

    @property
    def threshold(self) -> float:
        """The abstention threshold chosen with this model's confidence (``calibration.json``)."""
        return float(self.calibration.get("threshold", DEFAULT_THRESHOLD))

    def windows(self, question: str, passages: list[str]) -> list[Window]:
        return make_windows(self.tokenizer, question, passages)

    def logits(self, windows: list[Window]) -> Logits:
        """Start and end logits of every window ((windows, longest window); -1e4 past a window's
        end). The windows run in groups of about equal length (:func:`length_groups`), one
        onnxruntime call each: a padded batch of windows of different lengths took 63 ms where
        the same windows one group at a time took 43 (int8 copy, 2 cores, 80 news questions of
        3 windows). With the int8 copy, whose activations are quantized per call, a window's
        scores depend only on the windows of its own length group (often itself alone), no longer
        on every window read."""
        if not windows:
            return Logits(np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))
        n = max(len(w) for w in windows)
        start = np.full((len(windows), n), -1e4, dtype=np.float32)
        end = np.full((len(windows), n), -1e4, dtype=np.float32)
        for group in length_groups([len(w) for w in windows]):
            inputs = pad([windows[i] for i in group])
            feed = {k: v for k, v in inputs.items() if k in self._inputs}
            s, e = self.session.run(["start_logits", "end_logits"], feed)
            for row, i in enumerate(group):
                k = len(windows[i])
                start[i, :k] = s[row, :k]
                end[i, :k] = e[row, :k]
        return Logits(start, end)

    def confidence(self, features: dict[str, float]) -> float:
        """Calibrated probability that the answer is right: a logistic function of the reader's
        scores (Platt scaling, fit on the dev split by ``rag/training/calibrate.py``; the weights are in
        ``calibration.json``). Without a calibration file, the sigmoid of the margin."""
        weights = self.calibration.get("weights") or {"margin": 1.0}
        z = self.calibration.get("bias", 0.0) + sum(w * features.get(k, 0.0) for k, w in weights.items())
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))))


def length_groups(lengths: list[int], waste: float = 0.05) -> list[list[int]]:
    """Indices of windows to run together: by length, a window joins the group before it while
    padding the group to its longest window costs at most ``waste`` more tokens than the group
    holds (windows of one long passage, all full, run as one batch; the rest mostly alone)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups:
            g = groups[-1]
            if lengths[i] * (len(g) + 1) <= (1 + waste) * (sum(lengths[j] for j in g) + lengths[i]):
                g.append(i)
                continue
        groups.append([i])
    return groups


def abstain_threshold(settings: Settings) -> float:
    """The threshold in force: the ``abstain_threshold`` setting when set, else the one calibrated
    with the reader in ``settings.reader_dir`` for the precision served (read from its
    ``calibration.json`` only)."""
    if settings.abstain_threshold is not None:
        return float(settings.abstain_threshold)
    cal = Path(settings.reader_dir) / CALIBRATION_FILE
    fit = calibration_for(json.loads(cal.read_text()) if cal.is_file() else {}, "int8" if settings.reader_int8 else "float")
    return float(fit.get("threshold", DEFAULT_THRESHOLD))


def best_spans(
    window: Window,
    start: np.ndarray,
    end: np.ndarray,
    sentence_of: np.ndarray,
    max_pieces: int,
    top: int = 20,
) -> list[tuple[float, int, int]]:
    """The best (score, first token, last token) spans of one window, best first.

    A span starts and ends on passage tokens, ends no earlier than it starts, holds at most
    ``max_pieces`` word pieces and stays inside one sentence (``sentence_of[token]``: the
    sentence number of each token, -1 outside the passage). Score = start + end logit.
    """
    ctx = window.context
    if len(ctx) == 0:
        return []
    n = len(ctx)
    k = min(top, n)
    s_idx = ctx[np.argpartition(-start[ctx], k - 1)[:k]]
    e_idx = ctx[np.argpartition(-end[ctx], k - 1)[:k]]
    S, E = np.meshgrid(s_idx, e_idx, indexing="ij")
    ok = (E >= S) & (E - S < max_pieces) & (sentence_of[S] == sentence_of[E])
    if not ok.any():
        return []
    scores = (start[S] + end[E])[ok]
    order = np.argsort(-scores)
    return [(float(scores[i]), int(S[ok][i]), int(E[ok][i])) for i in order]


_INT8_LOCK = threading.Lock()  # one quantization at a time in a process (a file lock across processes)


def int8_copy_path(path: Path, cache_dir: Path) -> Path:
    """Where the int8 copy of the reader ONNX file ``path`` is cached (made or not)."""
    import onnxruntime

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    h.update(f"{INT8_RECIPE}:{INT8_KEEP_FLOAT}:{onnxruntime.__version__}".encode())
    return Path(cache_dir) / "onnx" / f"reader-{h.hexdigest()[:16]}-{INT8_RECIPE}.onnx"


def int8_copy(path: Path, cache_dir: Path) -> Path:
    """The int8 copy of the reader ONNX file ``path``: made on first use (a few seconds), then
    read from ``cache_dir/onnx/reader-<key>.onnx``, the key hashing the file, the recipe and the
    onnxruntime version. Made under a thread lock and a file lock, in a temporary folder beside
    the target and renamed into place, so threads and processes that start together make it
    once and never read half a file."""
    from filelock import FileLock

    target = int8_copy_path(path, cache_dir)
    if target.is_file():
        return target
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    with _INT8_LOCK, FileLock(str(folder / ".reader-int8.lock"), timeout=600):
        if not target.is_file():
            _quantize(path, target)
    return target


def _quantize(path: Path, target: Path) -> None:
    import tempfile

    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(path))
    float_storage(model)
    keep = [n.name for n in model.graph.node if any(k in n.name for k in INT8_KEEP_FLOAT)]
    # The quantizer logs through the root logger (advice to pre-process, which this graph needs
    # not); a handler of our own keeps logging.warning from installing a stderr one for good.
    root, quiet = logging.getLogger(), logging.NullHandler()
    level = root.level
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".reader-int8-") as tmp:
        src, out = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        root.addHandler(quiet)
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(str(src), str(out), per_channel=True, op_types_to_quantize=["MatMul", "Attention"],
                             nodes_to_exclude=keep, weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": TensorProto.FLOAT})
        finally:
            root.setLevel(level)
            root.removeHandler(quiet)
        os.replace(out, target)


def float_storage(model) -> None:
    """Undo ``rag.training.export.fp16_storage`` in place: each float16 initializer read through a
    Cast to float32 becomes a float32 initializer under the Cast's output name (the quantizer
    needs the weights as initializers)."""
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    folded = []
    for node in graph.node:
        src = inits.get(node.input[0]) if node.op_type == "Cast" and node.input else None
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if src is not None and src.data_type == TensorProto.FLOAT16 and to == TensorProto.FLOAT:
            graph.initializer.remove(src)
            graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(src).astype(np.float32),
                                                             node.output[0]))
            folded.append(node)
    for node in folded:
        graph.node.remove(node)
