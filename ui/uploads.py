"""Upload handling for the app, kept free of Streamlit so that it can be tested directly.

``save_uploads`` writes uploaded files to a temporary folder under their own (safe) names;
``add_uploads`` hands them to ``Pipeline.add`` and turns the ``BuildReport`` into messages
about the uploaded files only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rag.ingest import record_file, safe_name, same_name_in


class Upload(Protocol):
    """What is needed of a Streamlit ``UploadedFile``: a name and the bytes."""

    name: str

    def getvalue(self) -> bytes: ...


@dataclass
class FileProblem:
    file: str
    reason: str


@dataclass
class HeldUpload:
    """An upload that would replace an article of the same name: kept until the user confirms."""

    name: str
    data: bytes

    def getvalue(self) -> bytes:
        return self.data


@dataclass
class UploadResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    held: list[HeldUpload] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    n_articles: int = 0
    n_chunks: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.added or self.updated or self.replaced or self.unchanged)


def check_batch(uploads: Sequence[Upload], max_files: int) -> str | None:
    """A message when the batch as a whole is refused (too many files), else None."""
    if len(uploads) > max_files:
        return f"Too many files: {len(uploads)} were selected, at most {max_files} can be added at once."
    return None


def save_uploads(
    uploads: Iterable[Upload], folder: Path, max_bytes: int
) -> tuple[list[Path], list[FileProblem], dict[str, str]]:
    """Write each upload to ``folder`` under its safe name.

    Returns the written paths, the problems (refused names, too-large files, two
    uploads with one name) and the uploads whose name was changed (``../x.txt`` -> ``x.txt``).
    Nothing is ever written outside ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    problems: list[FileProblem] = []
    renamed: dict[str, str] = {}
    seen: set[str] = set()
    for up in uploads:
        original = str(up.name)
        name, problem = safe_name(original)
        if problem:
            problems.append(FileProblem(original, problem))
            continue
        if name.lower() in seen:
            problems.append(FileProblem(original, f"another uploaded file is also named {name}: only the first is used"))
            continue
        data = up.getvalue()
        if len(data) > max_bytes:
            problems.append(FileProblem(original, f"too large: over {max_bytes:,} bytes"))
            continue
        target = (folder / name).resolve()
        if target.parent != folder.resolve():  # safe_name strips directories; belt and braces
            problems.append(FileProblem(original, "refused: the name points outside the upload folder"))
            continue
        target.write_bytes(data)
        seen.add(name.lower())
        paths.append(target)
        if name != original:
            renamed[original] = name
    return paths, problems, renamed


Progress = Callable[[str, int, int], None]


def held_back(uploads: Sequence[Upload], folder: Path) -> list[HeldUpload]:
    """The uploads that would replace an article of the folder holding other content."""
    held = []
    for up in uploads:
        name, problem = safe_name(str(up.name))
        taken = None if problem else same_name_in(folder, name)
        if taken is not None and taken.is_file() and not taken.is_symlink() and taken.read_bytes() != up.getvalue():
            held.append(HeldUpload(str(up.name), up.getvalue()))
    return held


def add_uploads(pipeline, uploads: Sequence[Upload], *, progress: Progress | None = None, wait: float = 30.0,
                replace: bool = False) -> UploadResult:
    """Save the uploads to a temporary folder and add them with ``pipeline.add``.

    Uploads that would replace an article of the same name are not added but returned in
    ``result.held`` (for the app to ask), unless ``replace``; replaced files are in ``result.replaced``.
    Library errors (``RagError``) are returned in ``result.error`` as a message, never raised.
    Only problems with the uploaded files are reported (not other files of the folder).
    """
    from rag.errors import RagError

    s = pipeline.settings
    result = UploadResult()
    refused = check_batch(uploads, s.max_upload_files)
    if refused:
        result.error = refused
        return result
    if not replace:
        result.held = held_back(uploads, Path(s.articles_dir))
        held = {h.name for h in result.held}
        uploads = [up for up in uploads if str(up.name) not in held]
        if not uploads:
            return result
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
        paths, problems, renamed = save_uploads(uploads, Path(tmp), s.max_file_bytes)
        result.problems.extend(problems)
        result.renamed = renamed
        if not paths:
            if not problems:
                result.error = "No files were uploaded."
            return result
        try:
            report = pipeline.add(paths, progress=progress, wait=wait, replace=replace)
        except RagError as exc:
            result.error = str(exc)
            return result
    names = {p.name for p in paths}
    # A bulk export's articles are named "<file>#<record>"; its bad records "<file>:<line>".
    result.added = [f for f in report.added if record_file(f) in names]
    result.replaced = [f for f in report.replaced if f in names]
    result.updated = [f for f in report.updated if record_file(f) in names and record_file(f) not in result.replaced]
    result.unchanged = [f for f in report.reused if record_file(f) in names]
    for sk in report.skipped:
        base = record_file(Path(sk.file).name)
        if base not in names and ":" in base:  # a bad record: "<file>:<line>"
            base = base.rsplit(":", 1)[0]
        if base in names:
            result.problems.append(FileProblem(Path(sk.file).name, sk.reason))
    # A file the library neither indexed nor skipped (should not happen): say so.
    accounted = ({record_file(f) for f in result.added + result.updated + result.replaced + result.unchanged}
                 | {p.file for p in result.problems} | {p.file.rsplit(":", 1)[0] for p in result.problems})
    for n in sorted(names - accounted):
        result.problems.append(FileProblem(n, "not indexed (no reason given by the build)"))
    result.warnings = [w for w in report.warnings if any(n in w for n in names)]
    result.n_articles = report.n_articles
    result.n_chunks = report.n_chunks
    result.seconds = report.seconds.get("total", 0.0)
    return result
