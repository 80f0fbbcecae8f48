"""The library of articles: the articles folder that builds index. Files are added (checked
first, copied under safe names), removed (by file name or article id), or fetched from a feed;
``Pipeline`` rebuilds the index after each change."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from .config import Settings
from .errors import IngestError
from .ingest import UnusableFile, read_file, record_file, safe_name, same_name_in
from .types import Article, Skipped


def copy_in(settings: Settings, files: Sequence[Path], replace: bool = False) -> tuple[list[Skipped], list[str]]:
    """Copy usable files into the articles folder (safe names only); returns those refused and
    the names of the articles replaced.

    Each file is read and checked first: one that could not become an article (empty, binary,
    undecodable, too large) is reported and never copied, so the folder does not collect files
    that every later build would skip again. A file whose name (NFC-normalised) is taken by
    another file of the folder with other content is refused unless ``replace``.
    """
    folder = Path(settings.articles_dir)
    folder.mkdir(parents=True, exist_ok=True)
    refused: list[Skipped] = []
    replaced: list[str] = []
    for f in files:
        f = Path(f)
        name, problem = safe_name(f.name)
        if problem:
            refused.append(Skipped(file=f.name, reason=problem))
            continue
        if not f.is_file():
            refused.append(Skipped(file=str(f), reason="not found"))
            continue
        try:
            read_file(f, name, settings.max_file_bytes, settings.max_export_bytes)
        except UnusableFile as exc:
            refused.append(Skipped(file=f.name, reason=exc.reason))
            continue
        target = folder / name
        if target.is_symlink():  # copying would write through the link, outside the folder
            refused.append(Skipped(file=f.name, reason=f"refused: {name} in the articles folder is a symbolic link"))
            continue
        if target.exists() and target.samefile(f):
            continue  # already in the articles folder: nothing to copy, the build indexes it
        taken = same_name_in(folder, name)
        if taken is not None and not taken.is_symlink() and taken.is_file():
            if taken.read_bytes() != f.read_bytes():
                if not replace:
                    refused.append(Skipped(file=f.name, reason=f"refused: {taken.name} is already in the articles "
                                           "folder with other content; replacing it needs --replace"))
                    continue
                replaced.append(name)
            if taken.name != name:
                taken.unlink()  # the same name in another Unicode form: one file, not two that look alike
        try:
            shutil.copyfile(f, target)
        except OSError as exc:  # e.g. a read-only file of that name in the folder
            refused.append(Skipped(file=f.name, reason=f"cannot be copied into {folder}/: {exc.strerror or exc}"))
            continue
    return refused, replaced


def delete(settings: Settings, names: Sequence[str], indexed: dict[str, str]) -> None:
    """Delete articles from the folder by file name or article id (``indexed``: the index's file
    name -> article id). A record of a bulk export cannot be removed alone; a name found
    nowhere is an error naming it."""
    folder = Path(settings.articles_dir)
    missing = []
    for name in names:
        if record_file(name) != name:
            raise IngestError(f"{name} is a record of the export {record_file(name)}: remove {record_file(name)} "
                              "(all its records) or edit that file.")
        targets = [f for f, aid in indexed.items() if f == name or aid == name] or [name]
        hit = False
        for t in targets:
            p = folder / Path(t).name
            if p.is_file():
                p.unlink()
                hit = True
        if not hit:
            missing.append(name)
    if missing:
        raise IngestError(f"Not in {folder}/: {', '.join(missing)}")


def poll_feed(settings: Settings, source: str, articles: Sequence[Article], progress=None, files: bool = True):
    """Poll an RSS/Atom feed (URL, or a file when ``files``): new items' pages are fetched and
    written to the articles folder (``rag.feeds``); items whose address or text ``articles``
    already hold are not fetched again. The only network access, made when asked."""
    from .feeds import canonical, poll

    known_urls: dict[str, str] = {}
    known_ids: dict[str, str] = {}
    for a in articles:
        known_ids[a.id] = a.file
        for u in (a.url, a.link):
            if canonical(u):
                known_urls[canonical(u)] = a.file
    return poll(source, Path(settings.articles_dir), known_urls=known_urls, known_ids=known_ids,
                timeout=settings.fetch_timeout, max_bytes=settings.fetch_max_bytes, max_items=settings.feed_max_items,
                allow=settings.fetch_allow_networks, poll_seconds=settings.feed_poll_seconds, files=files,
                progress=progress)


__all__ = ["copy_in", "delete", "poll_feed"]
