"""Streamlit chat window over ``rag.Pipeline``: a thin shell.

Run from the repository root:  ``streamlit run ui/app.py``  (settings from ``RAG_*`` variables).
All HTML comes from ``ui/render.py``, which escapes every piece of article text.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.ingest import SUPPORTED_SUFFIXES  # noqa: E402
from ui import render  # noqa: E402
from rag.feedback import GoldSpan  # noqa: E402
from ui.select_span import select_span  # noqa: E402
from ui.uploads import add_uploads  # noqa: E402

MODES = ["hybrid", "dense", "bm25"]
MODE_HELP = {
    "hybrid": "Hybrid (meaning + keywords)",
    "dense": "Dense (meaning only)",
    "bm25": "BM25 (keywords only)",
}
USER_AVATAR = ":material/person:"
BOT_AVATAR = ":material/newspaper:"
STAGES = {"read": "Reading articles", "embed": "Embedding passages", "write": "Writing the index",
          "fetch": "Fetching feed items"}

st.set_page_config(page_title="News Q&A", page_icon="📰", layout="centered")
st.html(render.APP_CSS)


# -- the pipeline (one per process) ---------------------------------------------------------


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError names the bad RAG_* variable
        st.error(f"Invalid setting: {render.md_escape(exc)}")
        st.stop()


@st.cache_resource(show_spinner=False)
def get_pipeline(key: str, _settings: Settings):
    """One Pipeline per process and settings (the model is loaded once)."""
    from rag.pipeline import Pipeline

    pipe = Pipeline(_settings)
    _ = pipe.embedder  # load the model now, not on the first question (no bare expression: Streamlit magic)
    return pipe


@st.cache_resource(show_spinner=False)
def warm(key: str, _pipe) -> bool:
    """Load the index and run one throwaway question so the first real one is fast."""
    _pipe.warm_up()
    _pipe.ask("warm up")
    return True


def progress_callback(bar):
    """A ``progress(stage, done, total)`` callback feeding a ``st.progress`` bar."""
    weights = {"read": (0.0, 0.05), "embed": (0.05, 0.95), "write": (0.95, 1.0)}

    def update(stage: str, done: int, total: int) -> None:
        lo, hi = weights.get(stage, (0.0, 1.0))
        frac = lo + (hi - lo) * (done / total if total else 1.0)
        label = STAGES.get(stage, stage)
        count = f" {done:,}/{total:,}" if stage in ("embed", "fetch") else ""
        bar.progress(min(1.0, max(0.0, frac)), text=f"{label}{count}")

    return update


def build_index(pipe, *, message: str) -> None:
    with st.spinner(message):
        bar = st.progress(0.0, text="Starting…")
        report = pipe.build(progress=progress_callback(bar), wait=600)
        bar.empty()
    for s in report.skipped:
        st.warning(f"Skipped {render.md_escape(s.file)}: {render.md_escape(s.reason)}")


settings = load_settings()
settings_key = settings.model_dump_json()
try:
    with st.spinner("Loading the embedding model…"):
        pipe = get_pipeline(settings_key, settings)
    if not pipe.store.exists():
        build_index(pipe, message=f"Building the index from {settings.articles_dir}/ (first start only)…")
    with st.spinner("Loading the index…"):
        warm(settings_key, pipe)
except RagError as exc:
    st.error(render.md_escape(exc))
    st.stop()


# -- session state ----------------------------------------------------------------------------

state = st.session_state
state.setdefault("turns", [])
state.setdefault("next_id", 1)
state.setdefault("uploader_key", 0)


def history() -> list:
    return [t["answer"] for t in state.turns if t.get("answer") is not None]


def theme_type() -> str | None:
    try:
        return st.context.theme.type
    except Exception:  # not known yet (first load) or not available
        return None


# -- the whole article in a dialog ------------------------------------------------------------


@st.dialog("Source article", width="large")
def show_article(article_id: str, file: str, marks: list[tuple[int, int]], context: tuple[int, int] | None) -> None:
    try:
        article = pipe.index().articles.get(article_id)
    except RagError as exc:
        st.error(render.md_escape(exc))
        return
    if article is None:
        st.info(
            f"{render.md_escape(file)} is no longer in the index (it was removed or changed since this answer)."
        )
        return
    byline = " · ".join(x for x in (article.author, article.site) if x) or None
    st.markdown(render.article_header_html(article.title, article.file, len(article.text), article.published, byline,
                                      article.url), unsafe_allow_html=True)
    doc = render.article_document(article.text, marks, context=context, theme=theme_type())
    st.iframe(doc, height=480, alt=f"Full text of {article.file}")


# -- one answer -------------------------------------------------------------------------------


def render_answer(turn: dict) -> None:
    tid = turn["id"]
    if turn.get("error"):
        st.error(render.md_escape(turn["error"]))
        return
    answer = turn["answer"]
    query = render.searched_for(answer.question, answer.query)
    if query:
        st.markdown(render.searched_for_html(query), unsafe_allow_html=True)
    if answer.notes:
        for note in answer.notes:
            st.info(render.md_escape(note))
    st.markdown(render.answer_card_html(answer), unsafe_allow_html=True)
    try:
        articles = pipe.index().articles
    except RagError:
        articles = {}

    if not answer.abstained:
        for i, c in enumerate(render.shown_citations(answer), 1):
            art = articles.get(c.article_id)
            with st.container(border=True, key=f"cite-{tid}-{i}", gap="small"):
                st.markdown(render.citation_html(i, c, art.text if art else None), unsafe_allow_html=True)
                if st.button("Open article", key=f"open-{tid}-{i}", icon=":material/article:", type="tertiary",
                             help="Read the whole article with this quote highlighted"):
                    show_article(c.article_id, c.file, [(c.start, c.end)], (c.sentence_start, c.sentence_end))
        html = render.sources_html(answer)
        if html:
            st.markdown(html, unsafe_allow_html=True)
    elif answer.passages:
        st.markdown(render.related_header_html(len(answer.passages)), unsafe_allow_html=True)
        for i, h in enumerate(answer.passages, 1):
            with st.container(border=True, key=f"related-{tid}-{i}", gap="small"):
                st.markdown(render.related_html(i, h), unsafe_allow_html=True)
                if st.button("Open article", key=f"rel-{tid}-{i}", icon=":material/article:", type="tertiary",
                             help="Read the whole article with this passage shaded"):
                    show_article(h.chunk.article_id, h.file, [], (h.chunk.start, h.chunk.end))
    st.markdown(render.footer_html(answer, turn.get("mode")), unsafe_allow_html=True)
    feedback_controls(turn)


def save_feedback(turn: dict, verdict: str, typed: str | None = None, span=None) -> None:
    try:
        pipe.feedback(turn["answer"], verdict, typed=typed, span=span)
    except RagError as exc:
        turn["feedback_error"] = str(exc)
        return
    turn["feedback"] = verdict
    turn.pop("feedback_error", None)
    turn.pop("feedback_open", None)
    st.rerun()  # close the form: the mark shows as a caption under the answer


def feedback_controls(turn: dict) -> None:
    """Correct / wrong / no answer in the articles: each mark is a line of the feedback Q&A file."""
    tid, answer = turn["id"], turn["answer"]
    labels = {"correct": "correct", "wrong": "wrong (right answer saved)", "no_answer": "no answer in the articles"}
    cols = st.columns([1, 1, 2], gap="small")
    if cols[0].button("Correct", key=f"fb-ok-{tid}", icon=":material/thumb_up:", type="tertiary",
                      disabled=answer.abstained, help="The answer is right: keep it as a gold answer."):
        save_feedback(turn, "correct")
    if cols[1].button("Wrong", key=f"fb-wrong-{tid}", icon=":material/thumb_down:", type="tertiary",
                      help="Give the right answer as the article says it."):
        turn["feedback_open"] = True
    if cols[2].button("No answer in the articles", key=f"fb-none-{tid}", icon=":material/block:", type="tertiary",
                      help="The articles do not answer this: the app should have said so."):
        save_feedback(turn, "no_answer")
    if turn.get("feedback_open"):
        try:
            articles = pipe.index().articles
        except RagError:
            articles = {}
        ids = [a for a in dict.fromkeys([c.article_id for c in answer.citations]
                                        + [h.chunk.article_id for h in answer.passages]) if a in articles]
        if ids:
            aid = st.selectbox("Select the right words in an article", ids, key=f"fb-art-{tid}",
                               format_func=lambda a: f"{articles[a].file} · {articles[a].title[:60]}")
            picked = select_span(articles[aid].text, key=f"fb-sel-{tid}-{aid}")
            if picked:
                st.caption(f"Selected in {render.md_escape(articles[aid].file)} [{picked['start']}:{picked['end']}]: "
                           f"“{render.md_escape(picked['text'][:200])}”")
                if st.button("Save the selected words", key=f"fb-savesel-{tid}", icon=":material/save:"):
                    save_feedback(turn, "wrong", span=GoldSpan(aid, picked["start"], picked["end"]))
        typed = st.text_input("…or type the right answer, exactly as an article says it", key=f"fb-text-{tid}")
        if st.button("Save the right answer", key=f"fb-save-{tid}", icon=":material/save:"):
            save_feedback(turn, "wrong", typed=typed)
    if turn.get("feedback_error"):
        st.error(render.md_escape(turn["feedback_error"]))
    elif turn.get("feedback"):
        st.caption(f"Marked {labels[turn['feedback']]}; saved to {render.md_escape(settings.feedback_file)}.")


def render_turn(turn: dict) -> None:
    with st.chat_message("user", avatar=USER_AVATAR):
        st.markdown(render.user_text_html(turn["question"]), unsafe_allow_html=True)
    with st.chat_message("assistant", avatar=BOT_AVATAR):
        render_answer(turn)


# -- the reader learning from the marks (rag train) -------------------------------------------

TRAIN_STAGES = {"marks": "Reading the marks", "replay": "Sampling the training sets", "before": "Scoring the reader in use",
                "train": "Training", "export": "Writing the new reader", "after": "Scoring the new reader"}


def training_progress() -> None:
    """The running (or last) training run, from its status file (a fragment refreshed every 2 s
    while a run is going, see ``reader_controls``)."""
    from rag.training.learn import last_log_line

    store = pipe.readers
    status = store.read_status() or {}
    proc = state.get("train_proc")
    if proc is not None and proc.poll() is not None:
        state.train_proc = None
        if proc.returncode != 0 and status.get("state") in (None, "running", "kept", "refused"):
            status = {"state": "failed", "message": last_log_line(store) or f"rag train exited with {proc.returncode}"}
    if status.get("state") == "running" and store.running():
        total, done = status.get("total") or 0, status.get("done") or 0
        label = TRAIN_STAGES.get(status.get("stage"), status.get("stage", ""))
        text = f"{label} {done}/{total} · {status.get('message', '')}" if total else f"{label}…"
        st.progress(min(1.0, done / total) if total else 0.0, text=render.md_escape(text))
    elif status.get("state") == "running":  # its process is gone without a word: killed
        st.warning("The last training run stopped before it finished; the reader in use is unchanged.")
    elif status.get("state") in ("kept", "refused"):
        (st.success if status["state"] == "kept" else st.info)(render.md_escape(status.get("message", "")))
        from rag.training.learn import changed_line

        for c in status.get("changed") or []:  # the held-out marks it fixed or broke
            st.caption(render.md_escape(changed_line(c, "→")))
    elif status.get("state") == "failed" and status.get("message"):
        st.error(render.md_escape(status["message"]))


def reader_controls() -> None:
    """Under Maintenance: the reader in use, a button that trains it on the marks in the background,
    one that rolls back."""
    from rag.readers import SHIPPED
    from rag.training.learn import start_background

    name = pipe.reader_name()
    note = pipe.active_reader.note if pipe.active_reader else None
    st.caption(f"Reader in use: {render.md_escape(name)}" + (f" ({render.md_escape(note)})" if note else ""))
    if pipe.readers.root is None:
        return
    running = pipe.readers.running()
    if st.button("Train the reader on the marks", icon=":material/model_training:", disabled=running,
                 help="Continue training the reader on the answers marked in the chat (rag train), in the background; "
                 "the new reader is used only if it does better on marks it never saw and holds on the eval set."):
        try:
            state.train_proc = start_background(pipe.readers, cwd=ROOT)
        except OSError as exc:
            st.error(f"Could not start rag train: {render.md_escape(exc)}")
    if st.button("Roll back the reader", icon=":material/undo:", disabled=name == SHIPPED or running,
                 help="Go back to the reader this one was trained from."):
        try:
            old, new = pipe.readers.rollback()
            state.rollback_note = f"Rolled back: the reader in use is now {new} (was {old})."
        except RagError as exc:
            state.rollback_note = str(exc)
        st.rerun()
    if state.get("rollback_note"):
        st.info(render.md_escape(state.pop("rollback_note")))
    # Refresh by itself only while a run is going: a fragment rerunning every 2 s in every session
    # cut chat answers off mid-run under load (tests/e2e/test_load.py: sessions waited 90 s for one).
    live = running or state.get("train_proc") is not None
    st.fragment(training_progress, run_every=2 if live else None)()


# -- sidebar: conversation, index, settings ---------------------------------------------------

with st.sidebar:
    st.markdown(render.brand_html(), unsafe_allow_html=True)
    if st.button("New conversation", icon=":material/add_comment:", width="stretch",
                 help="Forget the questions so far: the next question is not read as a follow-up."):
        state.turns = []

    st.subheader("Answer settings")
    top_k = st.slider("Passages to show", 1, max(20, settings.top_k), settings.top_k, key="top_k",
                      help=f"How many retrieved passages are shown as sources and, after an abstention, as "
                      f"related reading; the reader reads the best {settings.read_passages} of them.")
    threshold = st.slider("Abstention threshold", 0.0, 1.0, float(pipe.abstain_threshold), 0.01,
                          key="threshold",
                          help="Answers with a confidence below this are withheld: the app says the "
                          "articles don't answer the question. The default is the threshold calibrated "
                          "with the reader.")
    mode = st.selectbox("Retrieval", MODES, index=MODES.index(settings.retrieval_mode), key="mode",
                        format_func=MODE_HELP.get)
    st.caption("Published between (both empty: every article, dated or not; a date set leaves undated articles out)")
    since = st.date_input("From", value=None, key="since", format="YYYY-MM-DD",
                          help="Search only articles published on or after this day.")
    until = st.date_input("Until", value=None, key="until", format="YYYY-MM-DD",
                          help="Search only articles published on or before this day.")

    st.subheader("Index")
    try:
        info = pipe.index().info()
        st.markdown(render.index_info_html(info), unsafe_allow_html=True)
    except RagError as exc:
        st.error(render.md_escape(exc))

    st.subheader("Add articles")
    uploads = st.file_uploader(
        "Article files",
        label_visibility="collapsed",
        type=[s.lstrip(".") for s in SUPPORTED_SUFFIXES],
        accept_multiple_files=True,
        key=f"uploader-{state.uploader_key}",
        max_upload_size=max(1, -(-settings.max_file_bytes // (1024 * 1024))),
        help=f"News articles as text, Markdown, saved web pages or PDFs, or bulk exports (.jsonl/.csv, one article "
        f"per record: text, title, date, url, source); up to {settings.max_upload_files} files of at most "
        f"{settings.max_file_bytes / 1e6:.0f} MB each. They are copied into {settings.articles_dir}/.",
    )
    if st.button("Add to index", icon=":material/upload_file:", disabled=not uploads, width="stretch"):
        bar = st.progress(0.0, text="Saving uploads…")
        result = add_uploads(pipe, uploads, progress=progress_callback(bar))
        bar.empty()
        state.upload_result = result
        state.pending_replace = result.held
        state.uploader_key += 1
        st.rerun()
    if state.get("pending_replace"):  # uploads that would replace an article: asked first
        held = state.pending_replace
        st.warning(f"Already in the articles folder, with other content: {render.md_escape(', '.join(h.name for h in held))}. "
                   "Replace the existing article" + ("s?" if len(held) > 1 else "?"))
        yes, no = st.columns(2)
        if yes.button("Replace", key="replace-yes", icon=":material/swap_horiz:", width="stretch"):
            bar = st.progress(0.0, text="Replacing…")
            state.upload_result = add_uploads(pipe, held, progress=progress_callback(bar), replace=True)
            bar.empty()
            state.pending_replace = []
            st.rerun()
        if no.button("Keep the existing", key="replace-no", width="stretch"):
            state.pending_replace = []
            st.rerun()

    result = state.pop("upload_result", None)
    if result is not None:
        if result.error:
            st.error(render.md_escape(result.error))
        done = [("Added", result.added), ("Replaced", result.replaced), ("Updated", result.updated)]
        for label, files in done:
            if files:
                st.success(f"{label} {len(files)} article{'s' if len(files) != 1 else ''}: "
                           f"{render.md_escape(', '.join(files))}")
        if result.added or result.updated or result.replaced:
            st.caption(f"The index now holds {result.n_articles:,} articles in {result.n_chunks:,} passages.")
        if result.unchanged:
            st.info(f"Already indexed, unchanged: {render.md_escape(', '.join(result.unchanged))}")
        for orig, new in result.renamed.items():
            st.info(f"{render.md_escape(orig)} was saved as {render.md_escape(new)} (folder parts of a name are dropped).")
        for p in result.problems:
            st.error(f"Could not use {render.md_escape(p.file)}: {render.md_escape(p.reason)}")
        for w in result.warnings:
            st.warning(render.md_escape(w))

    st.subheader("Add a feed")
    feed_url = st.text_input("Feed", key="feed_url", label_visibility="collapsed",
                             placeholder="https://example.com/news/rss.xml",
                             help="An RSS or Atom feed: each new item's page is fetched now (only when you press "
                             "the button), its article extracted and indexed. Items already indexed are not fetched again.")
    if st.button("Fetch feed", icon=":material/rss_feed:", disabled=not feed_url.strip(), width="stretch"):
        bar = st.progress(0.0, text="Fetching the feed…")
        try:
            state.feed_result = pipe.add_feed(feed_url.strip(), progress=progress_callback(bar), wait=30, files=False)
        except RagError as exc:
            state.feed_result = str(exc)
        bar.empty()
        st.rerun()
    feed_result = state.pop("feed_result", None)
    if isinstance(feed_result, str):
        st.error(render.md_escape(feed_result))
    elif feed_result is not None:
        st.markdown(render.feed_report_html(feed_result), unsafe_allow_html=True)

    with st.expander("Maintenance"):
        st.caption(f"Articles folder: {render.md_escape(settings.articles_dir)} · index: {render.md_escape(settings.index_dir)}")
        if st.button("Rescan articles folder", icon=":material/refresh:",
                     help="Index files added, changed or removed in the folder outside the app."):
            try:
                build_index(pipe, message="Updating the index…")
                st.rerun()
            except RagError as exc:
                st.error(render.md_escape(exc))
        reader_controls()


# -- the conversation -------------------------------------------------------------------------

# Read the chat input first, so that the page keeps one layout while an answer is computed
# (the welcome note is not drawn when the first question arrives: no stale elements flash).
prompt = st.chat_input("Ask a question about the articles…")

if not state.turns and not prompt:
    st.markdown(render.empty_chat_html(), unsafe_allow_html=True)

for turn in state.turns:
    render_turn(turn)

if prompt:
    state.next_id += 1
    turn = {"id": state.next_id, "question": prompt, "answer": None, "error": None, "mode": mode}
    with st.chat_message("user", avatar=USER_AVATAR):
        st.markdown(render.user_text_html(prompt), unsafe_allow_html=True)
    with st.chat_message("assistant", avatar=BOT_AVATAR):
        try:
            with st.spinner("Searching the articles…"):
                turn["answer"] = pipe.ask(prompt, history(), top_k=top_k, mode=mode, threshold=threshold,
                                          since=since, until=until)
        except RagError as exc:
            turn["error"] = str(exc)
        state.turns.append(turn)
        render_answer(turn)
