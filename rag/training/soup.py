"""Average the weights of readers fine-tuned from the same starting reader: a uniform model soup.

    python -m rag.training.soup --out ~/.cache/rag/reader-soup/final A B C D
    python -m rag.training.export --from ~/.cache/rag/reader-soup/final --out ~/.cache/rag/reader-soup/onnx --precision fp16

Runs of one recipe that differ only in seed (or in a small option) and start from the same
trained reader end in the same basin; the mean of their weights reads like an ensemble of them
at the cost of one model (Wortsman et al. 2022, "Model soups: averaging weights of multiple
fine-tuned models improves accuracy without increasing inference time"). Two runs trained from
the base encoder each are *not* such ingredients (measured in the model card: their mean was
worse than either), so the ingredients must start from the same reader: the soup's
``training.json`` lists each one's ``base_model`` and settings to show it.

Each ingredient is a folder ``rag.training.train`` wrote (fp16 safetensors) or a shipped reader
folder (ONNX only; read back into torch by ``rag.training.export.load_onnx_reader``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.training.train import load_reader_model, write_model


def ingredients_meta(sources: list[Path]) -> list[dict]:
    """Each ingredient's ``training.json``; a clear error when they cannot be averaged."""
    metas = []
    for src in sources:
        path = Path(src) / "training.json"
        if not path.is_file():
            raise SystemExit(f"{src}: no training.json, so its starting reader is unknown; a soup needs it")
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("normalisation") != "shared":
            raise SystemExit(f"{src}: trained with normalisation {meta.get('normalisation')!r}, not 'shared'")
        metas.append(meta)
    return metas


def soup(sources: list[Path]):
    """The torch reader whose every floating-point weight is the mean of the ingredients'."""
    models = [load_reader_model(Path(s)) for s in sources]
    states = [m.state_dict() for m in models]
    keys = list(states[0])
    for src, st in zip(sources[1:], states[1:]):
        if list(st) != keys or any(st[k].shape != states[0][k].shape for k in keys):
            raise SystemExit(f"{src}: not the same architecture as {sources[0]}")
    mean = {k: (sum(st[k].float() for st in states) / len(states)) if states[0][k].is_floating_point() else states[0][k]
            for k in keys}
    models[0].load_state_dict(mean)
    return models[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="+", type=Path, help="reader folders fine-tuned from the same starting reader")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if len(args.sources) < 2:
        raise SystemExit("a soup needs at least two readers")
    metas = ingredients_meta(args.sources)
    model = soup(args.sources)
    write_model(model, tokenizer_dir=args.sources[0], out=args.out, meta={
        "normalisation": "shared", "soup_of": [str(s) for s in args.sources], "ingredients": metas})
    print(f"wrote {args.out}: the mean of {len(args.sources)} readers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
