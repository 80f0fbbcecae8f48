"""A hostile article and hostile questions in a real Chromium against a real `streamlit run`.

Nothing in the article may execute, load or render as markup: no dialog opens, no request leaves
127.0.0.1, no KaTeX, no injected element, and every payload shows as literal text in the chat,
the citation and the full-article view. Screenshot: test-output/browser/hostile.png.
"""

from __future__ import annotations

import json
import shutil
import socket
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from . import hostile_fixtures as H
from .browser_support import CHAT, CHROMIUM, CHROMIUM_ARGS, MSG, SHOTS, is_local, start_streamlit, stop_streamlit
from .browser_support import ask as _ask
from ..conftest import ROOT, SEEDS

pytestmark = pytest.mark.browser

HOSTILE_FILE = "quillon <img src=x onerror=alert('xss-name')>.txt"
HOSTILE_QUESTION = "<img src=x onerror=alert('xss-q')> $x^2$ :red[q] **q** ![q](http://evil.example/q.png)"
BEACON = "![b](http://127.0.0.1:9/beacon.png)"
BEACON_QUESTION = f"Who won? {BEACON} <img src=http://127.0.0.1:9/img-beacon.png>"
MAX_UPLOADS = 3  # RAG_MAX_UPLOAD_FILES for the server under test
MAX_BYTES = 30_000  # RAG_MAX_FILE_BYTES (every seed is smaller); Streamlit's own limit rounds up to 1 MB


