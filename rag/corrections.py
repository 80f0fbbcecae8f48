"""The chat's marks as answers: a question asked again gets the answer a person marked for it.

``rag train`` teaches the reader from the marks, but a few dozen marks move a 22 M-parameter
model only a little: after a 30-mark run the reader answered 10 of the 23 questions it was
trained on right (the feedback demo, 2026-12-05). A person who corrected an answer expects that
question to be answered right the next time, so the pipeline looks the question up among the
marks first (``answer_from_corrections``, on by default):

* "wrong" with the right words selected or typed, or "correct" (the words as cited): the marked
  words, cited and highlighted in their article, when that article is among the passages
  retrieved for the question now or folded into one as a near-duplicate (the same date range and
  retrieval; the best-ranked one when the words are in several), with a note that says so;
* "no answer in the articles": an abstention, while the passages read now come from the
  articles read when it was marked, as they were then (a new or edited article may answer it:
  then the reader reads).

A mark made on a follow-up (read with an earlier question's words) answers nothing: asked
alone, the same words mean something else. A line of the file that cannot be used is left out
with its reason (``statuses``, shown on the review page); a file that cannot be read answers
nothing.

A question matches a mark when the two are the same after lower-casing and collapsing spaces
(the feedback file's own key: a new mark on the question replaces the old one, and deleting the
mark on the review page stops it). Marks whose article changed or was removed are checked as
``rag train`` checks them (``rag.training.marks.resolve_marks``): words that moved are found
again, words that are gone are not answered. Evaluation and ``rag train``'s scoring read with
the reader alone (``Pipeline.with_reader``, ``rag eval``): a held-out mark must not answer
itself.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .feedback import FeedbackStore, feedback_of, question_key

if TYPE_CHECKING:
    from .training.marks import MarkExample

log = logging.getLogger(__name__)


class Corrections:
    """The marks of one feedback file over one loaded index, by question; reloaded when either changes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._by_question: dict[str, MarkExample] = {}

    def _file_stamp(self) -> tuple | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def lookup(self, question: str, data) -> "MarkExample | None":
        """The usable mark for ``question`` over the index ``data``, or None. A file that cannot be
        read answers nothing (the reader reads), and is read again only once it changes."""
        stamp = (self._file_stamp(), data.version)
        if stamp[0] is None:
            return None
        with self._lock:
            if stamp != self._stamp:
                try:
                    marks = statuses(FeedbackStore(self.path).lines(), data)
                except Exception as exc:  # never fail a question over the marks
                    log.warning("corrections: %s could not be read (%s); the reader answers", self.path, exc)
                    marks = []
                self._by_question = {question_key(ex.question): ex for ex, why in marks if ex is not None and why is None}
                self._stamp = stamp
            return self._by_question.get(question_key(question))


def statuses(records: list[dict], data) -> list[tuple["MarkExample | None", str | None]]:
    """Each record of the feedback file with its resolved mark and why the chat does not answer
    from it (None: it does, when its article is retrieved), in the file's order; the review page
    shows the reasons."""
    from .training.marks import resolve_marks  # imports the evaluation package, which imports the pipeline

    examples, skipped = resolve_marks(records, data, 0.0)
    by_id = {ex.id: ex for ex in examples}
    why = {m.id: m.reason for m in skipped}
    out = []
    for rec in records:
        mid = str(rec.get("id") or "")
        ex = by_id.get(mid)
        out.append((ex, unusable(ex) if ex is not None else why.get(mid, "not a usable mark")))
    return out


def unusable(ex: "MarkExample") -> str | None:
    """Why the chat does not answer from the resolved mark ``ex`` (None: it does)."""
    fb = feedback_of(ex.record)
    query = fb.get("query")
    if isinstance(query, str) and query and question_key(query) != question_key(ex.question):
        return "it was made on a follow-up, read with an earlier question's words"
    if not ex.answerable and not marked_articles(ex):
        return "the passages it was marked on are no longer indexed"
    return None


def marked_articles(ex: "MarkExample") -> set[str]:
    """The articles a "no answer" mark was made on, by content id when the mark stored it (an
    article edited since is another article: it may answer now), else as indexed now."""
    fb = feedback_of(ex.record)
    stored = [p.get("article_id") for p in fb.get("passages") or [] if isinstance(p, dict)]
    if stored and all(isinstance(a, str) and a for a in stored):
        return set(stored)
    return {a for a, _, _ in ex.passages or []}


def marked_on(ex: "MarkExample") -> str:
    fb = feedback_of(ex.record)
    return str(fb.get("date") or "")[:10] or "an earlier day"
