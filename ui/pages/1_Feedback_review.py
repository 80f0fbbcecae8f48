"""Review the chat's feedback marks: filter, delete, and run the eval on them (a thin shell).

Questions and answers are what users typed: they are shown with ``st.text``, never rendered as
Markdown or HTML (a question holding ``![b](http://host/beacon.png)`` would load the image).

The marks live in the ``feedback_file`` setting (``eval/feedback_qa.jsonl``), a gold Q&A file
written by ``rag.feedback``; the eval is ``rag.evaluation.run_eval`` on it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.feedback import FeedbackStore, feedback_of  # noqa: E402
from ui import render  # noqa: E402

st.set_page_config(page_title="Feedback review", page_icon="📰", layout="centered")
settings = Settings()
store = FeedbackStore(settings.feedback_file)
VERDICTS = {"all": "All", "correct": "Marked correct", "wrong": "Marked wrong", "no_answer": "No answer in the articles"}

st.title("Feedback review")
st.caption(f"Marks from the chat, kept as gold questions in {render.md_escape(settings.feedback_file)}.")
lines = store.lines()
if not lines:
    st.info("No feedback yet: mark answers in the chat (Correct, Wrong, No answer in the articles).")
    st.stop()


@st.cache_resource(max_entries=2)
def load_index(index_dir: str, version: str, model_name: str):
    """The live index (articles and chunks; no reader model), loaded once per version."""
    from rag.index import IndexStore

    return IndexStore(index_dir).load(model_name)


def mark_status() -> dict[str, str | None]:
    """Per mark id: None when the chat answers its question from it (``rag.corrections``), else why not."""
    if not settings.answer_from_corrections:
        return {r.get("id"): "corrections are off (setting answer_from_corrections)" for r in lines}
    try:
        from rag.corrections import statuses
        from rag.index import IndexStore

        version = IndexStore(settings.index_dir).current_version()
        data = load_index(str(settings.index_dir), str(version), settings.model_name)
        return {r.get("id"): why for r, (_, why) in zip(lines, statuses(lines, data))}
    except Exception as exc:  # the page still lists the marks
        return {r.get("id"): f"the index could not be read ({exc})" for r in lines}


status = mark_status()
choice = st.radio("Show", list(VERDICTS), format_func=VERDICTS.get, horizontal=True, key="filter")
shown = [r for r in lines if choice == "all" or feedback_of(r).get("verdict") == choice]
st.caption(f"{len(shown)} of {len(lines)} marks")
for rec in shown:
    fb = feedback_of(rec)
    with st.container(border=True, key=f"rec-{rec['id']}"):
        st.text(str(rec.get("question", "")))
        gold = " / ".join(rec.get("answers") or []) or "(no answer in the articles)"
        st.text(f"gold: {gold}\nsystem said: {fb.get('system_answer') or '(abstained)'}\n"
                f"{VERDICTS.get(fb.get('verdict'), fb.get('verdict'))} · {fb.get('date', '')}")
        not_used = status.get(rec.get("id"))
        st.caption("Asked again in the chat, this question gets this mark's answer (when its article is found)."
                   if not_used is None else render.md_escape(f"Not used by the chat: {not_used}."))
        if st.button("Delete", key=f"del-{rec['id']}", icon=":material/delete:", type="tertiary"):
            store.delete(rec["id"])
            st.rerun()

st.caption("The eval asks these questions of the reader alone, not of the marks: it measures the reader.")
if st.button("Run the eval on these marks", icon=":material/play_arrow:", key="run-eval"):
    from rag.evaluation import run_eval

    bar = st.progress(0.0, text="Asking the questions…")
    out = Path(tempfile.mkdtemp(prefix="rag-feedback-eval-"))
    try:
        report = run_eval(settings.feedback_file, settings, json_out=out / "feedback.json",
                          report_out=out / "feedback.md",
                          progress=lambda stage, done, total: stage.startswith("index:")
                          or bar.progress(done / total, text=f"Asked {done}/{total}"))
    except RagError as exc:
        st.error(render.md_escape(exc))
        st.stop()
    bar.empty()
    a, ab = report["answer"], report["abstention"]
    cols = st.columns(4)
    cols[0].metric("Questions", report["n"])
    cols[1].metric("Answer F1", f"{a['f1']:.3f}")
    cols[2].metric("Contains", f"{a['contains']:.3f}")
    cols[3].metric("Abstention F1", f"{ab['f1']:.3f}")
    st.dataframe([{"id": m["id"], "why": m["label"], "question": m["question"], "gold": " / ".join(m["gold"]),
                   "answer": m["answer"] or "(abstained)"} for m in report["misses"]])
    st.image(str(out / "feedback-coverage.png"))
    st.caption(f"Full report: {render.md_escape(out / 'feedback.md')}")