@pytest.fixture(scope="module")
def server(tmp_path_factory, seeds_pipeline):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` (or apt-get install -y chromium)")
    from rag.config import Settings
    from rag.pipeline import Pipeline

    tmp = tmp_path_factory.mktemp("browser-hostile")
    articles = tmp / "articles"
    shutil.copytree(SEEDS, articles)
    (articles / HOSTILE_FILE).write_text(H.hostile_article())
    index = tmp / "index"
    Pipeline(Settings(articles_dir=articles, index_dir=index), embedder=seeds_pipeline.embedder).build()
    feedback = tmp / "feedback_qa.jsonl"  # a hostile question marked in the chat (issue 24, reproduction 9)
    feedback.write_text(json.dumps({"id": "fbeacon", "question": BEACON_QUESTION, "answers": [], "sources": [],
                                    "type": "factoid", "feedback": {"verdict": "no_answer", "system_answer": BEACON,
                                                                    "date": "2024-01-01"}}) + "\n")
    limits = {"RAG_MAX_UPLOAD_FILES": str(MAX_UPLOADS), "RAG_MAX_FILE_BYTES": str(MAX_BYTES),
              "RAG_FEEDBACK_FILE": str(feedback)}
    proc, url = start_streamlit(articles, index, tmp / "server.log", limits)
    yield {"url": url, "tmp": tmp, "log": tmp / "server.log", "articles": articles}
    stop_streamlit(proc)


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1500})
        requests: list[str] = []
        dialogs: list[str] = []
        context.on("request", lambda r: requests.append(r.url))

        def guard(route):  # record everything; nothing may leave the machine even if asked to
            if is_local(route.request.url):
                route.continue_()
            else:
                route.abort()

        context.route("**/*", guard)
        pg = context.new_page()
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        pg.requests, pg.dialogs = requests, dialogs
        pg.goto(server["url"])
        pg.wait_for_selector(CHAT, timeout=120_000)
        yield pg
        context.close()
        browser.close()


def ask(page, question: str) -> None:
    _ask(page, question, timeout_ms=90_000, settle_ms=400)


def assert_nothing_injected(page) -> None:
    assert not page.dialogs, f"a dialog opened: {page.dialogs}"
    outside = sorted({u for u in page.requests if not is_local(u)})
    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert page.locator(".katex, .katex-display, math").count() == 0, "LaTeX was rendered"
    main = page.locator('[data-testid="stMain"], section.main, [data-testid="stAppViewContainer"]').first
    assert main.locator('img[src="x"], img[src*="evil"], iframe[src*="evil"], svg[onload]').count() == 0
    assert page.locator('a[href^="javascript"], a[href*="evil.example"]').count() == 0
    assert main.locator("strong:has-text('bold claim'), del:has-text('struck'), h1:has-text('Not a heading')").count() == 0
    # Streamlit's :red[...] directive becomes a coloured span; the text must stay literal instead.
    assert "xss" not in page.title() and "pwned" not in page.title()


def test_hostile_article_stays_text_everywhere(page, server):
    ask(page, H.FACT_QUESTION)
    msg = page.locator(MSG).last
    card = msg.locator('[data-testid="rag-answer"]')
    assert H.FACT_ANSWER in card.inner_text()
    cite = msg.locator('[data-testid="rag-cite"]').first
    cite_text = cite.inner_text()
    for marker in ["<script>alert('xss-script')</script>", "<img src=x onerror=alert('xss-img')>",
                   "![x](http://evil.example/x.png)", "$x^2$", ":red[RED ALERT]", "**bold claim**"]:
        assert marker in cite_text, f"{marker!r} not shown literally in the citation: {cite_text!r}"
    assert HOSTILE_FILE in cite_text
    assert "$t$ :red[t]" in cite_text, "the hostile title is literal"
    assert cite.locator("mark.rag-hl", has_text=H.FACT_ANSWER).count() == 1
    assert_nothing_injected(page)
    page.screenshot(path=str(SHOTS / "hostile-answer.png"), full_page=True)

    # The full article, in its dialog.
    msg.get_by_role("button", name="Open article").first.click()
    dialog = page.locator('[role="dialog"]')
    dialog.locator("iframe").wait_for(timeout=30_000)
    frame = page.frame_locator('[role="dialog"] iframe')
    frame.locator("mark#rag-mark").wait_for(timeout=30_000)
    assert frame.locator("mark#rag-mark").inner_text() == H.FACT_ANSWER
    article_text = frame.locator("article").inner_text()
    for line in H.HOSTILE_LINES:
        assert line in article_text, f"{line!r} not literal in the article view"
    assert frame.locator("article img, article script, article iframe, article a, article svg, article style").count() == 0
    assert frame.locator("script").count() == 1, "only the renderer's own scroll script"
    assert HOSTILE_FILE in dialog.inner_text()
    page.wait_for_timeout(800)
    page.screenshot(path=str(SHOTS / "hostile.png"))
    assert_nothing_injected(page)


def test_hostile_question_is_shown_literally(page, server):
    ask(page, HOSTILE_QUESTION)
    user = page.locator(MSG).nth(-1).locator("xpath=preceding::*[@data-testid='stChatMessage'][1]")
    shown = page.locator(".rag-user").last.inner_text()
    assert shown == HOSTILE_QUESTION
    assert user.count() == 1
    page.screenshot(path=str(SHOTS / "hostile-question.png"))
    assert_nothing_injected(page)


def test_feedback_review_page_loads_no_beacon(page, server):
    """Issue 24, reproduction 9: the review page showed a question's Markdown image, and the
    browser fetched it."""
    page.goto(server["url"] + "/Feedback_review")
    page.get_by_text("1 of 1 marks").wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    assert not [u for u in page.requests if "beacon" in u], page.requests
    assert page.locator("img[src*='beacon']").count() == 0
    assert page.get_by_text(BEACON_QUESTION, exact=True).count() == 1  # shown as the text it is
    page.screenshot(path=str(SHOTS / "hostile-feedback-review.png"))


def test_no_request_leaves_loopback_at_all(page, server):
    page.wait_for_timeout(1500)
    outside = sorted({u for u in page.requests if not is_local(u)})
    assert not outside, f"requests left 127.0.0.1: {outside}"


def test_server_listens_on_loopback_only(server):
    """The server is reachable on 127.0.0.1 and not on the machine's other addresses."""
    port = urllib.parse.urlsplit(server["url"]).port
    other = []
    try:
        other = [a for a in socket.gethostbyname_ex(socket.gethostname())[2] if not a.startswith("127.")]
    except OSError:
        pass
    for addr in other:
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((addr, port)) != 0, f"streamlit answers on {addr}:{port}"


def test_config_and_makefile_default_to_loopback():
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    assert 'address = "127.0.0.1"' in config
    make = (ROOT / "Makefile").read_text()
    assert "ADDRESS ?= 127.0.0.1" in make and "--server.address $(ADDRESS)" in make


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in root.rglob("*"):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns) if p.is_file() else (0, 0)
    return out


def _upload(page, files: list[dict]) -> str:
    """Put files in the sidebar uploader, press "Add to index", return the sidebar's messages."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    n_alerts = sidebar.locator('[data-testid="stAlert"]').count()
    sidebar.locator('input[type="file"]').set_input_files(files)
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid=stSidebar] button')]
                 .some(b => b.innerText.includes('Add to index') && !b.disabled)""",
        timeout=60_000,
    )
    sidebar.get_by_role("button", name="Add to index").click()
    page.wait_for_function(
        "(n) => document.querySelectorAll('[data-testid=stSidebar] [data-testid=stAlert]').length > 0"
        " && !document.querySelector('[data-testid=stSidebar] [data-testid=stProgress]')",
        arg=n_alerts,
        timeout=180_000,
    )
    page.wait_for_timeout(800)
    return "\n".join(sidebar.locator('[data-testid="stAlert"]').all_inner_texts())


def test_hostile_uploads_are_bounded_and_stay_in_the_folder(page, server):
    """Through the real uploader: too many files refused; traversal names reduced to their base name;
    an oversize file refused; a file named like markup shown literally; nothing written elsewhere."""
    tmp, articles = server["tmp"], server["articles"]
    keep_out = ("articles", "index", "server.log")
    before = {k: v for k, v in _tree(tmp).items() if not k.startswith(keep_out)}
    names_before = {p.name for p in articles.iterdir()}
    fact = f"Quillon upload\n{H.FACT_SENTENCE}\n".encode()

    many = [{"name": f"many{i}.txt", "mimeType": "text/plain", "buffer": fact + str(i).encode()}
            for i in range(MAX_UPLOADS + 1)]
    shown = _upload(page, many)
    assert "Too many files" in shown, shown
    assert {p.name for p in articles.iterdir()} == names_before, "a refused batch adds nothing"

    markup_name = ":red[x] $y$ <img src=x onerror=alert('up')>.txt"
    batch = [
        {"name": "../../evil.txt", "mimeType": "text/plain",
         "buffer": b"Evil upload\nThe evil plan was cancelled on Friday.\n"},
        {"name": markup_name, "mimeType": "text/plain", "buffer": b"Markup name\nA file named like markup is fine.\n"},
        {"name": "big.txt", "mimeType": "text/plain", "buffer": b"Big\n" + b"Many words here. " * 3000},
    ]
    shown = _upload(page, batch)
    added = {p.name for p in articles.iterdir()} - names_before
    assert added == {"evil.txt", markup_name}, (added, shown)
    assert "big.txt" in shown and "too large" in shown, shown
    assert markup_name in shown, f"the markup file name is shown literally: {shown!r}"
    after = {k: v for k, v in _tree(tmp).items() if not k.startswith(keep_out)}
    assert after == before, "nothing written outside the articles and index folders"
    for stray in (Path("/evil.txt"), Path("/tmp/evil.txt"), ROOT / "evil.txt", ROOT.parent / "evil.txt"):
        assert not stray.exists(), stray
    page.screenshot(path=str(SHOTS / "hostile-upload.png"))
    assert_nothing_injected(page)
