"""Fine-tune the bundled all-MiniLM-L6-v2 encoder as an extractive span reader (SQuAD 2.0 style).

    python -m eval.train_reader --windows both --epochs 2 --max-steps 1300 \
        --work ~/.cache/rag/reader-both --out ~/.cache/rag/reader-both/final   # the shipped model (its card)
    python -m eval.train_reader                       # whole paragraphs only: resumes from ~/.cache/rag/reader-train
    python -m eval.train_reader --max-questions 64 --epochs 1 --out /tmp/r   # smoke run

The model is the encoder with a linear start/end head (``BertForQuestionAnswering``): for each
window of question + passage it scores every token as the answer's start and end; the [CLS]
token's start + end score is the "no answer" score. Unanswerable questions, and windows that
do not hold the whole answer, are trained to point at [CLS].

Training data is the ``train`` split of ``rag/squad_split.json`` (every article not held out
for dev or test); never an eval set. CPU only, bf16 autocast where the CPU has it, seeded, with
a checkpoint every ``--save-every`` steps and at each epoch's end; a killed run started again
with the same arguments continues from the last checkpoint. The final weights are written to
``--out`` in fp16 (safetensors) with the tokenizer and config, ready for ``rag.span_model``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from rag.embed import cpu_has_bf16, resolve_model_path
from rag.squad import load_squad, split_articles
from rag.windows import answer_tokens, load_tokenizer, make_windows, pad

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "squad-explorer" / "train.json"
DEFAULT_WORK = Path.home() / ".cache" / "rag" / "reader-train"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "rag" / "models" / "reader"

log = logging.getLogger("train_reader")


def build_examples(articles, tokenizer, max_questions: int | None, seed: int):
    """(window, start_token, end_token) for every window of every training question."""
    qs = [(p.context, q) for a in articles for p in a.paragraphs for q in p.questions]
    if max_questions:
        random.Random(seed).shuffle(qs)
        qs = qs[:max_questions]
    examples = []
    for context, q in qs:
        for w in make_windows(tokenizer, q.question, [context]):
            if q.impossible:
                examples.append((w, 0, 0))
            else:
                text, start = q.answers[0]  # train on the first gold answer (the dataset README)
                examples.append((w, *answer_tokens(w, start, start + len(text))))
    return examples, len(qs)


def reading_examples(articles, tokenizer, embedder, max_questions: int | None, seed: int, negatives: int = 1,
                     context: int = 1):
    """Windows shaped like the ones ``rag.reader.Reader`` reads at serving time.

    Serving reads, in each retrieved passage, the sentence closest to the question (cosine of
    sentence vectors pooled from the passage's token vectors) with ``context`` sentences either
    side. For each question this yields: that window in its own paragraph; for an answerable
    question whose answer lies elsewhere in the paragraph, also the window around the answer's
    sentence; and the same kind of window in the ``negatives`` other paragraphs of the article
    closest to the question (hard negatives, labelled "no answer" unless they hold the answer
    text). Labels: the answer's tokens when the window holds the whole answer, else [CLS].
    """
    from rag.chunk import split_sentences

    paras = [(ai, p) for ai, a in enumerate(articles) for p in a.paragraphs]
    sents = [split_sentences(p.context) or [(0, len(p.context))] for _, p in paras]
    log.info("embedding %d paragraphs (%d sentences) to choose windows as serving does",
             len(paras), sum(map(len, sents)))
    pvecs, svecs = embedder.encode_with_spans([p.context for _, p in paras], sents)
    qs = [(pi, q) for pi, (_, p) in enumerate(paras) for q in p.questions]
    if max_questions:
        random.Random(seed).shuffle(qs)
        qs = qs[:max_questions]
    qvecs = embedder.encode([q.question for _, q in qs])
    by_article: dict[int, list[int]] = {}
    for pi, (ai, _) in enumerate(paras):
        by_article.setdefault(ai, []).append(pi)

    def window_of(pi: int, centre: int) -> tuple[int, int]:
        ss = sents[pi]
        a, b = max(0, centre - context), min(len(ss), centre + context + 1)
        return ss[a][0], ss[b - 1][1]

    examples = []
    for (pi, q), qv in zip(qs, qvecs):
        ctx = paras[pi][1].context
        answer = None if q.impossible else q.answers[0]
        spans = [window_of(pi, int(np.argmax(svecs[pi] @ qv)))]
        if answer is not None:
            a0 = answer[1]
            for j, (s, e) in enumerate(sents[pi]):
                if s <= a0 < e:
                    spans.append(window_of(pi, j))
                    break
        others = [o for o in by_article[paras[pi][0]] if o != pi]
        others.sort(key=lambda o: -float(pvecs[o] @ qv))
        negs = []
        for o in others[:negatives]:
            s, e = window_of(o, int(np.argmax(svecs[o] @ qv)))
            text = paras[o][1].context[s:e]
            if answer is not None and answer[0].lower() in text.lower():
                continue  # may answer it too: no label to trust
            negs.append(text)
        for s, e in dict.fromkeys(spans):
            for w in make_windows(tokenizer, q.question, [ctx[s:e]]):
                if answer is None:
                    examples.append((w, 0, 0))
                else:
                    text, start = answer
                    examples.append((w, *answer_tokens(w, start - s, start - s + len(text))))
        for text in negs:
            examples.extend((w, 0, 0) for w in make_windows(tokenizer, q.question, [text]))
    return examples, len(qs)


def batches_for_epoch(examples, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches of similar length (less padding), the same for a given seed and epoch."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(examples)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for i in range(0, len(order), pool):
        group = sorted(order[i : i + pool], key=lambda j: len(examples[j][0]))
        batches.extend(group[b : b + batch_size] for b in range(0, len(group), batch_size))
    rng.shuffle(batches)
    return batches


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="checkpoints and log (outside the work tree)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=float, default=0.1, help="share of steps with a linear warm-up")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--max-questions", type=int, default=None, help="train on this many questions (smoke runs)")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    ap.add_argument("--windows", choices=["paragraph", "reading", "both"], default="paragraph",
                    help="paragraph: whole gold paragraphs in 256-piece windows; reading: the sentence windows "
                    "serving reads, plus hard negatives from the article's other paragraphs; both: the two sets together")
    ap.add_argument("--negatives", type=int, default=1, help="hard-negative paragraphs per question (--windows reading or both)")
    args = ap.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(args.work / "train.log"), logging.StreamHandler(sys.stderr)]
    for h in handlers:
        h.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return _train(args)
    finally:
        for h in handlers:
            log.removeHandler(h)
            h.close()


def _train(args) -> int:
    import torch
    from tqdm import tqdm
    from transformers import BertForQuestionAnswering
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and cpu_has_bf16())

    base = resolve_model_path(args.model)
    tokenizer = load_tokenizer(base)
    articles = split_articles(load_squad(args.data), "train")
    examples = []
    if args.windows in ("paragraph", "both"):
        examples, n_questions = build_examples(articles, tokenizer, args.max_questions, args.seed)
    if args.windows in ("reading", "both"):
        from rag.config import Settings
        from rag.embed import load_embedder

        # windows are chosen by the serving embedder, also when --model continues a trained reader
        settings = Settings()
        embedder = load_embedder(settings.model_name, backend="onnx", cache_dir=settings.cache_dir)
        more, n_questions = reading_examples(articles, tokenizer, embedder, args.max_questions, args.seed,
                                             args.negatives)
        examples += more
    n_cls = sum(1 for _, s, _ in examples if s == 0)
    log.info("train split: %d articles, %d questions, %d windows (%d point at [CLS])",
             len(articles), n_questions, len(examples), n_cls)

    # float32 master weights, also when starting from a reader this script wrote (stored in fp16)
    model = BertForQuestionAnswering.from_pretrained(str(base), local_files_only=True).float()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": args.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr)
    steps_per_epoch = math.ceil(len(examples) / args.batch_size)
    total = steps_per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    warm = max(1, int(args.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )

    ckpt = args.work / "checkpoint.pt"
    config = {k: str(v) for k, v in vars(args).items() if k not in ("work", "out", "threads", "save_every")}
    step, losses, seconds = 0, [], 0.0
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state["config"] == config:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            step, losses, seconds = state["step"], state["losses"], state["seconds"]
            log.info("resumed at step %d of %d from %s", step, total, ckpt)
        else:
            log.info("checkpoint %s is from other settings: starting over", ckpt)

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
                    "losses": losses, "seconds": seconds, "config": config}, tmp)
        os.replace(tmp, ckpt)

    model.train()
    bar = tqdm(total=total, initial=step, desc="train reader", unit="step", dynamic_ncols=True)
    t_run = time.perf_counter() - seconds
    while step < total:
        epoch = step // steps_per_epoch
        batches = batches_for_epoch(examples, args.batch_size, args.seed, epoch)
        for idx in batches[step - epoch * steps_per_epoch :]:
            feed = {k: torch.from_numpy(v) for k, v in pad([examples[i][0] for i in idx]).items()}
            starts = torch.tensor([examples[i][1] for i in idx])
            ends = torch.tensor([examples[i][2] for i in idx])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(**feed)
            ce = torch.nn.functional.cross_entropy
            mask = feed["attention_mask"] == 0
            s_log = out.start_logits.float().masked_fill(mask, -1e4)
            e_log = out.end_logits.float().masked_fill(mask, -1e4)
            loss = (ce(s_log, starts) + ce(e_log, ends)) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            seconds = time.perf_counter() - t_run
            recent = float(np.mean(losses[-50:]))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{recent:.3f}", lr=f"{sched.get_last_lr()[0]:.1e}")
            if step % 10 == 0:
                log.info("step %d/%d epoch %d loss %.4f (mean of last 50: %.4f) %.1f s", step, total, epoch + 1,
                         losses[-1], recent, seconds)
            end_of_epoch = step % steps_per_epoch == 0
            if step % args.save_every == 0 or end_of_epoch or step >= total:
                save()
                if end_of_epoch:
                    log.info("epoch %d done at step %d, mean loss of the epoch %.4f, %.0f s",
                             epoch + 1, step, float(np.mean(losses[-steps_per_epoch:])), seconds)
            if step >= total:
                break
    bar.close()
    write_model(model, tokenizer_dir=base, out=args.out, meta={
        "base_model": args.model, "steps": step, "epochs": args.epochs, "train_questions": n_questions,
        "train_windows": len(examples), "final_loss_mean_last_50": float(np.mean(losses[-50:])) if losses else None,
        "train_seconds": round(seconds, 1), "bf16": bf16, "config": config,
    })
    log.info("wrote %s (%.0f s of training, last-50 loss %.4f)", args.out, seconds, float(np.mean(losses[-50:])))
    return 0


def write_model(model, tokenizer_dir: Path, out: Path, meta: dict) -> None:
    """fp16 safetensors + config + tokenizer: what ``rag.span_model`` exports to ONNX once and caches."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    model = model.eval().half()
    model.save_pretrained(str(out), safe_serialization=True)
    model.float()
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (tokenizer_dir / name).exists():
            shutil.copyfile(tokenizer_dir / name, out / name)
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
