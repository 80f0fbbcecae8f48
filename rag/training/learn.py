"""``rag train``: continue training the reader in use on the chat's marks, keep it only if better.

One run, under the readers folder's lock (``rag.readers``):

1. the marks of the ``feedback_file`` are checked against the live index (``rag.training.marks``)
   and split, fixed per question, into training marks and held-out marks;
2. the training marks become question groups (the reader's shared-normalisation groups of
   ``rag.training.data``) mixed with a seeded replay sample of the bundled training sets
   (SQuAD train split and bbc-news-qa less its dev part, ``train_replay`` questions of each per
   training mark) so the reader does not forget; without the training sets (``datasets_dir``) it trains on the
   marks alone and says so;
3. the reader in use (shipped: read back from its ONNX file) trains on the CPU, seeded, for at
   most ``--minutes`` of steps (the step count follows the pace so far, checked every 10 steps:
   fewer when slow, back up to the full plan when the pace picks up, ``fit_plan``);
4. the new reader is exported to ONNX (fp16 storage), with the base reader's calibration.json,
   its bias moved so that the new reader abstains on as many of the eval set's questions as
   the base did (``match_abstention``: training on marks, "no answer" ones most of all, moves
   every confidence, and the copied fit alone then refused more of every kind of question);
5. both readers answer the held-out marks (over the live index) and the eval set
   ``train_eval_qa`` (over ``train_eval_articles``); "right" is the eval's contains-answer for
   an answerable question and an abstention for an unanswerable one;
6. kept only if the held-out marks are not worse and the eval set drops by at most
   ``train_eval_tolerance``: then it becomes a version and the reader in use, atomically;
   otherwise the run says why and the reader in use stays. Every run's record is kept.

A killed run leaves only a ``.train-*`` folder (removed by the next run): the reader in use is
switched last, in one step.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import RagError, TrainError
from ..readers import CARD, SHIPPED, new_version_name
from ..span_model import CALIBRATION_FILE, TRAINING_FILE
from .data import training_sets
from .marks import MarkExample, SkippedMark, mark_group, resolve_marks



# progress(stage, done, total, message)
Progress = Callable[[str, int, int, str], None]


@dataclass
class TrainOptions:
    minutes: float = 10.0
    seed: int = 13
    epochs: int = 3
    batch_size: int = 16  # windows per batch
    lr: float = 3e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    replay: int | None = None  # per training mark and source; None: the train_replay setting
    max_steps: int | None = None  # smoke runs
    command: str = "rag train"
    threads: int | None = None  # torch threads; None: every core


@dataclass
class Figures:
    n: int
    right_before: int
    right_after: int | None = None

    @property
    def before(self) -> float:
        return self.right_before / self.n if self.n else 0.0

    @property
    def after(self) -> float | None:
        return None if self.right_after is None else (self.right_after / self.n if self.n else 0.0)


@dataclass
class TrainReport:
    kept: bool = False
    version: str | None = None
    base: str = SHIPPED
    reason: str = ""
    marks: int = 0
    train_marks: int = 0
    heldout_marks: int = 0
    skipped: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    replay_questions: int = 0
    groups: int = 0
    windows: int = 0
    steps: int = 0
    planned_steps: int = 0
    loss_first: float | None = None
    loss_last: float | None = None
    train_seconds: float = 0.0
    total_seconds: float = 0.0
    heldout: dict = field(default_factory=dict)
    eval: dict = field(default_factory=dict)
    eval_set: str = ""
    tolerance: float = 0.0
    bias_shift: float | None = None  # the confidence logit's shift that kept the base's abstention share
    command: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def decide(heldout: Figures, evalset: Figures, tolerance: float) -> tuple[bool, str]:
    """Keep the new reader only if it answers at least as many held-out marks right and its share
    of the eval set answered right drops by at most ``tolerance``."""
    if heldout.right_after is None or evalset.right_after is None:
        return False, "the new reader was not evaluated"
    if heldout.right_after < heldout.right_before:
        return False, (f"worse on the held-out marks: {heldout.right_after} of {heldout.n} right, "
                       f"{heldout.right_before} before")
    drop = evalset.before - evalset.after
    if drop > tolerance + 1e-9:
        return False, (f"worse on the eval set: {evalset.after:.1%} right, {evalset.before:.1%} before "
                       f"(a drop of {drop:.1%}, more than the tolerance {tolerance:.1%})")
    return True, (f"held-out marks {heldout.right_before} -> {heldout.right_after} of {heldout.n} right; eval set "
                  f"{evalset.before:.1%} -> {evalset.after:.1%} (tolerance {tolerance:.1%})")


def count_right(pipe, items) -> int:
    """Questions answered right: the eval's contains-answer when answerable, an abstention when not."""
    return _right(_ask(pipe, items))


