"""Load: 10 concurrent browser sessions against one `streamlit run`, with a rebuild in the middle.

Ten Playwright browser contexts in one headless Chromium (each its own Streamlit session) ask the
eval questions for 60 s against one server on 127.0.0.1. Halfway through, `rag add` (the CLI, a
separate process) adds an article to the same articles and index folders, which switches the
index version. Requirements: zero errors, and every answer equal to the single-user answer for
its index version. Prints p50/p95 latency and the server's peak RSS (VmHWM).

The page does not show which index version answered, so each answer is checked against both
single-user references: questions answered entirely before the rebuild started must match the
old version, questions asked after it finished must match the new one, and those in between
must match one of the two. One question ("Zorblax", only in the new article) changes answer
with the switch, so the switch is visible in the answers.

Run with:  .venv/bin/pytest -m slow -s tests/e2e/test_load.py
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import pytest

from rag.pipeline import resolve_followup

from ..conftest import ROOT, SEEDS
from .browser_support import CHAT, CHROMIUM, CHROMIUM_ARGS, MSG, is_local, start_streamlit, stop_streamlit

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CLIENTS = int(os.environ.get("RAG_LOAD_CLIENTS", "10"))
DURATION = float(os.environ.get("RAG_LOAD_SECONDS", "60"))
REBUILD_AT = DURATION / 2
QUESTION_TIMEOUT = 90.0  # one answer, seconds
GRACE = 120.0  # after DURATION, for answers in flight and the rebuild
SHOTS = ROOT / "test-output" / "browser"

NEW_ARTICLE = (
    "Zorblax opens plant in Leeds\n"
    "The robotics firm Zorblax said on Monday it will open a plant in Leeds employing 740 people.\n"
    "Its chief executive, Marta Quillon, said the plant would open in March 2026.\n"
)
CHANGING = "How many people will the Zorblax plant employ?"


def load_questions() -> list[str]:
    """Eval questions that are never read as follow-ups: their answer does not depend on the session's history."""
    rows = [json.loads(x) for x in (ROOT / "eval" / "seeds_qa.jsonl").read_text().splitlines() if x.strip()]
    probe = ["What share of OpenAI does Microsoft hold?"]
    qs = [r["question"] for r in rows if resolve_followup(r["question"], probe) == r["question"]]
    return [CHANGING] + qs


def norm(s: str) -> str:
    return " ".join(s.split())


def visible(answer) -> tuple:
    """What the page shows of an Answer: the answer and each citation's file and highlighted quote;
    for a disagreement, each version's answer and files, then every citation listed under it; for
    an abstention, the files of the related passages."""
    if answer.abstained:
        return ("abstain", tuple(h.file for h in answer.passages))
    if answer.disagreement and answer.disagreements:
        return ("disagreements", tuple((norm(v.answer), tuple(c.file for c in v.citations)) for v in answer.disagreements),
                tuple((c.file, norm(c.quote)) for v in answer.disagreements for c in v.citations))
    return ("answer", norm(answer.answer), tuple((c.file, norm(c.quote)) for c in answer.citations))


READ_LAST = """(sel) => {
    const msgs = document.querySelectorAll(sel);
    const m = msgs[msgs.length - 1];
    const txt = (el) => { if (!el) return null; const c = el.cloneNode(true);
        c.querySelectorAll('.rag-ref').forEach(r => r.remove()); return c.textContent; };
    const card = m.querySelector('[data-testid="rag-answer"] .rag-answer-text');
    const footer = m.querySelector('.rag-footer');
    return {
        server: footer ? parseFloat(footer.textContent) : null,
        answer: txt(card),
        abstained: !!m.querySelector('[data-testid="rag-abstain"]'),
        versions: [...m.querySelectorAll('[data-testid="rag-version"]')].map(v => [
            txt(v.querySelector('.rag-version-answer')),
            [...v.querySelectorAll('.rag-file')].map(e => e.textContent)]),
        cites: [...m.querySelectorAll('[data-testid="rag-cite"]')].map(c => [
            c.getAttribute('data-file'), (c.querySelector('mark.rag-hl') || {}).textContent || null]),
        related: [...m.querySelectorAll('[data-testid="rag-related"] .rag-file')].map(e => e.textContent),
        errors: [...m.querySelectorAll('[data-testid="stAlert"], [data-testid="stException"]')]
            .map(e => e.innerText).filter(t => !/cut to its first|The articles disagree/.test(t)),  // notices, not errors
    };
}"""

