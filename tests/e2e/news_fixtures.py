"""Test material for web pages, PDFs, exports, feeds and dates (all written here, no real site)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

PAGES = Path(__file__).resolve().parent / "fixtures" / "pages"

# Saved news pages of five layouts: what must stay, what must go, and the metadata.
PAGE_EXPECT = {
    "daily_ledger.html": dict(
        title="Port of Kellbridge posts record container traffic", date="2024-03-14", author="Amelia Fairclough",
        body=["The Port of Kellbridge handled 2.4 million containers last year, the most in its 160-year history",
              "Traffic rose by 11 percent compared with the year before",
              '"We have run out of quay space twice this winter," she said.',
              "The port said no compulsory redundancies were planned before 2027."],
        furniture=["We use cookies", "Accept all", "Most read", "Celebrity chef", "Council tax", "Comments (214)",
                   "dockwatcher", "About time they invested", "Load more comments", "All rights reserved",
                   "Privacy policy", "Share on Facebook", "Subscribe", "Opinion"]),
    "harbour_times.html": dict(
        title="Wind farm approval splits coastal towns", date="2023-11-02", author="Tomasz Brennan",
        body=["Planning inspectors have approved a 48-turbine wind farm eleven miles off the Saltmere coast",
              "enough electricity for 390,000 homes", "said the mayor of Saltmere, Gwen Ashdown.",
              "the 120 maintenance jobs", "Opponents have six weeks to seek a judicial review."],
        furniture=["Your privacy", "I agree", "Weather", "Log in", "Get the morning briefing", "Sign up to our free",
                   "Related stories", "Crab prices", "Trending", "Storm warning", "Advertisement", "Coastal Media Group",
                   "Copy link", "4 min read"]),
    "metro_wire.html": dict(
        title="Tram strike called off after late pay offer", date="2025-01-21", author=None,
        body=["A 48-hour tram strike planned for this week has been called off",
              "a rise of 6.5 percent this year and 4 percent next year, together with a one-off payment of £750.",
              "Services on all five lines will run normally", "refused to raise its earlier offer of 5 percent."],
        furniture=["This website uses cookies", "Find out more", "Latest", "Tags:", "Read more", "Bus fares frozen",
                   "37 comments", "Rider99", "They will be back on strike", "Post comment", "Contact · Privacy"]),
    "valley_gazette.html": dict(
        title="Library reopens with solar roof and longer hours", date="2024-05-17", author=None,
        body=["Millbrook's central library reopened on Friday after an 18-month refurbishment that cost $4.6 million.",
              "212 solar panels", "a new children's wing holds 9,000 books.",
              "more than 600 people came through the doors in the first three hours."],
        furniture=["We value your privacy", "143 partners", "ACCEPT", "Obituaries", "Classifieds", "Share this",
                   "Related", "School board approves", "Trending now", "Road closures", "64°F", "Powered by WordPress"]),
    "tech_digest.html": dict(
        title="Chipmaker Ostrava Semiconductor delays new plant", date="2025-09-08", author="Lena Vogt",
        body=["The company blames weak demand for memory chips and higher energy costs.",
              "Ostrava Semiconductor has postponed the opening of its second fabrication plant by two years, to 2029",
              "produce 40,000 wafers a month.", "prices for memory chips have fallen by a third since January;",
              "a government subsidy of €900 million is still awaiting approval in Brussels.",
              "Shares in the company fell 7 percent in Prague trading."],
        furniture=["Podcasts", "Newsletters", "Cookies help us", "Got it", "Why memory chip prices keep falling",
                   "More from Hardware", "quietest mechanical keyboards", "Join the discussion", "58 comments",
                   "Cookie settings"]),
}

# Two reports of the same fact with different figures, months apart.
MINING_OLD = """---
title: Zorblax Mining reports record output
date: 2024-02-01
source: Copper Daily
---
Zorblax Mining reports record output

Zorblax Mining said on Thursday that its copper output reached 4.2 million tonnes in 2023, a record for the company.
The company's chief executive, Ilse Marwick, said the new Teller pit had lifted production.
"""
MINING_NEW = """---
title: Zorblax Mining revises its output figure
date: 2024-06-15
source: Copper Daily
---
Zorblax Mining revises its output figure

Zorblax Mining said on Monday that its copper output in 2023 was 3.9 million tonnes, lower than it had first reported.
The company blamed a counting error at the Teller pit for the earlier figure.
"""
MINING_QUESTION = "What was Zorblax Mining's copper output in 2023?"


def pdf_bytes(pages: list[list[str]], title: str | None = None, created: str | None = None) -> bytes:
    """A small PDF whose pages hold these lines of text (Helvetica), or no text at all for an
    empty list (a page as a scanner makes it: only an image)."""
    objs: list[bytes] = []
    n_pages = len(pages)
    page_ids = [4 + 2 * i for i in range(n_pages)]
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {n_pages} >>".encode())
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        content_id = page_ids[i] + 1
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                    f"/Contents {content_id} 0 R >>".encode())
        ops = ["BT", "/F1 11 Tf", "72 740 Td", "14 TL"]
        for line in lines:
            esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({esc}) Tj T*")
        ops.append("ET")
        stream = ("\n".join(ops) if lines else "q 100 0 0 100 72 600 cm 0.5 g 0 0 1 1 re f Q").encode("latin-1")
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info = None
    if title or created:
        fields = []
        if title:
            fields.append(f"/Title ({title})")
        if created:
            fields.append(f"/CreationDate (D:{created})")
        objs.append(f"<< {' '.join(fields)} >>".encode())
        info = len(objs)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    trailer = f"<< /Size {len(objs) + 1} /Root 1 0 R" + (f" /Info {info} 0 R" if info else "") + " >>"
    out += f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


@contextmanager
def local_http_server(handler):
    """A threaded HTTP server for ``handler`` on 127.0.0.1 (a free port), started here and shut
    down on exit; ``server.hits`` is a list a handler may append its requests to."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.hits = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
