"""Training questions as the reader meets them: each question with every window it is read in.

The reader reads several passages at once (``rag.reader.Reader``) and picks the best span over
all of their windows, so its scores must compare across windows. Training therefore groups
each question with

* every window of its own passage (a SQuAD paragraph; a whole news article, cut into
  overlapping windows), and
* distractor windows: the passage of the same article closest to the question (SQuAD) and the
  passage of another article closest to it (both SQuAD and news), as retrieval would bring them;
  or, for a source given ``retrieved`` passages (news, with ``--retrieved-distractors``), the
  passages of other articles that the served retriever brings for the question from a whole
  corpus, in its order: what the reader is actually shown beside the answer;

and the loss normalises start and end scores over the whole group (shared normalisation, Clark
& Gardner 2018, "Simple and Effective Multi-Paragraph Reading Comprehension"). The gold start is
every position where the answer text starts in any window of the group (the same words twice in
an article are both right); "no answer" is the [CLS] token of every window, so the no-answer
score of a group is the log-sum-exp of its windows' [CLS] scores, which is how serving reads it.

Two data sets (SQuAD 2.0 layout, ``rag.evaluation.squad.load_squad``):

* ``squad-explorer``: Wikipedia; its ``train`` split of ``rag/squad_split.json``;
* ``bbc-news-qa``: news; a fixed dev part of 20% of the articles of each category (those whose
  title's SHA-1 sorts first), never trained on, used to choose settings and to calibrate.

This module needs no torch: tests check the groups without training.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..evaluation.squad import SquadArticle
from ..windows import Window, answer_tokens, make_windows

NEWS_DEV_SHARE = 0.2
MAX_PASSAGE_WINDOWS = 6  # windows of the question's own passage kept (those holding the answer first)


@dataclass(slots=True)
class Group:
    """One question's windows and, per window, the token positions where the answer starts / ends.
    A window with no position is a distractor; a group with no position at all is unanswerable
    (every window's [CLS] is the gold)."""

    question: str
    windows: list[Window]
    starts: list[list[int]] = field(default_factory=list)
    ends: list[list[int]] = field(default_factory=list)
    source: str = ""  # "squad", "news" or "cloze"

    @property
    def answerable(self) -> bool:
        return any(self.starts)

    def __len__(self) -> int:
        return len(self.windows)


def training_sets(settings) -> tuple[Path, Path]:
    """The bundled training sets under the ``datasets_dir`` setting: SQuAD-explorer, bbc-news-qa."""
    root = Path(settings.datasets_dir)
    return root / "squad-explorer" / "train.json", root / "bbc-news-qa" / "train.json"


def news_dev_titles(articles: list[SquadArticle], share: float = NEWS_DEV_SHARE) -> set[str]:
    """The fixed by-article dev part of a news set: in each category (the title before its
    last ``_``), the ``share`` of articles whose title's SHA-1 sorts first."""
    by_cat: dict[str, list[str]] = {}
    for a in articles:
        by_cat.setdefault(a.title.rsplit("_", 1)[0], []).append(a.title)
    dev: set[str] = set()
    for titles in by_cat.values():
        titles.sort(key=lambda t: hashlib.sha1(t.encode()).hexdigest())
        dev.update(titles[: max(1, round(share * len(titles)))])
    return dev


def split_news(articles: list[SquadArticle], split: str) -> list[SquadArticle]:
    """'train' or 'dev' articles of a news set (see :func:`news_dev_titles`)."""
    dev = news_dev_titles(articles)
    if split == "dev":
        return [a for a in articles if a.title in dev]
    if split == "train":
        return [a for a in articles if a.title not in dev]
    raise ValueError(f"Unknown news split '{split}'. Choose from 'train', 'dev'.")


def _labels(w: Window, spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    starts, ends = [], []
    for a, b in spans:
        s, e = answer_tokens(w, a, b)
        if s > 0:
            starts.append(s)
            ends.append(e)
    return starts, ends


def _occurrences(text: str, answer: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(re.escape(answer), text)] if answer else []


def build_groups(
    sources: list[tuple[str, list[SquadArticle], int | None]],
    tokenizer,
    embedder,
    *,
    seed: int = 13,
    same_article: int = 1,
    other_article: int = 1,
    retrieved: dict[str, dict[str, list[tuple[frozenset[str], str]]]] | None = None,
    retrieved_other: int = 2,
    log=None,
) -> list[Group]:
    """Question groups of every (name, articles, at most this many questions) source, in a fixed
    order (a seeded sample when a source is cut).

    ``embedder`` (the serving sentence embedder) chooses the distractors: for each question the
    ``same_article`` other paragraphs of its article and the ``other_article`` paragraphs of
    other articles of the same source whose vectors are closest to the question's. A distractor
    that holds the answer text is left out (its label could not be trusted).

    ``retrieved[source][question id]``, when given for a source, replaces the other-article
    choice for that source's questions: the retrieved passages in served order, each with the
    file names it stands for (the hit's file and its folded near-duplicates); the first
    ``retrieved_other`` of them that are not of the question's own article (``title + ".txt"``)
    and do not hold the answer text are its distractors.
    """
    groups: list[Group] = []
    for name, articles, max_questions in sources:
        paras = [(ai, p) for ai, a in enumerate(articles) for p in a.paragraphs]
        if not paras:
            continue
        qs = [(pi, q) for pi, (_, p) in enumerate(paras) for q in p.questions]
        if max_questions:
            random.Random(seed).shuffle(qs)
            qs = qs[:max_questions]
        if log:
            log.info("%s: %d articles, %d paragraphs, %d questions", name, len(articles), len(paras), len(qs))
        pvecs = embedder.encode([p.context for _, p in paras])
        qvecs = embedder.encode([q.question for _, q in qs])
        art_of = np.array([ai for ai, _ in paras])
        sims = qvecs @ pvecs.T  # (questions, paragraphs)
        for (pi, q), row in zip(qs, sims):
            ctx = paras[pi][1].context
            gold: list[tuple[int, int]] = []
            if not q.impossible:
                for text, _ in q.answers:
                    gold += _occurrences(ctx, text)
                if not gold:
                    continue  # answer not found verbatim: no label to trust
            own = make_windows(tokenizer, q.question, [ctx])
            labelled = [(w, *_labels(w, gold)) for w in own]
            if gold and not any(s for _, s, _ in labelled):
                continue  # the answer never fits one window (too long): skip
            # the windows holding the answer first, then the rest in order, at most MAX_PASSAGE_WINDOWS
            labelled.sort(key=lambda x: not x[1])
            labelled = labelled[:MAX_PASSAGE_WINDOWS]
            order = np.argsort(-row)
            picked: list[int] = []
            served = (retrieved or {}).get(name)
            extra: list[str] = []
            if served is not None:
                own_file = f"{articles[paras[pi][0]].title}.txt"
                for files, text in served.get(q.id, []):
                    if len(extra) >= retrieved_other:
                        break
                    if own_file in files or any(t.lower() in text.lower() for t, _ in q.answers):
                        continue
                    extra.append(text)
            for want, same in ((same_article, True), (other_article, False)):
                if served is not None and not same:
                    continue
                n = 0
                for o in order:
                    if n >= want:
                        break
                    if o == pi or (art_of[o] == art_of[pi]) != same:
                        continue
                    text = paras[o][1].context
                    if any(t.lower() in text.lower() for t, _ in q.answers):
                        continue
                    picked.append(int(o))
                    n += 1
            g = Group(q.question, [], source=name)
            for w, s, e in labelled:
                g.windows.append(w)
                g.starts.append(s)
                g.ends.append(e)
            for text in [paras[o][1].context for o in picked] + extra:
                w = make_windows(tokenizer, q.question, [text])[0]
                g.windows.append(w)
                g.starts.append([])
                g.ends.append([])
            groups.append(g)
    return groups


def batches_for_epoch(groups: list[Group], batch_windows: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches of whole groups, at most ``batch_windows`` windows each (a larger group
    is a batch alone), groups of similar length together (less padding); the same for a given
    seed and epoch on every device."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(groups)))
    rng.shuffle(order)
    pool = 400
    batches: list[list[int]] = []
    for i in range(0, len(order), pool):
        chunk = sorted(order[i : i + pool], key=lambda j: max(len(w) for w in groups[j].windows))
        cur: list[int] = []
        n = 0
        for j in chunk:
            k = len(groups[j])
            if cur and n + k > batch_windows:
                batches.append(cur)
                cur, n = [], 0
            cur.append(j)
            n += k
        if cur:
            batches.append(cur)
    rng.shuffle(batches)
    return batches


def schedule(groups: list[Group], batch_windows: int, seed: int, epochs: int) -> tuple[list[list[int]], list[int]]:
    """Every step's batch for ``epochs`` epochs, one epoch's batches after another, and the step
    at which each epoch ends. An epoch's batch count depends on its shuffle (groups are packed
    whole), so step ``i`` of a run, resumed or not, is found here, never by dividing by the
    first epoch's count."""
    steps: list[list[int]] = []
    ends: list[int] = []
    for epoch in range(epochs):
        steps += batches_for_epoch(groups, batch_windows, seed, epoch)
        ends.append(len(steps))
    return steps, ends
