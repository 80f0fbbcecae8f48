"""Q&A sets: our JSON Lines files, and SQuAD JSON files (``rag.evaluation.squad``) turned into
questions plus a folder of their articles to index."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]
    sources: tuple[str, ...]
    type: str
    split: str | None
    line: int

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def _str_list(rec: dict, key: str) -> tuple[str, ...]:
    v = rec.get(key)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"'{key}' must be a list of strings")
    return tuple(v)


def parse_qa_lines(lines: Iterable[str], name: str = "<qa>") -> tuple[list[QAItem], list[str]]:
    """Parse JSON Lines Q&A records; return (items, warnings).

    Each line: ``{"id", "question", "answers": [...], "sources": [...]}`` plus optional ``type``
    and ``split`` (other fields are ignored). Empty ``answers`` = unanswerable. A malformed line
    (bad JSON, not an object, missing/ill-typed field, duplicate id, an answerable question
    without sources) is skipped with a warning naming its line number; the rest still load.
    Blank lines are ignored.
    """
    items: list[QAItem] = []
    warnings: list[str] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            warnings.append(f"{name} line {lineno}: invalid JSON ({exc.msg}); skipped")
            continue
        try:
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            qid, question = rec.get("id"), rec.get("question")
            if not isinstance(qid, str) or not qid.strip():
                raise ValueError("'id' must be a non-empty string")
            if not isinstance(question, str) or not question.strip():
                raise ValueError("'question' must be a non-empty string")
            answers = tuple(a for a in _str_list(rec, "answers") if a.strip())
            sources = _str_list(rec, "sources")
            if answers and not sources:
                raise ValueError("answerable question with no 'sources'")
            qtype = rec.get("type")
            split = rec.get("split")
            if qtype is not None and not isinstance(qtype, str):
                raise ValueError("'type' must be a string")
            if split is not None and not isinstance(split, str):
                raise ValueError("'split' must be a string")
            if qid in seen:
                raise ValueError(f"duplicate id {qid!r} (first on line {seen[qid]})")
        except ValueError as exc:
            warnings.append(f"{name} line {lineno}: {exc}; skipped")
            continue
        seen[qid] = lineno
        if not answers and sources:
            warnings.append(f"{name} line {lineno} ({qid}): unanswerable but lists sources; sources ignored")
            sources = ()
        items.append(
            QAItem(
                id=qid,
                question=question,
                answers=answers,
                sources=tuple(dict.fromkeys(sources)),
                type=qtype or ("unanswerable" if not answers else "other"),
                split=split,
                line=lineno,
            )
        )
    return items, warnings


def load_qa(path: str | Path, split: str | None = None) -> tuple[list[QAItem], list[str]]:
    """Read a Q&A JSON Lines file (see :func:`parse_qa_lines`), keeping only ``split`` if given."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        items, warnings = parse_qa_lines(fh, path.name)
    if split is not None:
        items = [q for q in items if q.split == split]
    return items, warnings


def load_squad_set(path: Path, split: str | None, cache_dir: Path) -> tuple[list[QAItem], Path]:
    """The questions of a SQuAD JSON file (of one split of ``rag/squad_split.json`` when
    ``split`` is given) and a folder of their articles to index, under ``cache_dir/squad/``."""
    import hashlib

    from .squad import load_squad, question_word, split_articles, write_articles

    articles = split_articles(load_squad(path), split)
    key = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    folder = Path(cache_dir) / "squad" / f"{path.stem}-{split or 'all'}-{key}"
    names = write_articles(articles, folder / "articles")
    items = []
    for a in articles:
        for p in a.paragraphs:
            for q in p.questions:
                answers = () if q.impossible else tuple(t for t, _ in q.answers)
                items.append(QAItem(
                    id=q.id or f"q{len(items)}", question=q.question, answers=answers,
                    sources=(names[a.title],) if answers else (),
                    type="unanswerable" if not answers else question_word(q.question),
                    split=split, line=len(items) + 1,
                ))
    return items, folder


__all__ = ["QAItem", "load_qa", "load_squad_set", "parse_qa_lines"]
