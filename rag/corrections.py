"""The chat's marks as answers: a question asked again gets the answer a person marked for it.

``rag train`` teaches the reader from the marks, but a few dozen marks move a 22 M-parameter
model only a little: after a 30-mark run the reader answered 10 of the 23 questions it was
trained on right (the feedback demo, 2026-12-05). A person who corrected an answer expects that
question to be answered right the next time, so the pipeline looks the question up among the
marks first (``answer_from_corrections``, on by default):

* "wrong" with the right words selected or typed, or "correct": the marked words, cited and
  highlighted in their article, when that article is among the passages retrieved for the
  question now (the same date range and retrieval), with a note that says so;
* "no answer in the articles": an abstention, while the passages read now come from the
  articles read when it was marked (a new article may answer it: then the reader reads).

A question matches a mark when the two are the same after lower-casing and collapsing spaces
(the feedback file's own key: a new mark on the question replaces the old one, and deleting the
mark on the review page stops it). Marks whose article changed or was removed are checked as
``rag train`` checks them (``rag.training.marks.resolve_marks``): words that moved are found
again, words that are gone are not answered. Evaluation and ``rag train``'s scoring read with
the reader alone (``Pipeline.with_reader``, ``rag eval``): a held-out mark must not answer
itself.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .feedback import FeedbackStore, question_key

if TYPE_CHECKING:
    from .training.marks import MarkExample


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
        """The usable mark for ``question`` over the index ``data``, or None."""
        stamp = (self._file_stamp(), data.version)
        if stamp[0] is None:
            return None
        with self._lock:
            if stamp != self._stamp:
                from .training.marks import resolve_marks  # imports the evaluation package, which imports the pipeline

                examples, _ = resolve_marks(FeedbackStore(self.path).lines(), data, 0.0)
                self._by_question = {question_key(ex.question): ex for ex in examples}
                self._stamp = stamp
            return self._by_question.get(question_key(question))


def marked_on(ex: "MarkExample") -> str:
    fb = ex.record.get("feedback") if isinstance(ex.record.get("feedback"), dict) else {}
    return str(fb.get("date") or "")[:10] or "an earlier day"
