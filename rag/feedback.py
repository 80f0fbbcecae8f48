"""Feedback on answers, kept as a gold Q&A file that ``rag eval --qa`` reads like any other.

Each mark ("correct", "wrong" with the right answer, or "no answer in the articles") becomes
one JSON line in the format of ``eval/seeds_qa.jsonl`` (``id question answers sources type``)
plus a ``feedback`` record: the verdict, the system's own answer, the index version, the reader
and settings that gave it, and the date. A question asked again replaces its earlier line (same
question after normalising case and spaces). Writes hold a file lock and replace the file
atomically, so several app sessions can mark answers at once: nothing is lost, no line is torn.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from .errors import RagError

Verdict = Literal["correct", "wrong", "no_answer"]


@dataclass(frozen=True)
class GoldSpan:
    """The right answer as characters of a stored article: ``text[start:end]``."""

    article_id: str
    start: int
    end: int


def question_key(question: str) -> str:
    """One question however it is cased or spaced: a mark's key in the file and in ``rag.corrections``."""
    return " ".join(question.lower().split())


def feedback_of(record: dict) -> dict:
    """A line's ``feedback`` record ({} when the line has none or a damaged one)."""
    fb = record.get("feedback")
    return fb if isinstance(fb, dict) else {}


def feedback_id(question: str) -> str:
    return "f" + hashlib.sha1(question_key(question).encode("utf-8")).hexdigest()[:10]


class FeedbackStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _lock(self):
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock", timeout=30)

    def lines(self) -> list[dict]:
        """The records in the file, in order (a line that is not a JSON object is skipped)."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def record(
        self,
        answer,
        articles: dict,
        verdict: Verdict,
        *,
        typed: str | None = None,
        span: GoldSpan | None = None,
        meta: dict | None = None,
    ) -> dict:
        """Append (or replace) the line for ``answer.question``; return the record written.

        * ``correct``: the gold answer is the system's answer, its sources the cited articles;
        * ``wrong``: the right answer, given as ``span`` (characters of a stored article) or
          ``typed`` (which must occur verbatim in an article the answer cited or retrieved);
        * ``no_answer``: the articles do not answer it (an unanswerable gold question).
        """
        if verdict == "correct":
            if answer.abstained or not answer.answer:
                raise RagError("Only a given answer can be marked correct; mark an abstention 'wrong' and give the answer.")
            golds, sources = [answer.answer], list(dict.fromkeys(c.file for c in answer.citations))
            c = answer.citations[0] if answer.citations else None  # the words as cited, at their offsets
            gold_span = ({"article": c.file, "start": c.start, "end": c.end, "text": c.quote}
                         if c is not None and c.quote == answer.answer else None)
        elif verdict == "wrong":
            golds, sources, gold_span = self._gold(answer, articles, typed, span)
        elif verdict == "no_answer":
            golds, sources, gold_span = [], [], None
        else:
            raise RagError(f"Unknown verdict '{verdict}'. Choose from 'correct', 'wrong', 'no_answer'.")
        rec = {
            "id": feedback_id(answer.question),
            "question": answer.question,
            "answers": golds,
            "sources": sources,
            "type": "unanswerable" if not golds else "feedback",
            "feedback": {
                "verdict": verdict,
                "system_answer": None if answer.abstained else answer.answer,
                "system_candidate": answer.candidate,
                "confidence": round(float(answer.confidence), 4),
                "gold_span": None if gold_span is None else gold_span,
                "index_version": answer.index_version,
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                **(meta or {}),
            },
        }
        with self._lock():
            kept = [r for r in self.lines() if question_key(str(r.get("question", ""))) != question_key(answer.question)]
            self._write([*kept, rec])
        return rec

    def delete(self, record_id: str) -> bool:
        with self._lock():
            lines = self.lines()
            kept = [r for r in lines if r.get("id") != record_id]
            if len(kept) == len(lines):
                return False
            self._write(kept)
            return True

    def _write(self, records: list[dict]) -> None:
        """Replace the file in one step (the caller holds the lock): readers see old or new, never half."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        os.replace(tmp, self.path)

    @staticmethod
    def _gold(answer, articles: dict, typed: str | None, span: GoldSpan | None):
        if span is not None:
            art = articles.get(span.article_id)
            if art is None or not (0 <= span.start < span.end <= len(art.text)):
                raise RagError("The selected words are not in the indexed article (was it changed since?).")
            text = art.text[span.start : span.end]
            return [text], [art.file], {"article": art.file, "start": span.start, "end": span.end, "text": text}
        typed = (typed or "").strip()
        if not typed:
            raise RagError("Give the right answer: select it in the article, or type it as the article says it.")
        ids = list(dict.fromkeys([c.article_id for c in answer.citations] + [h.chunk.article_id for h in answer.passages]))
        for aid in ids:
            art = articles.get(aid)
            if art is None:
                continue
            idx = art.text.find(typed)
            if idx >= 0:
                return [typed], [art.file], {"article": art.file, "start": idx, "end": idx + len(typed), "text": typed}
        raise RagError(
            f"“{typed}” is not written like that in the articles of this answer: type it exactly as the article "
            "says it (or select it in the article)."
        )

