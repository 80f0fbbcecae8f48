"""Cloze questions made from news articles: more news to read than the news set's questions.

The news set has 1,020 training questions on 170 articles; the BBC corpus has 2,225 articles.
A cloze question is a sentence of an article with a name or a number that recurs elsewhere in
the article replaced by "what"; the passage is the article without that sentence, and the
answer is every other place the same words appear (recurring span selection: Ram et al. 2021,
"Few-Shot Question Answering by Pretraining Span Selection"; cloze questions for QA: Lewis et
al. 2019, "Unsupervised Question Answering by Cloze Translation"). Only a sentence that shares
at least ``MIN_SHARED`` content words with a sentence holding another occurrence is used, so
the answer can be found by reading, not guessed.

The questions come in the SQuAD layout (``SquadArticle``, one per question: its passage is the
article less one sentence) so ``rag.training.data.build_groups`` reads them like any other
source. Articles in ``kept_out`` (every eval set's sources, the news set's dev part) and their
copies under other file names are never used.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from ..chunk import split_sentences
from ..evaluation.squad import SquadArticle, SquadParagraph, SquadQuestion

MIN_SHARED = 2  # content words a question sentence shares with a sentence that holds the answer
MIN_WORDS, MAX_WORDS = 8, 50  # question sentence length in words
PER_ARTICLE = 2  # at most this many questions from one article
NEAR_DUPLICATE = 0.5  # 5-word shingle Jaccard at which an article counts as a copy of another

_NAME = r"[A-Z][\w'&.-]*[\w]"
# a run of capitalised words (a name, "Bank of England"), or a number with its currency and unit
_SPAN = re.compile(
    rf"(?<!\w)(?:{_NAME}(?:\s+(?:of\s+|the\s+|and\s+|de\s+)?{_NAME})*"
    r"|[$£€]?\d[\d,.]*\d(?:\s?(?:%|bn|m|million|billion|trillion|per cent))?"
    r"|[$£€]\d(?:\s?(?:bn|m|million|billion|trillion))?)(?!\w)"
)
_WORD = re.compile(r"[\w'%$£€-]+")
_STOP = frozenset(
    "a an the of in on at to for by with and or but from as is are was were be been has have had it its this that "
    "these those he she his her they their them we our you i said says say will would could should may might can "
    "not no than then there which who what when where why how more most also after before over into about up out "
    "new year years one two first last".split()
)


def _content(text: str, skip: str) -> set[str]:
    skip_words = {w.lower() for w in _WORD.findall(skip)}
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP and w.lower() not in skip_words
            and len(w) > 2}


def cloze_questions(title: str, text: str, rng: random.Random, per_article: int = PER_ARTICLE) -> list[SquadArticle]:
    """Up to ``per_article`` cloze questions of one article, each as its own ``SquadArticle``
    (title ``"<title>#<n>"``): the passage is ``text`` without the question's sentence."""
    sentences = split_sentences(text)
    found: list[tuple[int, int, int]] = []  # (sentence, span start, span end) in text offsets
    for si, (s0, s1) in enumerate(sentences):
        sent = text[s0:s1]
        if not MIN_WORDS <= len(sent.split()) <= MAX_WORDS:
            continue
        for m in _SPAN.finditer(sent):
            span = re.sub(r"'s?$", "", m.group())  # "India's" -> "India"
            if not re.search(r"\w", sent[: m.start()]) or re.search(r"[:\"“]\s*$", sent[: m.start()]):
                continue  # a capitalised first word (of the sentence or of a quote) is no name
            if len(span) < 2 or span.split()[0].lower() in _STOP:
                continue
            m_end = m.start() + len(span)
            pattern = re.compile(rf"(?<![\w]){re.escape(span)}(?![\w])")
            others = [o for o in pattern.finditer(text) if not s0 <= o.start() < s1]
            if not others or len(others) != text.count(span) - text[s0:s1].count(span):
                continue  # also inside longer words ("Japan" in "Japanese"): training labels every occurrence
            mine = _content(sent, span)
            holders = {j for o in others for j, (a, b) in enumerate(sentences) if a <= o.start() < b}
            if any(len(mine & _content(text[a:b], span)) >= MIN_SHARED for j, (a, b) in enumerate(sentences)
                   if j in holders):
                found.append((si, s0 + m.start(), s0 + m_end))
    rng.shuffle(found)
    out: list[SquadArticle] = []
    used: set[int] = set()
    for si, a, b in found:
        if len(out) >= per_article:
            break
        if si in used:
            continue
        used.add(si)
        s0, s1 = sentences[si]
        span = text[a:b]
        question = (text[s0:a] + "what" + text[b:s1]).rstrip(" .!") + "?"
        context = (text[:s0] + text[s1:]).strip()
        start = re.search(rf"(?<![\w]){re.escape(span)}(?![\w])", context)  # found: it recurs outside the sentence
        q = SquadQuestion(id=f"cloze:{title}:{si}", question=question, answers=[(span, start.start())],
                          impossible=False)
        out.append(SquadArticle(f"{title}#{len(out)}", [SquadParagraph(context, [q])]))
    return out


def _shingles(text: str) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + 5]) for i in range(max(1, len(words) - 4))}


def _copies(texts: dict[str, str], kept: dict[str, str]) -> set[str]:
    """Names in ``texts`` that are another copy of a ``kept`` article: the same title line, or
    5-word shingles overlapping by ``NEAR_DUPLICATE`` or more (a corpus holds reprints under
    other file names; the served pipeline folds them, and so must what training leaves out)."""
    titles = {t.split("\n", 1)[0].strip().lower() for t in kept.values()}
    kept_sh = [_shingles(t) for t in kept.values()]
    out = set()
    for name, text in texts.items():
        if text.split("\n", 1)[0].strip().lower() in titles:
            out.add(name)
            continue
        sh = _shingles(text)
        if any(len(sh & k) >= NEAR_DUPLICATE * len(sh | k) for k in kept_sh):
            out.add(name)
    return out


def cloze_articles(corpus: Path, kept_out: set[str], n_questions: int, seed: int) -> list[SquadArticle]:
    """At most ``n_questions`` cloze questions from a folder of ``.txt`` news articles (title on
    the first line), a seeded choice over its articles; none from a ``kept_out`` file name nor
    from another copy of such an article (:func:`_copies`)."""
    every = {p.name: p.read_text(encoding="utf-8", errors="replace").strip() for p in sorted(Path(corpus).glob("*.txt"))}
    texts = {name: text for name, text in every.items() if name not in kept_out}
    copies = _copies(texts, {name: text for name, text in every.items() if name in kept_out})
    files = [name for name in texts if name not in copies]
    if not files:
        raise SystemExit(f"--cloze-questions: no articles to make questions from in {corpus}")
    rng = random.Random(seed)
    rng.shuffle(files)
    out: list[SquadArticle] = []
    for name in files:
        if len(out) >= n_questions:
            break
        out += cloze_questions(Path(name).stem, texts[name], rng)[: n_questions - len(out)]
    return out