def _right(results) -> int:
    return sum(_is_right(r) for r in results)


def _is_right(r) -> bool:
    return r.answer_correct if r.item.answerable else r.abstained


def changed_marks(before, after) -> list[dict]:
    """The held-out marks the new reader gets right that the old one got wrong ("fixed") and the
    reverse ("broken"), with both readers' answers (None: it abstained), in the marks' order."""
    out = []
    for b, a in zip(before, after, strict=True):
        if _is_right(b) != _is_right(a):
            out.append({"question": b.item.question, "change": "fixed" if _is_right(a) else "broken",
                        "before": None if b.abstained else b.answer, "after": None if a.abstained else a.answer})
    return out


def _ask(pipe, items):
    from ..evaluation.run import ask_all

    return ask_all(pipe, items, k=pipe.settings.top_k) if items else []


MAX_SHIFT = 3.0  # the largest bias shift (in logits) match_abstention applies


def match_abstention(base_abstained: int, confidences: list[float], threshold: float) -> float:
    """The shift of the confidence's logit that makes a new reader abstain on as many of the same
    questions as the reader it continues did (``base_abstained``): its confidences there are
    ``confidences`` (0 where it found no span), and it abstains below ``threshold``. Training on
    marks ("no answer in the articles" ones most of all) moves every confidence, not only the
    marked questions'; the calibration copied from the base would then refuse more of every
    kind of question. Only the share is matched (no answer is read), within +-``MAX_SHIFT``."""
    n = len(confidences)
    if not n:
        return 0.0
    eps = 1e-6
    z = sorted(float(np.log(max(c, eps) / max(1 - c, eps))) for c in confidences)
    t = float(np.log(threshold / (1 - threshold))) if 0 < threshold < 1 else 0.0
    k = min(max(base_abstained, 0), n)
    # exactly the k lowest abstain (z + delta < t) for delta in [t - z[k], t - z[k-1]): the one
    # nearest 0, so a new reader that already abstains as often keeps its calibration as it is
    low = t - z[k] if k < n else -np.inf
    high = t - z[k - 1] if k > 0 else np.inf
    step = 1e-3 * min(1.0, (high - low) / 2) if np.isfinite(high - low) else 1e-3
    delta = 0.0 if low <= 0.0 < high else (low + step if low > 0 else high - step)
    return float(np.clip(delta, -MAX_SHIFT, MAX_SHIFT))


def shift_calibration(cal: dict, delta: float) -> dict:
    """``calibration.json`` with every fit's bias moved by ``delta`` (the logit of each confidence)."""
    out = {**cal, "bias": float(cal.get("bias", 0.0)) + delta, "bias_shift": round(delta, 4)}
    others = cal.get("other_precisions") or {}
    if others:
        out["other_precisions"] = {k: {**v, "bias": float(v.get("bias", 0.0)) + delta} for k, v in others.items()}
    return out


def mark_items(examples: list[MarkExample]):
    from ..evaluation.qa_sets import parse_qa_lines

    items, _ = parse_qa_lines([json.dumps(e.record, ensure_ascii=False) for e in examples], "held-out marks")
    return items


