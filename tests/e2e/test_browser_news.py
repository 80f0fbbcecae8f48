"""Disagreement and the date range in a real Chromium against a real `streamlit run` server.

Needs Debian's Chromium at /usr/bin/chromium (`make chromium`); without it these tests FAIL.
The screenshot of the disagreement goes to test-output/browser/disagreement.png.
"""

from __future__ import annotations


import pytest

from .browser_support import CHAT, CHROMIUM, MISSING_CHROMIUM, MSG, SHOTS, ask, chromium, start_streamlit, stop_streamlit
from .news_fixtures import MINING_QUESTION
from .test_dates import write_news_folder

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory, request, seeds_pipeline):
    if not CHROMIUM.exists():
        pytest.fail(MISSING_CHROMIUM)
    from rag.config import Settings
    from rag.pipeline import Pipeline

    tmp = tmp_path_factory.mktemp("browser-news")
    articles = write_news_folder(tmp / "articles")
    index = tmp / "index"
    Pipeline(Settings(articles_dir=articles, index_dir=index), embedder=seeds_pipeline.embedder).build()
    try:
        proc, url = start_streamlit(articles, index, tmp / "server.log",
                                    env_extra={"RAG_FEEDBACK_FILE": str(tmp / "feedback_qa.jsonl")})
    except RuntimeError as exc:
        pytest.fail(str(exc))
    request.addfinalizer(lambda: stop_streamlit(proc))
    return {"url": url}


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1500})
    pg = context.new_page()
    pg.goto(server["url"])
    pg.wait_for_selector(CHAT, timeout=120_000)
    yield pg
    context.close()


def test_disagreement_in_the_browser(page):
    ask(page, MINING_QUESTION, timeout_ms=90_000)
    msg = page.locator(MSG).last
    card = msg.locator('[data-testid="rag-disagreement"]')
    card.wait_for(state="visible", timeout=10_000)
    assert "the articles disagree" in card.inner_text().lower()  # the label is upper-cased by CSS
    versions = card.locator('[data-testid="rag-version"]')
    assert versions.count() == 2
    assert [versions.nth(i).get_attribute("data-published") for i in range(2)] == ["2024-06-15", "2024-02-01"]
    texts = [versions.nth(i).inner_text() for i in range(2)]
    assert texts[0].startswith("3.9 million tonnes") and "zorblax-2024-06.md" in texts[0] and "15 Jun 2024" in texts[0]
    assert texts[1].startswith("4.2 million tonnes") and "zorblax-2024-02.md" in texts[1] and "1 Feb 2024" in texts[1]
    # Each version's article is cited under the card, newest first, each with its date.
    cites = msg.locator('[data-testid="rag-cite"]')
    assert [cites.nth(i).get_attribute("data-file") for i in range(cites.count())] == ["zorblax-2024-06.md",
                                                                                       "zorblax-2024-02.md"]
    card.scroll_into_view_if_needed()
    shot = SHOTS / "disagreement.png"
    msg.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


def test_date_range_in_the_browser(page):
    # Streamlit's date field is three spin buttons (year, month, day) that advance as one types.
    page.get_by_role("spinbutton", name="year, Until").click()
    page.keyboard.type("2024", delay=50)
    page.keyboard.type("03", delay=50)
    page.keyboard.type("01", delay=50)
    page.keyboard.press("Tab")  # leave the field: the value is sent
    page.wait_for_timeout(1500)
    ask(page, MINING_QUESTION, timeout_ms=90_000)
    msg = page.locator(MSG).last
    text = msg.inner_text()
    assert "4.2 million tonnes" in text and "3.9 million" not in text
    assert msg.locator('[data-testid="rag-disagreement"]').count() == 0
    assert "Searched only the" in text and "up to 2024-03-01" in text
    page.screenshot(path=str(SHOTS / "date-range.png"), full_page=True)
