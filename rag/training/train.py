"""Fine-tune the bundled all-MiniLM-L6-v2 encoder as an extractive span reader, on Wikipedia and news.

    python -m rag.training.train --work ~/.cache/rag/reader-sn --out ~/.cache/rag/reader-sn/final  # the shipped recipe
    python -m rag.training.train --device cuda ...          # the same run on a GPU (same seed, same data order)
    python -m rag.training.train --max-questions 64 --max-steps 2 --out /tmp/r   # smoke run

The model is the encoder with a linear start/end head (``BertForQuestionAnswering``): for each
window of question + passage it scores every token as the answer's start and end; the [CLS]
token's start + end score is the "no answer" score. Each question is trained with all the
windows it would be read in, its own passage's and distractors', normalised together
(shared normalisation: ``rag.training.data``), so a span's score compares across windows.

Training data: the ``train`` split of ``rag/squad_split.json`` of ``--squad`` (every article not
held out for dev or test) and the news questions of ``--news`` less their fixed by-article dev
part (``--news-repeat`` times: news is what the reader serves, and the smaller set); never an
eval set. CPU (bf16 autocast where the CPU has it) or CUDA (bf16 autocast), seeded, with a
checkpoint every ``--save-every`` steps and at each epoch's end; a killed run started again with
the same arguments continues from the last checkpoint. The final weights are written to
``--out`` in fp16 (safetensors) with the tokenizer and config: ``rag.training.export`` makes the
ONNX file serving loads.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from rag.embed import cpu_has_bf16, resolve_model_path
from rag.span_model import ONNX_FILE
from rag.evaluation.squad import load_squad, split_articles
from rag.training.cloze import cloze_articles
from rag.training.export import load_onnx_reader
from rag.training.data import Group, build_groups, schedule, split_news, training_sets
from rag.windows import load_tokenizer, pad

from rag.config import Settings

DEFAULT_SQUAD, DEFAULT_NEWS = training_sets(Settings())
DEFAULT_WORK = Path.home() / ".cache" / "rag" / "reader-train"
DEFAULT_OUT = Path.home() / ".cache" / "rag" / "reader-train" / "final"

log = logging.getLogger("train_reader")


def shared_norm_loss(start, end, mask, groups: list[Group]):
    """Mean over ``groups`` of the negative log-likelihood of the gold start and end, each
    normalised over every token of every window of its group (rows of ``start`` / ``end`` in
    group order). Gold: the answer's positions in any window, or every window's [CLS]."""
    import torch

    start = start.float().masked_fill(mask, -1e4)
    end = end.float().masked_fill(mask, -1e4)
    losses = []
    row = 0
    for g in groups:
        n = len(g)
        s, e = start[row : row + n], end[row : row + n]
        gold_s = torch.zeros_like(s, dtype=torch.bool)
        gold_e = torch.zeros_like(e, dtype=torch.bool)
        if g.answerable:
            for i in range(n):
                gold_s[i, g.starts[i]] = True
                gold_e[i, g.ends[i]] = True
        else:
            gold_s[:, 0] = True
            gold_e[:, 0] = True
        for logits, gold in ((s, gold_s), (e, gold_e)):
            losses.append(torch.logsumexp(logits.flatten(), 0) - torch.logsumexp(logits.masked_fill(~gold, -1e4).flatten(), 0))
        row += n
    return torch.stack(losses).sum() / (2 * len(groups))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad", type=Path, default=DEFAULT_SQUAD, help="SQuAD 2.0 JSON (Wikipedia); its train split is used")
    ap.add_argument("--news", type=Path, default=DEFAULT_NEWS,
                    help="news questions, SQuAD 2.0 JSON; its fixed dev part is left out ('none': no news)")
    ap.add_argument("--squad-questions", type=int, default=None, help="a seeded sample of this many SQuAD questions")
    ap.add_argument("--news-repeat", type=int, default=2, help="times each news question is seen per epoch")
    ap.add_argument("--same-article", type=int, default=1, help="distractor paragraphs of the question's article")
    ap.add_argument("--other-article", type=int, default=1, help="distractor passages of other articles")
    ap.add_argument("--retrieved-distractors", type=int, default=0,
                    help="news questions: this many passages of other articles retrieved as served from "
                         "--distractor-corpus replace the embedding-chosen other-article distractor (0: off)")
    ap.add_argument("--distractor-corpus", type=Path, default=Settings().corpora_dir / "bbc" / "articles",
                    help="articles folder the news distractors are retrieved from (the whole BBC corpus)")
    ap.add_argument("--distractor-index", type=Path, default=Path.home() / ".cache" / "rag" / "dev-indexes" / "bbc",
                    help="rag index of --distractor-corpus (built when missing or stale)")
    ap.add_argument("--cloze-questions", type=int, default=0,
                    help="add this many cloze questions made from --distractor-corpus articles "
                         "(rag.training.cloze; never an eval set's article, the news dev part or a reprint of one; 0: none)")
    ap.add_argument("--model", default="all-MiniLM-L6-v2", help="base encoder, or a trained reader to continue")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="checkpoints and log (outside the work tree)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32, help="windows per batch (whole question groups)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=float, default=0.1, help="share of steps with a linear warm-up")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--max-questions", type=int, default=None, help="this many questions of each data set (smoke runs)")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                    help="auto: bf16 autocast on CUDA and on CPUs with bf16 instructions, else fp32")
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


def load_sources(args) -> list[tuple[str, list, int | None]]:
    squad = min(filter(None, (args.squad_questions, args.max_questions)), default=None)
    sources = [("squad", split_articles(load_squad(args.squad), "train"), squad)]
    if str(args.news) != "none":
        sources += [("news", split_news(load_squad(args.news), "train"), args.max_questions)] * max(0, args.news_repeat)
    if args.cloze_questions:
        cloze = cloze_articles(args.distractor_corpus, kept_out(args.news), args.cloze_questions, args.seed)
        sources.append(("cloze", cloze, None))
    return sources


def kept_out(news: Path) -> set[str]:
    """File names of the articles training never reads, not even as a distractor or a cloze
    question: every eval set's sources (``eval/*.jsonl``) and the news set's dev part."""
    from rag.evaluation.qa_sets import load_qa

    root = Path(__file__).resolve().parents[2]
    banned: set[str] = set()
    for f in sorted((root / "eval").glob("*.jsonl")):
        for it in load_qa(f)[0]:
            banned.update(it.sources)
    if str(news) != "none":
        banned.update(f"{a.title}.txt" for a in split_news(load_squad(news), "dev"))
    return banned


def served_distractors(args, sources) -> dict[str, dict[str, list[tuple[frozenset[str], str]]]]:
    """For every news training question, the passages the served retriever brings for it from
    ``--distractor-corpus``, in its order, each with the files it stands for (its own and its
    folded near-duplicates). Passages of articles an eval set uses (``eval/*.jsonl`` sources)
    or of the news set's dev part are never shown to training, not even as distractors."""
    from rag.pipeline import Pipeline

    banned = kept_out(args.news)
    pipe = Pipeline(Settings().model_copy(update={"articles_dir": args.distractor_corpus,
                                                  "index_dir": args.distractor_index}))
    pipe.ensure_index()
    data = pipe.index()
    out: dict[str, list[tuple[frozenset[str], str]]] = {}
    questions = [q for name, arts, _ in sources if name == "news" for a in arts for p in a.paragraphs for q in p.questions]
    for q in questions:
        if q.id in out:  # a repeated source
            continue
        _, hits = pipe.search(data, q.question, top_k=args.retrieved_distractors + 8)
        kept = []
        for h in hits:
            art = data.articles[h.chunk.article_id]
            files = frozenset([h.file, *art.aliases, *(d.file for d in h.duplicates)])
            if not files & banned:
                kept.append((files, art.text[h.chunk.start : h.chunk.end]))
        out[q.id] = kept
    log.info("news distractors retrieved from %s for %d questions (%d articles kept out)", args.distractor_corpus,
             len(out), len(banned))
    return {"news": out}


def _train(args) -> int:
    import torch
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    from rag.config import Settings
    from rag.embed import load_embedder

    hf_logging.set_verbosity_error()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to torch")
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and (args.device == "cuda" or cpu_has_bf16()))

    base = resolve_model_path(args.model)
    tokenizer = load_tokenizer(base)
    # distractors are chosen by the serving embedder, also when --model continues a trained reader
    settings = Settings()
    embedder = load_embedder(settings.model_name, backend="onnx", cache_dir=settings.cache_dir)
    sources = load_sources(args)
    retrieved = served_distractors(args, sources) if args.retrieved_distractors > 0 else None
    groups = build_groups(sources, tokenizer, embedder, seed=args.seed, same_article=args.same_article,
                          other_article=args.other_article, log=log, retrieved=retrieved,
                          retrieved_other=args.retrieved_distractors)
    n_windows = sum(len(g) for g in groups)
    log.info("%d question groups (%d unanswerable), %d windows", len(groups),
             sum(not g.answerable for g in groups), n_windows)

    device = torch.device(args.device)
    model = load_reader_model(base).to(device)
    opt = make_optimizer(model, args.lr, args.weight_decay)
    plan, epoch_ends = schedule(groups, args.batch_size, args.seed, args.epochs)
    total = len(plan)
    if args.max_steps:
        total = min(total, args.max_steps)
    warm = max(1, int(args.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )

    ckpt = args.work / "checkpoint.pt"
    config = {k: str(v) for k, v in vars(args).items() if k not in ("work", "out", "threads", "save_every", "device")}
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
    for idx in plan[step:total]:
        epoch = bisect.bisect_right(epoch_ends, step)  # 0-based epoch of this step
        loss = train_step(model, opt, sched, [groups[i] for i in idx], device, bf16)
        step += 1
        losses.append(loss)
        seconds = time.perf_counter() - t_run
        recent = float(np.mean(losses[-50:]))
        bar.update(1)
        bar.set_postfix(epoch=epoch + 1, loss=f"{recent:.3f}", lr=f"{sched.get_last_lr()[0]:.1e}")
        if step % 10 == 0:
            log.info("step %d/%d epoch %d loss %.4f (mean of last 50: %.4f) %.1f s", step, total, epoch + 1,
                     losses[-1], recent, seconds)
        end_of_epoch = step in epoch_ends
        if step % args.save_every == 0 or end_of_epoch or step >= total:
            save()
            if end_of_epoch:
                start = epoch_ends[epoch - 1] if epoch else 0
                log.info("epoch %d done at step %d, mean loss of the epoch %.4f, %.0f s",
                         epoch + 1, step, float(np.mean(losses[start - step:])), seconds)
    bar.close()
    write_model(model.cpu(), tokenizer_dir=base, out=args.out, meta={
        "normalisation": "shared", "base_model": args.model, "steps": step, "epochs": args.epochs, "device": args.device,
        "train_groups": len(groups), "train_windows": n_windows,
        "final_loss_mean_last_50": float(np.mean(losses[-50:])) if losses else None,
        "train_seconds": round(seconds, 1), "bf16": bf16, "config": config,
    })
    log.info("wrote %s (%.0f s of training, last-50 loss %.4f)", args.out, seconds, float(np.mean(losses[-50:])))
    return 0


def load_reader_model(base: Path):
    """The torch model of a reader folder in float32 master weights: a shipped reader (only its
    ONNX file is in the repository) or one this script wrote (fp16 safetensors)."""
    from transformers import BertForQuestionAnswering

    if (base / ONNX_FILE).is_file() and not any(base.glob("*.safetensors")):
        model = load_onnx_reader(base)
    else:
        model = BertForQuestionAnswering.from_pretrained(str(base), local_files_only=True)
    return model.float()


def make_optimizer(model, lr: float, weight_decay: float):
    """AdamW with no weight decay on biases and LayerNorm weights."""
    import torch

    no_decay = ("bias", "LayerNorm.weight")
    params = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(params, lr=lr)


def train_step(model, opt, sched, batch: list[Group], device, bf16: bool) -> float:
    """One optimiser step on a batch of whole question groups (shared-normalisation loss); the loss."""
    import torch

    feed = {k: torch.from_numpy(v).to(device) for k, v in pad([w for g in batch for w in g.windows]).items()}
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(**feed)
    loss = shared_norm_loss(out.start_logits, out.end_logits, feed["attention_mask"] == 0, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    return float(loss.detach())


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
