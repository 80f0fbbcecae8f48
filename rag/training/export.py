"""Export the trained reader to the one ONNX file that serving loads (``rag/models/reader/reader.onnx``).

    python -m rag.training.export --from ~/.cache/rag/reader-train/final --precision fp16

The model is traced with eager attention and fused with onnxruntime's BERT optimizer (the
same recipe as the embedder's export, checked against the plain export). With ``fp16`` (the
default) the weights are *stored* in float16 with a Cast to float32 in front of each, so the
file is half the size (about 45 MB) and onnxruntime folds the casts once when it loads the
session: the model still computes in float32. The int8 model that serving runs is not
exported here: ``rag.span_model.int8_copy`` makes it from this file on first use, so the file
in the repository stays one that ``rag train`` can continue.

The export is checked against the torch model on real windows (max logit difference
printed) and the tokenizer files are copied beside it. Run once by a developer after
training; serving never imports torch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from rag.embed import _fuse, eager_attention
from rag.span_model import DEFAULT_READER_DIR, ONNX_FILE
from rag.windows import load_tokenizer, make_windows, pad

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "config.json",
                   "training.json")


def export(src: Path, out_dir: Path, precision: str) -> Path:
    import onnx
    import torch
    from transformers import BertForQuestionAnswering

    if src.suffix == ".pt":  # a training checkpoint (rag.training.train): the base model + its state
        from rag.embed import resolve_model_path

        state = torch.load(src, map_location="cpu", weights_only=False)
        base = resolve_model_path(state["config"]["model"])
        model = BertForQuestionAnswering.from_pretrained(str(base), local_files_only=True)
        model.load_state_dict(state["model"])
        print(f"checkpoint at step {state['step']}")
        src = base
    else:
        model = BertForQuestionAnswering.from_pretrained(str(src), local_files_only=True, torch_dtype=torch.float32)
    model = eager_attention(model.float().eval())

    class _QA(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            o = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return o.start_logits, o.end_logits

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".export{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    raw, fused, final = tmp / "raw.onnx", tmp / "fused.onnx", tmp / "final.onnx"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
    dyn = {k: {0: "batch", 1: "seq"} for k in [*names, "start_logits", "end_logits"]}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_QA().eval(), dummy, str(raw), input_names=names,
                              output_names=["start_logits", "end_logits"], dynamic_axes=dyn,
                              opset_version=17, dynamo=False)
        best = fused if _fuse(raw, fused, model.config) else raw
        print(f"fused graph: {best == fused}")
        if precision == "fp16":
            onnx.save(fp16_storage(onnx.load(str(best))), str(final))
        else:
            shutil.copyfile(best, final)
        target = out_dir / ONNX_FILE
        os.replace(final, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in TOKENIZER_FILES:
        if (src / name).exists() and src.resolve() != out_dir.resolve():
            shutil.copyfile(src / name, out_dir / name)
    check(model, target, src)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return target


def fp16_storage(model, min_size: int = 1024):
    """Store float32 initializers of ``min_size`` elements or more as float16, each behind a
    Cast back to float32 (folded by onnxruntime at session start)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < min_size:
            continue
        name = init.name
        half = numpy_helper.from_array(arr.astype(np.float16), f"{name}__fp16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT, name=f"{name}__cast"))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return model


def load_onnx_reader(model_dir: Path):
    """The torch ``BertForQuestionAnswering`` of an exported reader (``reader.onnx`` + ``config.json``).

    The inverse of :func:`export` for the fused fp32/fp16 graphs it writes, so a shipped reader
    (only its ONNX file is in the repository) can be trained further: named initializers map to
    their module by name, each MatMul's weight by the module path in its output's name (stored
    transposed), and each fused Attention's QKV weight and bias split in three. An int8 model
    (serving's cached copy) cannot be read back. Checked against onnxruntime by :func:`check`.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from transformers import BertConfig, BertForQuestionAnswering

    graph = onnx.load(str(Path(model_dir) / ONNX_FILE)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:  # fp16 storage: name__fp16 -> Cast -> name
        if n.op_type == "Cast" and n.input[0] in arrays:
            arrays[n.output[0]] = arrays[n.input[0]]
    if any(a.dtype == np.int8 for a in arrays.values()):
        raise ValueError(f"{model_dir}: an int8 model cannot be trained further; use the float reader.onnx")
    state: dict[str, np.ndarray] = {}
    for name, arr in arrays.items():
        if name.startswith("m.") and not name.endswith("__fp16"):
            state[name[2:]] = arr
    layer = 0
    for n in graph.node:
        if n.op_type == "MatMul" and n.input[1] in arrays:
            out = n.output[0]
            if out.startswith("/m/") and out.endswith("/MatMul_output_0"):
                module = out[len("/m/"):-len("/MatMul_output_0")].replace("/", ".")
            else:
                module = "qa_outputs"  # the head: the graph's last MatMul, named by onnx
            state[f"{module}.weight"] = arrays[n.input[1]].T
        elif n.op_type == "Attention":
            w, b = arrays[n.input[1]], arrays[n.input[2]]
            hidden = w.shape[0]
            for k, part in enumerate(("query", "key", "value")):
                prefix = f"bert.encoder.layer.{layer}.attention.self.{part}"
                state[f"{prefix}.weight"] = w[:, k * hidden : (k + 1) * hidden].T
                state[f"{prefix}.bias"] = b[k * hidden : (k + 1) * hidden]
            layer += 1
    model = BertForQuestionAnswering(BertConfig.from_pretrained(str(model_dir)))
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"{model_dir}: could not map the ONNX graph to the model (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")
    return model.float().eval()


def check(model, onnx_path: Path, src: Path) -> float:
    """Largest difference between torch and onnxruntime logits on a few real windows."""
    import onnxruntime as ort
    import torch

    tok = load_tokenizer(src)
    ctx = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
           "a region in France. They were descended from Norse raiders and pirates from Denmark, Iceland "
           "and Norway who, under their leader Rollo, agreed to swear fealty to King Charles III. ") * 3
    wins = make_windows(tok, "In what country is Normandy located?", [ctx, ctx[:200]])
    feed = pad(wins)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    s1, e1 = sess.run(None, feed)
    with torch.no_grad():
        o = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
    keep = feed["attention_mask"].astype(bool)
    diff = max(np.abs(s1 - o.start_logits.numpy())[keep].max(), np.abs(e1 - o.end_logits.numpy())[keep].max())
    print(f"max |onnx - torch| logit difference on {len(wins)} windows: {diff:.4f}")
    return float(diff)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", type=Path, required=True, help="folder written by rag.training.train, or one of its checkpoint.pt files")
    ap.add_argument("--out", type=Path, default=DEFAULT_READER_DIR)
    ap.add_argument("--precision", choices=["fp32", "fp16"], default="fp16")
    args = ap.parse_args(argv)
    export(args.src, args.out, args.precision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
