"""The chat's marks (``rag.feedback`` gold lines) as reader training questions (``rag train``).

Each mark is checked against the live index first; a mark that cannot be trusted is left out of
this run (never deleted from the feedback file) with its reason:

* a span mark ("wrong" with the right words, or typed words found in an article): the words at
  the mark's offsets of the article it names. The article no longer indexed, or the words no
  longer in it: left out. The words elsewhere in the article (its text changed around them):
  used at the occurrence nearest the old offsets, and said so;
* a "correct" mark: the system's answer as written in the articles it cited;
* "no answer in the articles": no-answer on the passages the reader read when it was marked
  (stored with the mark; for older marks, the passages retrieval gives now).

The marks are split by question into a training part and a held-out part that training never
sees: a mark is held out when the SHA-1 of its id (one per question) falls below the share, so a
mark stays on its side from run to run, whatever other marks come and go.

This module needs no torch.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from ..feedback import feedback_of
from ..windows import make_windows
from .data import MAX_PASSAGE_WINDOWS, Group, _labels


@dataclass
class MarkExample:
    id: str
    question: str
    verdict: str
    record: dict
    heldout: bool
    answers: list[str] = field(default_factory=list)  # empty: no answer in the articles
    spans: list[tuple[str, int, int]] = field(default_factory=list)  # (article id, start, end) of the answer
    passages: list[tuple[str, int, int]] | None = None  # no-answer: (article id, start, end) read
    note: str | None = None  # e.g. re-anchored

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass
class SkippedMark:
    id: str
    question: str
    reason: str


def is_heldout(mark_id: str, share: float) -> bool:
    """Fixed per mark: the SHA-1 of its id as a number in [0, 1) below ``share``."""
    h = int(hashlib.sha1(f"heldout:{mark_id}".encode()).hexdigest()[:12], 16)
    return h / 16**12 < share


def _occurrences(text: str, words: str) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(words), text)] if words else []


def resolve_marks(records: list[dict], data, heldout_share: float) -> tuple[list[MarkExample], list[SkippedMark]]:
    """The usable marks of ``records`` over the loaded index ``data``, and those left out (why)."""
    examples: list[MarkExample] = []
    skipped: list[SkippedMark] = []
    seen: set[str] = set()
    for rec in records:
        mid, question = str(rec.get("id") or ""), str(rec.get("question") or "").strip()
        fb = feedback_of(rec)
        verdict = fb.get("verdict") or ("no_answer" if rec.get("type") == "unanswerable" else "correct")
        if not mid or not question:
            skipped.append(SkippedMark(mid, question, "no id or question"))
            continue
        if mid in seen:
            continue
        seen.add(mid)
        ex = MarkExample(mid, question, verdict, rec, is_heldout(mid, heldout_share))
        try:
            problem = _resolve(ex, rec, fb, data)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a hand-edited or damaged line
            problem = f"malformed mark ({type(exc).__name__}: {exc})"
        if problem:
            skipped.append(SkippedMark(mid, question, problem))
        else:
            examples.append(ex)
    return examples, skipped


def _article(data, file: str):
    aid = data.file_to_id.get(file)
    return (aid, data.articles[aid]) if aid in data.articles else (None, None)


def _resolve(ex: MarkExample, rec: dict, fb: dict, data) -> str | None:
    if ex.verdict == "no_answer":
        spans = []
        for p in fb.get("passages") or []:
            aid, art = _article(data, str(p.get("article", "")))
            if art is not None and 0 <= int(p.get("start", -1)) < int(p.get("end", -1)) <= len(art.text):
                spans.append((aid, int(p["start"]), int(p["end"])))
        ex.passages = spans or None  # None: the caller reads what retrieval gives now
        return None
    gold = fb.get("gold_span")
    if isinstance(gold, dict) and gold.get("text"):
        file, text = str(gold.get("article", "")), str(gold["text"])
        aid, art = _article(data, file)
        if art is None:
            return f"its article {file} is no longer indexed"
        start, end = int(gold.get("start", -1)), int(gold.get("end", -1))
        if art.text[max(0, start): max(0, end)] != text or start < 0:
            found = _occurrences(art.text, text)
            if not found:
                return f"its article {file} changed: the marked words “{_short(text)}” are no longer in it"
            start = min(found, key=lambda i: abs(i - start))
            end = start + len(text)
            ex.note = f"the marked words moved in {file} (offsets no longer matched): re-anchored at {start}"
        ex.answers = [text]
        ex.spans = [(aid, start, end)]
        return None
    answers = [a for a in rec.get("answers") or [] if isinstance(a, str) and a.strip()]
    if not answers:
        return "no answer words and no gold span"
    for file in rec.get("sources") or []:
        aid, art = _article(data, str(file))
        if art is None:
            continue
        for a in answers:
            ex.spans += [(aid, i, i + len(a)) for i in _occurrences(art.text, a)]
    if not ex.spans:
        return "its answer is no longer written in its articles (changed or removed)"
    ex.answers = answers
    return None


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def mark_group(ex: MarkExample, data, tokenizer, hits, max_distractors: int = 2) -> Group | None:
    """The training group of one mark: for an answer, the windows of its article (those holding the
    marked words first; every occurrence of the words is gold) plus distractor windows of the
    passages retrieval gives for the question from other articles; for no answer, every window of
    the passages read (all unlabelled). None when the answer does not fit a window."""
    g = Group(ex.question, [], source="marks")
    if not ex.answerable:
        spans = ex.passages or [(h.chunk.article_id, h.chunk.start, h.chunk.end) for h in hits]
        texts = [data.articles[aid].text[a:b] for aid, a, b in spans if aid in data.articles]
        for w in make_windows(tokenizer, ex.question, texts):
            g.windows.append(w)
            g.starts.append([])
            g.ends.append([])
        return g if g.windows else None
    aid = ex.spans[0][0]
    text = data.articles[aid].text
    gold = sorted({(a, b) for x, a, b in ex.spans if x == aid}
                  | {(i, i + len(w)) for w in ex.answers for i in _occurrences(text, w)})
    labelled = [(w, *_labels(w, gold)) for w in make_windows(tokenizer, ex.question, [text])]
    if not any(s for _, s, _ in labelled):
        return None
    labelled.sort(key=lambda x: not x[1])
    for w, s, e in labelled[:MAX_PASSAGE_WINDOWS]:
        g.windows.append(w)
        g.starts.append(s)
        g.ends.append(e)
    n = 0
    for h in hits:
        if n >= max_distractors:
            break
        if h.chunk.article_id == aid or any(a.lower() in h.chunk.text.lower() for a in ex.answers):
            continue
        g.windows.append(make_windows(tokenizer, ex.question, [h.chunk.text])[0])
        g.starts.append([])
        g.ends.append([])
        n += 1
    return g