def train_reader(pipe, opts: TrainOptions | None = None, progress: Progress | None = None) -> TrainReport:
    """Run ``rag train`` for ``pipe`` (its index, marks and readers folder); see the module doc."""
    opts = opts or TrainOptions()
    store = pipe.readers
    if store.root is None:
        raise TrainError("No readers folder is set (setting readers_dir / env RAG_READERS_DIR): a trained reader "
                         "would have nowhere to go.")
    with store.lock():
        store.clean_leftovers()
        report = TrainReport(command=opts.command)
        name = new_version_name()
        work = store.root / f".train-{name}"
        started = time.time()

        def stage(key: str, done: int = 0, total: int = 0, message: str = "") -> None:
            store.write_status({"state": "running", "pid": os.getpid(), "stage": key, "done": done, "total": total,
                                "message": message, "started": started, "version": name})
            if progress:
                progress(key, done, total, message)

        try:
            _run(pipe, opts, report, name, work, stage)
        except BaseException as exc:
            msg = str(exc) if isinstance(exc, RagError) else f"{type(exc).__name__}: {exc}"
            store.write_status({"state": "failed", "pid": os.getpid(), "message": msg, "started": started,
                                "finished": time.time()})
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        report.total_seconds = round(time.time() - started, 1)
        store.write_run(name, report.to_dict())
        store.write_status({"state": "kept" if report.kept else "refused", "pid": os.getpid(),
                            "message": report.reason, "started": started, "finished": time.time(),
                            "version": report.version, "changed": (report.heldout or {}).get("changed") or []})
        return report


