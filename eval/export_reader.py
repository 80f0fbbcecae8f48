"""Export the trained reader to the one ONNX file that serving loads (``rag/models/reader/reader.onnx``).

    python -m eval.export_reader --from ~/.cache/rag/reader-train/final --precision fp16
    python -m eval.export_reader --from ... --precision int8

The model is traced with eager attention and fused with onnxruntime's BERT optimizer (the
same recipe as the embedder's export, checked against the plain export). Then either

* ``fp16``: the weights are *stored* in float16 with a Cast to float32 in front of each, so
  the file is half the size (about 45 MB) and onnxruntime folds the casts once when it loads
  the session: the model still computes in float32;
* ``int8``: dynamic int8 quantization of the MatMul / Attention weights (about 23 MB).

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

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "config.json")


def export(src: Path, out_dir: Path, precision: str) -> Path:
    import onnx
    import torch
    from transformers import BertForQuestionAnswering

    if src.suffix == ".pt":  # a training checkpoint (eval.train_reader): the base model + its state
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
        if precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(best), str(final), per_channel=True, op_types_to_quantize=["MatMul", "Attention"],
                             weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        elif precision == "fp16":
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
    ap.add_argument("--from", dest="src", type=Path, required=True, help="folder written by eval.train_reader, or one of its checkpoint.pt files")
    ap.add_argument("--out", type=Path, default=DEFAULT_READER_DIR)
    ap.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp16")
    args = ap.parse_args(argv)
    export(args.src, args.out, args.precision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
