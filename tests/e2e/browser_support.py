"""What the real-browser tests share: Debian's Chromium, a `streamlit run` server, asking a question."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from ..conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "test-output" / "browser"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CHAT = '[data-testid="stChatInput"] textarea'
MSG = '[data-testid="stChatMessage"]'
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
MISSING_CHROMIUM = f"{CHROMIUM} is missing: install Debian's Chromium (`make chromium`, or apt-get install -y chromium)"


@contextlib.contextmanager
def chromium():
    """Debian's Chromium through Playwright (``playwright install`` cannot download here)."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(
    articles: Path, index: Path, log_path: Path, env_extra: dict | None = None
) -> tuple[subprocess.Popen, str]:
    """`streamlit run ui/app.py` on 127.0.0.1 (a free port) over the given folders; waits until healthy."""
    port = free_port()
    env = dict(os.environ, RAG_INDEX_DIR=str(index), RAG_ARTICLES_DIR=str(articles), **(env_extra or {}))
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "ui/app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    return proc, url
        except OSError:
            pass
        if time.time() > deadline:
            stop_streamlit(proc)
            raise RuntimeError(f"streamlit not healthy after 120 s:\n{log_path.read_text()}")
        time.sleep(0.3)


def stop_streamlit(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def is_local(url: str) -> bool:
    u = urllib.parse.urlsplit(url)
    return u.scheme in ("data", "blob", "about") or (u.hostname or "") in LOCAL_HOSTS


def ask(page, question: str, timeout_ms: int = 60_000, settle_ms: int = 300) -> float:
    """Type a question, press Enter, wait until its answer is complete; return the seconds."""
    n = page.locator(".rag-footer").count()
    t0 = time.perf_counter()
    page.locator(CHAT).fill(question)
    page.keyboard.press("Enter")
    page.wait_for_function(
        """([sel, n]) => {
            const msgs = document.querySelectorAll(sel);
            const last = msgs[msgs.length - 1];
            return document.querySelectorAll('.rag-footer').length > n && last && last.querySelector('.rag-footer');
        }""",
        arg=[MSG, n],
        timeout=timeout_ms,
    )
    seconds = time.perf_counter() - t0
    page.wait_for_timeout(settle_ms)  # let the rerun settle (stale elements cleared)
    return seconds