WAIT_NEW = """([sel, n]) => {
    const msgs = document.querySelectorAll(sel);
    const last = msgs[msgs.length - 1];
    return (document.querySelectorAll('.rag-footer').length > n && last && last.querySelector('.rag-footer'))
        || document.querySelector('[data-testid="stException"]');
}"""


def from_page(d: dict) -> tuple:
    if d["abstained"]:
        return ("abstain", tuple(d["related"]))
    if d["versions"]:
        return ("disagreements", tuple((norm(a or ""), tuple(files)) for a, files in d["versions"]),
                tuple((f, norm(q or "")) for f, q in d["cites"]))
    return ("answer", norm(d["answer"] or ""), tuple((f, norm(q or "")) for f, q in d["cites"]))


class Clock:
    """Starts when every session has connected; says when a client should stop asking."""

    def __init__(self, n: int):
        self.n, self.ready, self.go = n, 0, asyncio.Event()
        self.t0 = 0.0
        self.rebuild: dict = {}

    def arrive(self) -> None:
        self.ready += 1
        if self.ready == self.n:
            self.t0 = time.monotonic()
            self.go.set()

    async def connected(self) -> None:
        self.arrive()
        await asyncio.wait_for(self.go.wait(), timeout=300)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def keep_asking(self, answered_after_rebuild: bool) -> bool:
        """Until DURATION; past it (up to DURATION + GRACE) only until this client has one answer
        asked after the rebuild finished, so that both index versions are always exercised."""
        t = self.now()
        if t < DURATION:
            return True
        return t < DURATION + GRACE and not answered_after_rebuild and "failed" not in self.rebuild


async def client(cid: int, browser, url: str, questions: list[str], clock: Clock, out: list, errors: list) -> None:
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    dialogs: list[str] = []
    arrived = False
    try:
        page = await context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
        page.set_default_timeout(QUESTION_TIMEOUT * 1000)
        await page.goto(url)
        await page.wait_for_selector(CHAT, timeout=180_000)
        arrived = True
        await clock.connected()
        i = cid * 5
        after = False
        changing_asked = False
        while clock.keep_asking(after):
            if "end" in clock.rebuild and not changing_asked:
                q, changing_asked = CHANGING, True  # first question after the switch: the new article's
            else:
                q = questions[i % len(questions)]
                i += 1
            n = await page.locator(".rag-footer").count()
            await page.locator(CHAT).fill(q)
            sent = clock.now()
            await page.keyboard.press("Enter")
            await page.wait_for_function(WAIT_NEW, arg=[MSG, n], timeout=QUESTION_TIMEOUT * 1000)
            done = clock.now()
            after = after or ("end" in clock.rebuild and sent > clock.rebuild["end"])
            if await page.locator('[data-testid="stException"]').count():
                errors.append(f"client {cid}: exception shown for {q!r}: "
                              f"{await page.locator('[data-testid=stException]').first.inner_text()}")
                break
            await page.wait_for_timeout(150)  # the rerun settles (no stale elements)
            d = await page.evaluate(READ_LAST, MSG)
            if d["errors"]:
                errors.append(f"client {cid}: {q!r}: {d['errors']}")
            out.append({"client": cid, "q": q, "sent": sent, "done": done, "latency": done - sent,
                        "server": d["server"], "seen": from_page(d)})
        if cid == 0:
            SHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SHOTS / "load-client0.png"))
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none hangs the run
        shown = ""
        try:  # what the last message shows (an error turn has no footer to wait for)
            shown = await page.evaluate("(sel) => { const m = document.querySelectorAll(sel); "
                                        "return m.length ? m[m.length - 1].innerText.slice(0, 400) : ''; }", MSG)
        except Exception:  # noqa: BLE001 - the page may be gone
            pass
        errors.append(f"client {cid}: {type(exc).__name__}: {str(exc)[:500]}; last message: {shown!r}")
        if not arrived:
            clock.arrive()  # the others do not wait for a session that could not connect
    finally:
        outside = sorted({u for u in requests if not is_local(u) and "fonts.gstatic.com" not in u})
        if outside:
            errors.append(f"client {cid}: requests left 127.0.0.1: {outside}")
        if dialogs:
            errors.append(f"client {cid}: dialogs opened: {dialogs}")
        await context.close()


