"""Checksums of an index version's files: recorded at publish, checked at load and by ``rag verify``.

An index version travels (copied between machines, kept on shared storage), and a flipped byte
in ``chunks.jsonl`` would otherwise change a quoted answer without anybody noticing. So
``IndexStore.write`` records the size and the SHA-256 of every file of the version in its
manifest (``"checksums"``), and the manifest carries the SHA-256 of its own canonical JSON.

What is checked when:

* **load** (every process that serves the version): the manifest's own checksum, every file's
  size (one ``stat`` each), and the SHA-256 of every file that loading reads whole anyway
  (articles, chunks, FAISS, BM25). Not hashed at load: ``sentences.npy`` (memory-mapped: only
  the rows of the passages read are touched, so hashing it would read gigabytes at a million
  passages for nothing) and ``bm25_tokens.jsonl`` (not read when serving; a build hashes both
  before it reuses anything from them, so a damaged file is never carried into a new version).
* **``rag verify``**: everything.

A manifest that records no checksums is refused as damaged, never taken for a version built
before checksums existed: otherwise renaming one key of the manifest would switch every check off.

SHA-256 because it is the fastest of ``hashlib``'s algorithms on CPUs with SHA extensions
(measured here: sha256 about 2x blake2b).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import REBUILD_HINT, IndexCorruptError

ALGORITHM = "sha256"
MANIFEST = "manifest.json"
# Files a loading process does not read whole: only their size is checked at load.
NOT_HASHED_AT_LOAD = frozenset({"sentences.npy", "bm25_tokens.jsonl"})
_BLOCK = 4 * 2**20

# progress(done_bytes, total_bytes)
Progress = Callable[[int, int], None]


def file_digest(path: Path, progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.new(ALGORITHM)
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(_BLOCK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
            if progress:
                progress(n)
    return h.hexdigest()


def version_files(vdir: Path) -> list[str]:
    """Every file of a version (relative POSIX paths), the manifest excepted, sorted."""
    vdir = Path(vdir)
    return sorted(p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file() and p.name != MANIFEST)


def record(vdir: Path) -> dict:
    """The ``checksums`` entry of a manifest: size and digest of every file of ``vdir``."""
    vdir = Path(vdir)
    files = {}
    for rel in version_files(vdir):
        p = vdir / rel
        files[rel] = {"bytes": p.stat().st_size, ALGORITHM: file_digest(p)}
    return {"algorithm": ALGORITHM, "files": files}


_KEY = "manifest_" + ALGORITHM
_BLANK = "0" * 64


def seal(manifest: dict) -> bytes:
    """The manifest's file bytes, carrying the digest of those very bytes with the digest blanked.

    Hashing the bytes as read (not a re-serialization) keeps the check cheap: the manifest lists
    every article, tens of MB at a million passages, and ``json.dumps`` of it took longer than
    hashing every other file read at load.
    """
    body = {_KEY: _BLANK, **{k: v for k, v in manifest.items() if k != _KEY}}
    raw = json.dumps(body, indent=1).encode("utf-8")
    return raw.replace(_BLANK.encode(), hashlib.new(ALGORITHM, raw).hexdigest().encode(), 1)


def has_checksums(manifest: dict) -> bool:
    return isinstance(manifest.get("checksums"), dict) and _KEY in manifest


def _unsealed(vdir: Path) -> IndexCorruptError:
    # Every version this rag reads was built with checksums; a manifest without them was edited
    # (renaming one key must not switch every check off) or comes from a rag too old to trust.
    return _damaged(vdir, [MANIFEST], "records no checksums (edited, or written by a rag older than checksums)")


def _damaged(vdir: Path, names: list[str], why: str) -> IndexCorruptError:
    listed = ", ".join(names)
    return IndexCorruptError(f"Index version {vdir.name}: {listed} {why}. {REBUILD_HINT}")


def check_manifest(vdir: Path, manifest: dict) -> None:
    want = manifest.get(_KEY)
    if not has_checksums(manifest):
        raise _unsealed(Path(vdir))
    try:
        raw = (Path(vdir) / MANIFEST).read_bytes()
    except OSError:
        raise _damaged(Path(vdir), [MANIFEST], "cannot be read") from None
    blanked = raw.replace(str(want).encode(), _BLANK.encode(), 1)
    if len(str(want)) != len(_BLANK) or hashlib.new(ALGORITHM, blanked).hexdigest() != want:
        raise _damaged(Path(vdir), [MANIFEST], "does not match its checksum (changed since the build)")


def check(
    vdir: Path,
    manifest: dict,
    *,
    hash_files: Iterable[str] | None = None,
    skip_hash: Iterable[str] = (),
    progress: Progress | None = None,
) -> dict:
    """Check ``vdir`` against the checksums in ``manifest``; raise one ``IndexCorruptError`` line.

    Sizes of all recorded files are always checked. Digests: of ``hash_files`` when given, else
    of every file but ``skip_hash``. Returns what was checked (files, bytes hashed, seconds).
    A manifest without checksums is damage too: no edit of the manifest turns the checks off.
    """
    vdir = Path(vdir)
    t0 = time.perf_counter()
    check_manifest(vdir, manifest)
    recorded: dict = manifest["checksums"].get("files", {})
    alg = manifest["checksums"].get("algorithm", ALGORITHM)
    if alg not in hashlib.algorithms_available or not isinstance(recorded, dict) or not recorded:
        raise _unsealed(vdir)
    missing, resized = [], []
    for rel, entry in recorded.items():
        try:
            size = os.stat(vdir / rel).st_size
        except OSError:
            missing.append(rel)
            continue
        if size != entry.get("bytes"):
            resized.append(rel)
    if missing:
        raise _damaged(vdir, missing, "missing")
    if resized:
        raise _damaged(vdir, resized, "changed size since the build")
    skip = set(skip_hash)
    only = None if hash_files is None else set(hash_files)
    todo = [rel for rel in recorded if (rel in only if only is not None else rel not in skip)]
    total = sum(recorded[rel]["bytes"] for rel in todo)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    changed = []
    for rel in todo:
        if alg != ALGORITHM:
            h = hashlib.new(alg)
            h.update((vdir / rel).read_bytes())
            digest = h.hexdigest()
        else:
            digest = file_digest(vdir / rel, step)
        if digest != recorded[rel].get(alg):
            changed.append(rel)
    if changed:
        raise _damaged(vdir, changed, "does not match its checksum (changed since the build)"
                       if len(changed) == 1 else "do not match their checksums (changed since the build)")
    return {"checksums": True, "files": len(recorded), "hashed_files": len(todo), "hashed_bytes": total,
            "seconds": time.perf_counter() - t0}


__all__ = ["ALGORITHM", "NOT_HASHED_AT_LOAD", "check", "check_manifest", "file_digest", "has_checksums", "record", "seal"]