def _run(pipe, opts: TrainOptions, report: TrainReport, name: str, work: Path, stage) -> None:
    from ..feedback import FeedbackStore
    from ..windows import load_tokenizer

    s = pipe.settings
    t0 = time.time()
    stage("marks", message="Checking the marks")
    records = FeedbackStore(s.feedback_file).lines()
    if not records:
        raise TrainError(f"No marks in {s.feedback_file}: mark answers in the chat first (correct, wrong with the "
                         "right words, or no answer in the articles).")
    if not Path(s.train_eval_qa).is_file():
        raise TrainError(f"The eval set {s.train_eval_qa} is not there (setting train_eval_qa): a trained reader "
                         "cannot be checked, so none is trained.")
    data = pipe.index()
    examples, skipped = resolve_marks(records, data, s.train_heldout_share)
    report.marks = len(examples) + len(skipped)
    report.skipped = [asdict(x) for x in skipped]
    report.notes += [f"{e.id}: {e.note}" for e in examples if e.note]
    train = [e for e in examples if not e.heldout]
    heldout = [e for e in examples if e.heldout]
    report.train_marks, report.heldout_marks = len(train), len(heldout)
    why = f" ({len(skipped)} left out: {_reasons(skipped)})" if skipped else ""
    if len(examples) < s.train_min_marks:
        raise TrainError(f"Too few usable marks: {len(examples)} of {report.marks}{why}; rag train needs at least "
                         f"{s.train_min_marks} (setting train_min_marks). Mark more answers in the chat.")
    if not heldout or len(train) < 2:
        raise TrainError(f"The fixed split of the {len(examples)} usable marks left {len(train)} to train on and "
                         f"{len(heldout)} to judge with{why}; mark a few more answers in the chat.")

    base = pipe.readers.current_name()
    active = pipe.readers.active(base)
    if active.note:
        report.notes.append(active.note)
    report.base = active.name
    tokenizer = load_tokenizer(active.path)

    stage("marks", 0, len(train), "Reading the marked questions")
    groups = []
    for i, ex in enumerate(train):
        _, hits = pipe.search(data, ex.question, top_k=s.read_passages)
        g = mark_group(ex, data, tokenizer, hits)
        if g is None:
            report.notes.append(f"{ex.id}: the answer does not fit one window of the reader; not trained on")
        else:
            groups.append(g)
        stage("marks", i + 1, len(train), "Reading the marked questions")
    n_marks = len(groups)
    if not n_marks:
        raise TrainError("None of the training marks fits the reader's window: nothing to train on.")
    replay = s.train_replay if opts.replay is None else opts.replay
    if replay and n_marks:
        stage("replay", message="Sampling the bundled training sets")
        squad, news = training_sets(s)
        if squad.is_file() and news.is_file():
            rgroups = replay_groups(replay * n_marks, tokenizer, pipe.embedder, opts.seed, squad, news)
            report.replay_questions = len(rgroups)
            groups += rgroups
        else:
            report.notes.append(f"the bundled training sets are not in {s.datasets_dir}: trained on the marks alone (the "
                                "eval set still guards against forgetting)")
    report.groups, report.windows = len(groups), sum(len(g) for g in groups)

    # the figures before: the reader in use
    eval_pipe = _eval_pipeline(pipe, active.path)
    eval_items = _eval_items(s.train_eval_qa)
    held_items = mark_items(heldout)
    stage("before", 0, 2, "Scoring the reader in use")
    held_before = _ask(pipe.with_reader(active.path), held_items)
    held = Figures(len(held_items), _right(held_before))
    stage("before", 1, 2, "Scoring the reader in use")
    before = _ask(eval_pipe, eval_items)
    evals = Figures(len(eval_items), _right(before))
    report.eval_set, report.tolerance = str(s.train_eval_qa), s.train_eval_tolerance

    out = work / "reader"
    meta = _train_groups(active.path, groups, opts, report, work, stage, n_marks)
    stage("export", message="Writing the new reader")
    _export(work / "torch", out)
    shutil.rmtree(work / "torch", ignore_errors=True)
    if (active.path / CALIBRATION_FILE).is_file():
        # the base's confidence fit, its bias moved so that the new reader abstains on as many of
        # the eval set's questions as the base did (match_abstention)
        stage("after", 0, 3, "Matching the new reader's abstention")
        shutil.copyfile(active.path / CALIBRATION_FILE, out / CALIBRATION_FILE)
        fresh = _ask(eval_pipe.with_reader(out), eval_items)
        delta = match_abstention(sum(r.abstained for r in before), [r.confidence for r in fresh],
                                 eval_pipe.abstain_threshold)
        cal = shift_calibration(_json(out / CALIBRATION_FILE), delta)
        (out / CALIBRATION_FILE).write_text(json.dumps(cal, indent=2) + "\n")
        report.bias_shift = round(delta, 4)
    base_training = _json(active.path / TRAINING_FILE)
    (out / TRAINING_FILE).write_text(json.dumps({**meta, "normalisation": base_training.get("normalisation", "shared"),
                                                 "base_training": base_training}, indent=2) + "\n")

    stage("after", 1, 3, "Scoring the new reader")
    held_after = _ask(pipe.with_reader(out), held_items)
    held.right_after = _right(held_after)
    stage("after", 2, 3, "Scoring the new reader")
    evals.right_after = count_right(eval_pipe.with_reader(out), eval_items)
    report.heldout = {"n": held.n, "right_before": held.right_before, "right_after": held.right_after,
                      "before": round(held.before, 4), "after": round(held.after, 4),
                      "changed": changed_marks(held_before, held_after)}
    report.eval = {"n": evals.n, "right_before": evals.right_before, "right_after": evals.right_after,
                   "before": round(evals.before, 4), "after": round(evals.after, 4)}
    report.kept, report.reason = decide(held, evals, s.train_eval_tolerance)
    report.total_seconds = round(time.time() - t0, 1)
    if not report.kept:
        report.reason = "not kept, " + report.reason + f"; the reader in use stays ({report.base})"
        return
    report.version = name
    card = {"name": name, "base": base, "shipped_sha256": _shipped_sha(pipe, active), **report.to_dict(),
            "calibration": f"calibration.json of {report.base} with its bias moved by {report.bias_shift} so that "
                           "the new reader abstains on as many eval-set questions as the base did"}
    (out / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    (out / "README.md").write_text(model_card(card))
    pipe.readers.publish(out, name, base)
    report.reason = f"kept as {name}: " + report.reason


def _shipped_sha(pipe, active) -> str:
    from ..readers import file_sha256
    from ..span_model import ONNX_FILE

    if active.name == SHIPPED:
        return file_sha256(pipe.readers.shipped / ONNX_FILE)
    return pipe.readers.card(active.name).get("shipped_sha256") or file_sha256(pipe.readers.shipped / ONNX_FILE)


def _reasons(skipped: list[SkippedMark]) -> str:
    first = "; ".join(f"“{x.question[:50]}”: {x.reason}" for x in skipped[:3])
    return first + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _eval_items(path: Path):
    from ..evaluation.qa_sets import load_qa

    items, _ = load_qa(path)
    return items


def _eval_pipeline(pipe, reader_dir: Path):
    """A pipeline over the eval set's articles (its own index under the readers folder, brought up
    to date incrementally), sharing the question embedder."""
    from ..pipeline import Pipeline

    s = pipe.settings
    es = s.model_copy(update={"articles_dir": Path(s.train_eval_articles), "index_dir": pipe.readers.root / "eval-index",
                              "readers_dir": None, "reader_dir": Path(reader_dir), "answer_from_corrections": False})
    p = Pipeline(es, embedder=pipe.embedder)
    p.build(wait=600, engine="local")
    return p


def replay_groups(n: int, tokenizer, embedder, seed: int, squad: Path, news: Path) -> list:
    """About ``n`` questions of each bundled training set (SQuAD train split, bbc-news-qa less its
    dev part) as groups: a seeded sample of articles, then of their questions (distractors from
    the sampled articles, as ``build_groups`` picks them)."""
    from ..evaluation.squad import load_squad, split_articles
    from .data import build_groups, split_news

    sources = []
    for name, articles in (("squad", split_articles(load_squad(squad), "train")),
                           ("news", split_news(load_squad(news), "train"))):
        rng = random.Random(seed)
        order = list(range(len(articles)))
        rng.shuffle(order)
        picked, nq = [], 0
        for i in order:
            if nq >= 2 * n and len(picked) >= 2:
                break
            picked.append(articles[i])
            nq += articles[i].n_questions
        sources.append((name, picked, n))
    return build_groups(sources, tokenizer, embedder, seed=seed)


def fit_plan(full: int, step: int, elapsed: float, budget: float) -> int:
    """Steps to run of ``full``, after ``step`` steps took ``elapsed`` seconds, to end within
    ``budget`` seconds at the pace so far: fewer when the pace is slow, back up to ``full`` when
    it picks up (a machine busy while the run starts no longer cuts the run for good), never
    fewer than the steps done."""
    pace = elapsed / max(1, step)
    fit = int(budget / pace) if pace > 0 else full
    return max(step, min(full, fit))


def _train_groups(base: Path, groups: list, opts: TrainOptions, report: TrainReport, work: Path, stage,
                  n_marks: int) -> dict:
    import torch

    from ..embed import cpu_has_bf16
    from .data import schedule
    from .train import load_reader_model, make_optimizer, train_step, write_model

    stage("train", 0, 0, "Loading the reader in use")
    torch.set_num_threads(opts.threads or os.cpu_count() or 1)
    random.seed(opts.seed)
    np.random.seed(opts.seed)
    torch.manual_seed(opts.seed)
    bf16 = cpu_has_bf16()
    model = load_reader_model(base)
    model.train()
    opt = make_optimizer(model, opts.lr, opts.weight_decay)
    steps, _ = schedule(groups, opts.batch_size, opts.seed, opts.epochs)
    full = min(len(steps), opts.max_steps) if opts.max_steps else len(steps)
    plan = [full]
    report.planned_steps = full
    warm = max(1, int(opts.warmup * full))
    # The rate decays over the full plan: a plan cut to the budget ends before it reaches 0, and
    # one that grows back (fit_plan) never sees the rate rise again.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda st: min((st + 1) / warm, max(0.0, (full - st) / max(1, full - warm))))
    budget = opts.minutes * 60
    losses: list[float] = []
    step, t_start = 0, time.perf_counter()
    device = torch.device("cpu")
    for idx in steps:
        losses.append(train_step(model, opt, sched, [groups[i] for i in idx], device, bf16))
        step += 1
        elapsed = time.perf_counter() - t_start
        if step == 3 or (step > 3 and step % 10 == 0):  # fit the plan to the time budget
            plan[0] = fit_plan(full, step, elapsed, budget)
        stage("train", step, plan[0], f"loss {np.mean(losses[-10:]):.3f}")
        if step >= plan[0] or elapsed > budget:
            break
    report.steps = step
    report.train_seconds = round(time.perf_counter() - t_start, 1)
    report.loss_first = round(float(np.mean(losses[:5])), 4) if losses else None
    report.loss_last = round(float(np.mean(losses[-5:])), 4) if losses else None
    meta = {"base_reader": str(base), "steps": step, "planned_steps": report.planned_steps,
            "train_groups": len(groups), "mark_groups": n_marks, "replay_groups": len(groups) - n_marks,
            "train_windows": report.windows, "train_seconds": report.train_seconds, "bf16": bf16,
            "options": {k: v for k, v in asdict(opts).items()}}
    write_model(model.cpu(), tokenizer_dir=base, out=work / "torch", meta=meta)
    return meta


def _export(src: Path, out: Path) -> None:
    """ONNX with fp16 storage (rag.training.export), its printing kept off the user's screen."""
    from .export import export

    with contextlib.redirect_stdout(io.StringIO()):
        export(src, out, "fp16")


def _said(answer: str | None, quotes: str = '""') -> str:
    return "no answer" if answer is None else f"{quotes[0]}{answer}{quotes[1]}"


def changed_line(c: dict, arrow: str = "->") -> str:
    """One held-out mark a run fixed or broke, as the CLI and the chat show it:
    'fixed: “How many jobs?” (no answer -> “3,000”)'."""
    return (f"{c.get('change')}: “{c.get('question')}” "
            f"({_said(c.get('before'), '“”')} {arrow} {_said(c.get('after'), '“”')})")


def model_card(card: dict) -> str:
    h, e = card.get("heldout") or {}, card.get("eval") or {}
    lines = [
        f"# Reader {card['name']}",
        "",
        f"Trained by `{card.get('command', 'rag train')}` from the reader **{card.get('base')}** on the chat's marks "
        f"({card.get('train_marks')} marks trained on, {card.get('heldout_marks')} held out, "
        f"{len(card.get('skipped') or [])} left out), mixed with {card.get('replay_questions')} replay questions of "
        "the bundled training sets.",
        "",
        f"- training: {card.get('steps')} steps ({card.get('planned_steps')} planned), {card.get('groups')} question "
        f"groups, {card.get('windows')} windows, {card.get('train_seconds')} s; loss {card.get('loss_first')} -> "
        f"{card.get('loss_last')}",
        f"- held-out marks right: {h.get('right_before')} -> {h.get('right_after')} of {h.get('n')}",
        *[f"  - {c['change']}: {c['question']} ({_said(c['before'])} -> {_said(c['after'])})"
          for c in h.get("changed") or []],
        f"- eval set `{card.get('eval_set')}` right: {e.get('before', 0):.1%} -> {e.get('after', 0):.1%} of "
        f"{e.get('n')} (tolerance {card.get('tolerance', 0):.1%})",
        f"- {card.get('calibration')}",
        f"- whole run: {card.get('total_seconds')} s",
        "",
        "Roll back with `rag reader rollback` (or the Roll back button under Maintenance in the chat).",
        "",
    ]
    for n in card.get("notes") or []:
        lines.append(f"- note: {n}")
    return "\n".join(lines) + "\n"


def start_background(store, cwd: Path | None = None):
    """Start ``rag train`` in its own process (the chat's button): settings from the same ``RAG_*``
    environment, output in ``<readers_dir>/train.log``, progress in ``train-status.json``. The
    process holds the training lock itself, so a second start fails there with its one line."""
    import subprocess
    import sys

    root = store._need_root()
    root.mkdir(parents=True, exist_ok=True)
    log = open(root / "train.log", "w")
    try:
        return subprocess.Popen([sys.executable, "-m", "rag.cli", "train"], cwd=str(cwd or Path.cwd()),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    finally:
        log.close()


def last_log_line(store) -> str:
    """The last line the background run printed (its one-line error when it failed to start)."""
    try:
        lines = [x.strip() for x in (store.root / "train.log").read_text(errors="replace").splitlines() if x.strip()]
    except (OSError, TypeError):
        return ""
    return lines[-1].removeprefix("error: ") if lines else ""


__all__ = ["TrainOptions", "TrainReport", "Figures", "decide", "train_reader", "model_card", "replay_groups"]