def rss_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def test_ten_sessions_with_a_rebuild(tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` (or apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    from rag.config import Settings
    from rag.pipeline import Pipeline

    articles = tmp_path / "articles"
    shutil.copytree(SEEDS, articles)
    index = tmp_path / "index"
    settings = Settings(articles_dir=articles, index_dir=index)
    ref_pipe = Pipeline(settings)
    ref_pipe.build()
    questions = load_questions()  # disagreement cards included: READ_LAST reads their versions
    v1 = ref_pipe.index().version
    ref = {v1: {q: visible(ref_pipe.ask(q)) for q in questions}}
    src = tmp_path / "incoming" / "zorblax.txt"
    src.parent.mkdir()
    src.write_text(NEW_ARTICLE)

    proc, url = start_streamlit(articles, index, tmp_path / "server.log")
    out: list[dict] = []
    errors: list[str] = []
    clock = Clock(CLIENTS)
    rebuild = clock.rebuild

    async def rebuilder() -> None:
        await clock.go.wait()
        await asyncio.sleep(max(0.0, REBUILD_AT - clock.now()))
        rebuild["start"] = clock.now()
        p = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rag.cli", "add", str(src), "--articles", str(articles), "--index", str(index),
            "--json", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(p.communicate(), timeout=DURATION + GRACE)
        except asyncio.TimeoutError:
            p.kill()
            rebuild["failed"] = True
            errors.append("rebuild: rag add did not finish in time")
            return
        rebuild["end"] = clock.now()
        rebuild["rc"] = p.returncode
        if p.returncode != 0:
            rebuild["failed"] = True
            errors.append(f"rebuild: rag add exited {p.returncode}: {stderr.decode()[-1000:]}")
        else:
            rebuild["report"] = json.loads(stdout.decode())

    async def main() -> None:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                # All sessions connect (and the app warms up) before the clock starts.
                tasks = [client(c, browser, url, questions, clock, out, errors) for c in range(CLIENTS)]
                await asyncio.wait_for(asyncio.gather(rebuilder(), *tasks), timeout=DURATION + GRACE + 300)
            except asyncio.TimeoutError:
                errors.append("hard stop: the run did not finish within its time limit")
            finally:
                await browser.close()

    try:
        asyncio.run(main())
        peak_kb = rss_peak_kb(proc.pid)
    finally:
        stop_streamlit(proc)
    log = (tmp_path / "server.log").read_text()
    if "Traceback" in log:
        errors.append(f"server log has a traceback:\n{log[-3000:]}")

    # Single-user reference for the new version, from the index as the rebuild left it.
    v2 = ref_pipe.index().version
    assert v2 != v1, "the rebuild switched the index version"
    ref[v2] = {q: visible(ref_pipe.ask(q)) for q in questions}
    assert ref[v1][CHANGING] != ref[v2][CHANGING] and "740" in ref[v2][CHANGING][1]

    wrong = []
    counts = {"old": 0, "new": 0, "either": 0}
    for r in out:
        old, new = ref[v1][r["q"]], ref[v2][r["q"]]
        if "start" in rebuild and r["done"] < rebuild["start"]:
            ok, k = r["seen"] == old, "old"
        elif "end" in rebuild and r["sent"] > rebuild["end"]:
            ok, k = r["seen"] == new, "new"
        else:
            ok, k = r["seen"] in (old, new), "either"
        counts[k] += 1
        if not ok:
            wrong.append((r, old, new))

    lat = sorted(r["latency"] for r in out)
    p50 = statistics.median(lat) if lat else float("nan")
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
    switched = [r for r in out if r["q"] == CHANGING and r["seen"] == ref[v2][CHANGING]]
    server = sorted(r["server"] for r in out if r["server"] is not None)
    s50 = statistics.median(server) if server else float("nan")
    s95 = server[min(len(server) - 1, int(0.95 * len(server)))] if server else float("nan")
    print(
        f"\nload: {CLIENTS} browser sessions, {DURATION:.0f} s, {len(out)} answers, {len(errors)} errors, "
        f"{len(wrong)} wrong; latency (Enter to answer shown) p50 {p50:.2f} s, p95 {p95:.2f} s, "
        f"max {max(lat, default=float('nan')):.2f} s; pipeline time (Answer.timings_ms) p50 {s50:.2f} s, p95 {s95:.2f} s; "
        f"server peak RSS {peak_kb / 1024:.0f} MB; rebuild {rebuild.get('start', float('nan')):.1f}"
        f"-{rebuild.get('end', float('nan')):.1f} s; answers checked against old/new/either version: {counts}; "
        f"'{CHANGING}' answered from the new article {len(switched)} times; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    assert not errors, "\n".join(errors[:20])
    assert not wrong, f"{len(wrong)} answers differ from the single-user answer, e.g. {wrong[0]}"
    assert len(out) >= CLIENTS, "every session answered"
    assert counts["new"] > 0 and counts["old"] > 0, "answers on both sides of the rebuild"
    assert switched, "the new article's answer was seen after the switch"
