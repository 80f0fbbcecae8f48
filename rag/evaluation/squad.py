"""SQuAD JSON (v1.1 and v2.0 layout): reading it and splitting it by article.

``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers":
[{"text", "answer_start"}], "is_impossible"}]}]}]}``. v1.1 has no ``is_impossible`` (every
question is answerable); v2.0 marks unanswerable questions with it and gives no answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RagError

SPLIT_FILE = Path(__file__).resolve().parent.parent / "squad_split.json"  # rag/squad_split.json


@dataclass(slots=True)
class SquadQuestion:
    id: str
    question: str
    answers: list[tuple[str, int]]  # (text, answer_start into the paragraph), duplicates removed
    impossible: bool


@dataclass(slots=True)
class SquadParagraph:
    context: str
    questions: list[SquadQuestion] = field(default_factory=list)


@dataclass(slots=True)
class SquadArticle:
    title: str
    paragraphs: list[SquadParagraph] = field(default_factory=list)

    @property
    def n_questions(self) -> int:
        return sum(len(p.questions) for p in self.paragraphs)


def is_squad_json(path: str | Path) -> bool:
    """SQuAD sets are single ``.json`` files; our own gold sets are JSON Lines (``.jsonl``)."""
    return Path(path).suffix.lower() == ".json"


def load_squad(path: str | Path) -> list[SquadArticle]:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RagError(f"{path}: not readable as SQuAD JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise RagError(f"{path}: not SQuAD JSON (expected an object with a 'data' list of articles)")
    articles: list[SquadArticle] = []
    for ai, a in enumerate(raw["data"]):
        try:
            art = SquadArticle(title=str(a.get("title") or f"article-{ai}"))
            for p in a["paragraphs"]:
                para = SquadParagraph(context=p["context"])
                for q in p["qas"]:
                    seen: dict[str, int] = {}
                    for ans in q.get("answers") or []:
                        seen.setdefault(ans["text"], int(ans.get("answer_start", -1)))
                    impossible = bool(q.get("is_impossible", False)) or not seen
                    para.questions.append(
                        SquadQuestion(id=str(q.get("id", "")), question=q["question"],
                                      answers=list(seen.items()), impossible=impossible)
                    )
                art.paragraphs.append(para)
        except (KeyError, TypeError) as exc:
            raise RagError(f"{path}: article {ai} is not in the SQuAD layout (missing {exc})") from None
        articles.append(art)
    return articles


def split_articles(articles: list[SquadArticle], split: str | None, split_file: Path = SPLIT_FILE) -> list[SquadArticle]:
    """The articles of one split of ``rag/squad_split.json``: 'dev', 'test', or 'train'
    (every article in neither). ``None`` or 'all' keeps every article."""
    if split in (None, "all"):
        return articles
    spec = json.loads(Path(split_file).read_text())
    held = set(spec["dev"]) | set(spec["test"])
    if split == "train":
        return [a for a in articles if a.title not in held]
    if split not in ("dev", "test"):
        raise RagError(f"Unknown split '{split}' for SQuAD JSON. Choose from 'train', 'dev', 'test', 'all'.")
    keep = set(spec[split])
    return [a for a in articles if a.title in keep]


_WH = ("what", "which", "who", "whom", "whose", "when", "where", "why", "how")


def question_word(question: str) -> str:
    """The first question word, for the per-type breakdown of a report ('other' if none)."""
    words = question.lower().replace("?", " ").split()
    for w in words:
        if w in _WH:
            return "who" if w in ("whom", "whose") else w
    return "other"


def write_articles(articles: list[SquadArticle], folder: Path) -> dict[str, str]:
    """One text file per article (title line, then its paragraphs), for indexing like news
    articles. Returns title -> file name. Files already written with the same text are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for i, a in enumerate(articles):
        name = f"{i:03d}_{''.join(ch if ch.isalnum() or ch in '-_' else '_' for ch in a.title)[:60]}.txt"
        text = a.title.replace("_", " ") + "\n\n" + "\n\n".join(p.context.strip() for p in a.paragraphs) + "\n"
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        names[a.title] = name
    for stale in set(p.name for p in folder.glob("*.txt")) - set(names.values()):
        (folder / stale).unlink()
    return names
