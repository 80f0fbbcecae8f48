"""The reader's training code: question groups, the shared-normalisation loss, the news dev
split, reading a shipped ONNX reader back into torch, and a smoke run (CI never trains).

The smoke run checks that the training data leaves out the held-out SQuAD articles and the
news dev part, that a run writes weights the export can read, and that a second run with the
same settings resumes from the checkpoint instead of starting over.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "version": "v2.0",
    "data": [
        {
            "title": "Train_article",
            "paragraphs": [
                {
                    "context": "The Normans gave their name to Normandy, a region in France. Rollo was their first ruler.",
                    "qas": [
                        {"id": "a", "question": "Where is Normandy?", "answers": [{"text": "France", "answer_start": 53}],
                         "is_impossible": False},
                        {"id": "b", "question": "Who was the last ruler?", "answers": [], "is_impossible": True},
                    ],
                }
            ],
        },
        {
            "title": "Kenya",  # a dev article of rag/squad_split.json: never trained on
            "paragraphs": [{"context": "Nairobi is the capital of Kenya.", "qas": [
                {"id": "c", "question": "What is the capital of Kenya?", "answers": [{"text": "Nairobi", "answer_start": 0}],
                 "is_impossible": False}]}],
        },
    ],
}


NEWS_TEXT = ("Rosneft buys Yugansk\n\nState-owned Rosneft bought the Yugansk unit for $9.3bn in December. "
             "Yukos says it will ask Rosneft to repay a $900m loan.")
NEWS = {"version": "v2.0", "data": [
    {"title": f"business_00{i}", "paragraphs": [{"context": NEWS_TEXT, "qas": [
        {"id": f"n{i}a", "question": "How much did Rosneft pay for Yugansk?",
         "answers": [{"text": "$9.3bn", "answer_start": NEWS_TEXT.index("$9.3bn")}], "is_impossible": False},
        {"id": f"n{i}b", "question": "How old is the head of Rosneft?", "answers": [], "is_impossible": True},
    ]}]} for i in (1, 2)]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("squad") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


@pytest.fixture(scope="module")
def news(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("news") / "news.json"
    path.write_text(json.dumps(NEWS))
    return path


@pytest.fixture(scope="module")
def tok():
    from rag.embed import resolve_model_path
    from rag.windows import load_tokenizer

    return load_tokenizer(resolve_model_path("all-MiniLM-L6-v2"))


def test_news_dev_part_is_fixed_by_article_and_per_category():
    from rag.evaluation.squad import SquadArticle
    from rag.training.data import news_dev_titles, split_news

    arts = [SquadArticle(title=f"{cat}_{i:03d}") for cat in ("business", "sport") for i in range(1, 11)]
    dev = news_dev_titles(arts)
    assert len(dev) == 4 and sum(t.startswith("sport") for t in dev) == 2  # 20% of each category
    assert dev == news_dev_titles(list(reversed(arts)))  # the order of the file does not matter
    train = split_news(arts, "train")
    assert {a.title for a in train} | dev == {a.title for a in arts} and not {a.title for a in train} & dev
    with pytest.raises(ValueError, match="Choose from"):
        split_news(arts, "test")


def test_groups_hold_the_answer_window_and_unlabelled_distractors(tok, tiny, news):
    from rag.embed import load_embedder
    from rag.evaluation.squad import load_squad, split_articles
    from rag.training.data import build_groups

    embedder = load_embedder("all-MiniLM-L6-v2", backend="onnx")
    sources = [("squad", split_articles(load_squad(tiny), "train"), None), ("news", load_squad(news), None)]
    groups = build_groups(sources, tok, embedder, other_article=1)
    assert [g.source for g in groups] == ["squad"] * 2 + ["news"] * 4
    for g in groups:
        assert len(g.windows) == len(g.starts) == len(g.ends)
        if g.answerable:
            gold = [(w, s, e) for w, ss, ee in zip(g.windows, g.starts, g.ends) for s, e in zip(ss, ee)]
            # every gold position quotes the answer
            assert gold and all(tok.decode([int(i) for i in w.ids[s : e + 1]]) in ("france", "$ 9. 3bn")
                                for w, s, e in gold)
        else:
            assert not any(g.starts) and not any(g.ends)
    # a news question is read with a distractor from the other article (unlabelled: that one
    # also says $9.3bn, so it is left out; here both articles are the same text)
    news_groups = [g for g in groups if g.source == "news"]
    assert all(len(g.windows) == 1 for g in news_groups if g.answerable)
    assert any(len(g.windows) == 2 for g in news_groups if not g.answerable)


def test_shared_normalisation_loss_is_one_softmax_over_all_windows():
    torch = pytest.importorskip("torch")
    from rag.training.data import Group
    from rag.training.train import shared_norm_loss

    start = torch.tensor([[0.0, 1.0, 3.0, 0.0], [2.0, 0.0, 1.0, 5.0]])
    end = torch.tensor([[0.0, 2.0, 1.0, 0.0], [1.0, 0.0, 0.0, 4.0]])
    mask = torch.tensor([[False, False, False, True], [False, False, False, False]])  # one padded token
    answered = Group("q", [None, None], starts=[[2], []], ends=[[1], []])  # type: ignore[list-item]
    loss = shared_norm_loss(start, end, mask, [answered])
    valid_s = torch.tensor([0.0, 1.0, 3.0, 2.0, 0.0, 1.0, 5.0])
    valid_e = torch.tensor([0.0, 2.0, 1.0, 1.0, 0.0, 0.0, 4.0])
    want = ((torch.logsumexp(valid_s, 0) - 3.0) + (torch.logsumexp(valid_e, 0) - 2.0)) / 2
    assert float(loss) == pytest.approx(float(want), abs=1e-5)
    # unanswerable: the gold is every window's [CLS], summed over windows
    none = Group("q", [None, None], starts=[[], []], ends=[[], []])  # type: ignore[list-item]
    want = ((torch.logsumexp(valid_s, 0) - torch.logsumexp(torch.tensor([0.0, 2.0]), 0))
            + (torch.logsumexp(valid_e, 0) - torch.logsumexp(torch.tensor([0.0, 1.0]), 0))) / 2
    assert float(shared_norm_loss(start, end, mask, [none])) == pytest.approx(float(want), abs=1e-5)


def test_a_shipped_onnx_reader_reads_back_into_torch():
    pytest.importorskip("torch")
    from rag.span_model import DEFAULT_READER_DIR
    from rag.training.export import check, load_onnx_reader

    model = load_onnx_reader(DEFAULT_READER_DIR)
    assert check(model, DEFAULT_READER_DIR / "reader.onnx", DEFAULT_READER_DIR) < 1e-3


def test_training_runs_resumes_and_writes_weights(tiny, news, tmp_path):
    pytest.importorskip("torch")
    from rag.training.train import main

    work, out = tmp_path / "work", tmp_path / "out"
    args = ["--squad", str(tiny), "--news", str(news), "--news-repeat", "1", "--work", str(work), "--out", str(out),
            "--batch-size", "4", "--epochs", "2", "--save-every", "1"]
    assert main([*args, "--max-steps", "1"]) == 0
    log = (work / "train.log").read_text()
    assert "squad: 1 articles, 1 paragraphs, 2 questions" in log  # Kenya held out
    assert "news: 1 articles, 1 paragraphs, 2 questions" in log  # the news dev article held out
    assert (out / "model.safetensors").stat().st_size > 1_000_000
    meta = json.loads((out / "training.json").read_text())
    assert meta["steps"] == 1 and meta["train_groups"] == 4 and meta["normalisation"] == "shared"

    # the same settings again: resumes at step 1, nothing more to do
    assert main([*args, "--max-steps", "1"]) == 0
    assert json.loads((out / "training.json").read_text())["steps"] == 1
    assert "resumed at step 1" in (work / "train.log").read_text()


def test_continued_training_from_the_shipped_reader_chooses_distractors_with_the_serving_embedder(
        tiny, tmp_path, monkeypatch):
    """--model pointing at the shipped reader (an ONNX file only) continues from its weights, and
    the distractors are still chosen by the serving embedder (the reader is no sentence embedder)."""
    pytest.importorskip("torch")
    import rag.embed
    from rag.config import Settings
    from rag.span_model import DEFAULT_READER_DIR
    from rag.training.train import main

    loaded = []
    real = rag.embed.load_embedder
    monkeypatch.setattr(rag.embed, "load_embedder", lambda name, **kw: loaded.append(name) or real(name, **kw))
    out = tmp_path / "cont"
    assert main(["--squad", str(tiny), "--news", "none", "--model", str(DEFAULT_READER_DIR), "--work",
                 str(tmp_path / "w"), "--out", str(out), "--batch-size", "4", "--max-steps", "1"]) == 0
    assert loaded == [Settings().model_name]
    meta = json.loads((out / "training.json").read_text())
    assert meta["base_model"] == str(DEFAULT_READER_DIR)
    assert meta["final_loss_mean_last_50"] < 3.0  # a trained reader, not a fresh head (about 6 at the start)


def test_retrieved_distractors_replace_the_embedding_choice_for_their_source(tok, tiny, news):
    """``retrieved`` passages (served order) give a news question its other-article distractors:
    its own article's passages and those holding the answer are skipped, the first
    ``retrieved_other`` of the rest are read beside it; SQuAD keeps the embedding choice."""
    from rag.embed import load_embedder
    from rag.evaluation.squad import load_squad, split_articles
    from rag.training.data import build_groups

    embedder = load_embedder("all-MiniLM-L6-v2", backend="onnx")
    served = [
        (frozenset({"business_001.txt"}), "Rosneft is Russia's biggest oil firm."),  # the question's own article
        (frozenset({"business_009.txt"}), "Yugansk was sold for $9.3bn at auction."),  # holds the answer text
        (frozenset({"business_010.txt", "business_011.txt"}), "Gazprom said it would not bid for Yukos assets."),
        (frozenset({"politics_002.txt"}), "Ministers met in Moscow on Monday."),
        (frozenset({"sport_003.txt"}), "Chelsea won the cup."),
    ]
    retrieved = {"news": {"n1a": served, "n1b": served[2:3]}}
    sources = [("squad", split_articles(load_squad(tiny), "train"), None), ("news", load_squad(news), None)]
    groups = build_groups(sources, tok, embedder, other_article=1, retrieved=retrieved, retrieved_other=2)
    by_q = {(g.source, g.question, len(g.windows)) for g in groups}
    news_groups = [g for g in groups if g.source == "news"]

    def words(w) -> str:
        return tok.decode([int(i) for i in w.ids])

    first = news_groups[0]  # n1a: own window, then Gazprom and Moscow (own article and the answer skipped)
    assert len(first.windows) == 3 and not first.starts[1] and not first.starts[2]
    assert "gazprom" in words(first.windows[1]) and "moscow" in words(first.windows[2])
    assert news_groups[1].windows[1:] and "gazprom" in words(news_groups[1].windows[1])  # n1b: one passage given
    # a question with no retrieved entry gets no other-article distractor (never the embedding choice)
    assert all(len(g.windows) == 1 for g in news_groups[2:])
    # SQuAD questions still take the embedding choice (one window each here: one article to choose from)
    assert {n for s, _, n in by_q if s == "squad"} == {1}


def test_served_distractors_never_show_an_eval_sets_article(tmp_path):
    """The distractor retrieval runs the served pipeline over a corpus and leaves out every file an
    eval set names as a source, even when it is the best passage for the question."""
    pytest.importorskip("torch")
    import argparse

    from rag.evaluation.qa_sets import load_qa
    from rag.training.train import served_distractors

    eval_file = next(iter(load_qa(ROOT / "eval" / "bbc_qa.jsonl")[0])).sources[0]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / eval_file).write_text("Rosneft deal\n\nRosneft paid for the Yugansk unit of Yukos in cash.\n")
    (corpus / "tech_900.txt").write_text("Rosneft and Yugansk\n\nRosneft's Yugansk purchase angered Yukos investors.\n")
    (corpus / "sport_900.txt").write_text("Cup final\n\nChelsea beat Arsenal in the cup final on Saturday.\n")
    news_file = tmp_path / "news.json"
    news_file.write_text(json.dumps(NEWS))
    from rag.evaluation.squad import load_squad

    args = argparse.Namespace(news=news_file, distractor_corpus=corpus, distractor_index=tmp_path / "index",
                              retrieved_distractors=2)
    out = served_distractors(args, [("news", load_squad(news_file), None)])["news"]
    assert set(out) == {"n1a", "n1b", "n2a", "n2b"}
    shown = {f for passages in out.values() for files, _ in passages for f in files}
    assert eval_file not in shown and "tech_900.txt" in shown
    assert out["n1a"][0][0] == frozenset({"tech_900.txt"})  # the Rosneft passage first, in served order


def test_a_soup_is_the_mean_of_its_readers_weights(tmp_path):
    """rag.training.soup averages readers fine-tuned from the same start (one of them may be the
    shipped ONNX-only reader) and refuses what cannot be averaged."""
    torch = pytest.importorskip("torch")
    from rag.span_model import DEFAULT_READER_DIR
    from rag.training.soup import main
    from rag.training.train import load_reader_model, write_model

    shipped = load_reader_model(DEFAULT_READER_DIR)
    name = "qa_outputs.bias"
    before = shipped.state_dict()[name].clone()
    with torch.no_grad():
        shipped.qa_outputs.bias += 1.0
    moved = tmp_path / "moved"
    write_model(shipped, tokenizer_dir=DEFAULT_READER_DIR, out=moved, meta={"normalisation": "shared", "seed": 2})

    out = tmp_path / "soup"
    assert main([str(DEFAULT_READER_DIR), str(moved), "--out", str(out)]) == 0
    mixed = load_reader_model(out).state_dict()[name]
    assert torch.allclose(mixed, before + 0.5, atol=2e-3)  # fp16 storage
    meta = json.loads((out / "training.json").read_text())
    assert meta["normalisation"] == "shared" and meta["soup_of"] == [str(DEFAULT_READER_DIR), str(moved)]
    assert meta["ingredients"][1]["seed"] == 2

    (moved / "training.json").write_text(json.dumps({"normalisation": "paragraph"}))
    with pytest.raises(SystemExit, match="not 'shared'"):
        main([str(DEFAULT_READER_DIR), str(moved), "--out", str(tmp_path / "bad")])
    with pytest.raises(SystemExit, match="at least two"):
        main([str(DEFAULT_READER_DIR), "--out", str(tmp_path / "one")])


def test_cloze_questions_come_from_the_corpus_less_eval_and_news_dev_articles(tiny, news, tmp_path):
    """--cloze-questions adds a "cloze" source made from --distractor-corpus; no article an eval
    set uses, no article of the news dev part and no reprint of one becomes a question."""
    import argparse

    from rag.evaluation.qa_sets import load_qa
    from rag.evaluation.squad import load_squad
    from rag.training.data import split_news
    from rag.training.train import load_sources

    text = ("Rover sales rise\n\nCar maker Rover said sales rose 12% in Europe, helped by demand in Germany.\n"
            "Its new models sold well in Germany, helped by demand from car buyers, the firm said.\n")
    eval_file = next(iter(load_qa(ROOT / "eval" / "bbc_qa.jsonl")[0])).sources[0]
    dev_file = f"{split_news(load_squad(news), 'dev')[0].title}.txt"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in (eval_file, dev_file, "tech_901.txt"):  # tech_901: a reprint of the kept-out articles
        (corpus / name).write_text(text)
    (corpus / "tech_900.txt").write_text(text.replace("Rover", "Vauxhall").replace("sales rise", "has a good year")
                                         .replace("12%", "9%").replace("strong pound", "weak euro"))
    args = argparse.Namespace(squad=tiny, news=news, squad_questions=None, max_questions=None, news_repeat=1,
                              cloze_questions=10, distractor_corpus=corpus, seed=13)
    sources = load_sources(args)
    assert [name for name, _, _ in sources] == ["squad", "news", "cloze"]
    cloze = sources[-1][1]
    assert cloze and {a.title.split("#")[0] for a in cloze} == {"tech_900"}
    q = cloze[0].paragraphs[0].questions[0]
    assert q.answers[0][0] == "Germany" and "what" in q.question
