"""Reader versions: readers trained on the chat's marks (``rag train``), kept beside the shipped one.

Layout of the ``readers_dir`` setting (a user folder, never the repository)::

    <readers_dir>/
      CURRENT              name of the version in use, replaced atomically; absent or "shipped": the
                           shipped reader (the ``reader_dir`` setting, rag/models/reader)
      versions/<name>/     reader.onnx, tokenizer, config.json, training.json, calibration.json,
                           card.json and README.md (the model card: counts, command, figures)
      runs/<name>.json     every training run's record, kept or refused, with the reason
      .train-<name>/       a run in progress; a killed run's folder is removed by the next run
      .removed-<name>/     a version being removed (``rag reader remove``); left by a killed removal,
                           removed by the next run
      train.lock           one training run at a time (its holder in train.lock.json)
      train-status.json    the running (or last) run's stage and progress, for the chat's button

Like index versions (``rag.index``), a version is written whole under a temporary name, moved
into ``versions/`` and only then made current by replacing ``CURRENT``: a reader that reads
``CURRENT`` sees the old version or the new one, never half of one. A version is used only while
the shipped reader it was trained from is unchanged (its ``reader.onnx`` SHA-256 is in the card):
a new shipped reader is not silently shadowed by a version trained from the old one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import RagError, TrainLockedError
from .span_model import ONNX_FILE, int8_copy_path

SHIPPED = "shipped"
CARD = "card.json"

_sha_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, cached per (path, size, mtime) for this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


@dataclass(frozen=True)
class ActiveReader:
    """The reader in use: its name ("shipped" or a version), its folder, and why a version named
    by ``CURRENT`` is not used (None when it is)."""

    name: str
    path: Path
    note: str | None = None


def new_version_name() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(3).hex()


class ReaderStore:
    def __init__(self, root: Path | None, shipped: Path):
        self.root = Path(root) if root is not None else None
        self.shipped = Path(shipped)

    # -- reading ----------------------------------------------------------------------
    @property
    def current_file(self) -> Path | None:
        return self.root / "CURRENT" if self.root is not None else None

    def current_name(self) -> str:
        """The name in ``CURRENT`` (cheap: read on every question to notice a switch)."""
        if self.root is None:
            return SHIPPED
        try:
            return self.current_file.read_text().strip() or SHIPPED
        except (FileNotFoundError, NotADirectoryError):
            return SHIPPED

    def version_dir(self, name: str) -> Path:
        return self.root / "versions" / name

    def card(self, name: str) -> dict:
        if name == SHIPPED or self.root is None:
            return {"name": SHIPPED, "path": str(self.shipped)}
        try:
            return json.loads((self.version_dir(name) / CARD).read_text())
        except (OSError, ValueError):
            return {}

    def active(self, name: str | None = None) -> ActiveReader:
        """The reader to serve for ``name`` (default: ``CURRENT``)."""
        name = name or self.current_name()
        if name == SHIPPED:
            return ActiveReader(SHIPPED, self.shipped)
        vdir = self.version_dir(name)
        if not (vdir / ONNX_FILE).is_file():
            return ActiveReader(SHIPPED, self.shipped, f"reader version {name} is missing from {vdir.parent}: "
                                "using the shipped reader")
        root = self.card(name).get("shipped_sha256")
        try:
            shipped_sha = file_sha256(self.shipped / ONNX_FILE)
        except OSError:
            shipped_sha = None
        if root and shipped_sha and root != shipped_sha:
            return ActiveReader(SHIPPED, self.shipped, f"reader version {name} was trained from another shipped "
                                "reader than the one installed now: using the shipped reader (train again)")
        return ActiveReader(name, vdir)

    def versions(self) -> list[dict]:
        """Every version's card, oldest first."""
        if self.root is None or not (self.root / "versions").is_dir():
            return []
        return [{"name": p.name, **self.card(p.name)} for p in sorted((self.root / "versions").iterdir())
                if p.is_dir()]

    # -- switching --------------------------------------------------------------------
    def _need_root(self) -> Path:
        if self.root is None:
            raise RagError("No readers folder is set (setting readers_dir / env RAG_READERS_DIR): trained readers "
                           "cannot be kept.")
        return self.root

    def switch(self, name: str) -> None:
        """Make ``name`` (a version, or "shipped") the reader in use, in one atomic step."""
        root = self._need_root()
        if name != SHIPPED and not (self.version_dir(name) / ONNX_FILE).is_file():
            raise RagError(f"No reader version {name} in {root / 'versions'}.")
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".CURRENT.{os.getpid()}.tmp"
        tmp.write_text(name + "\n")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, root / "CURRENT")

    def rollback(self) -> tuple[str, str]:
        """Go back to the reader the one in use was trained from; returns (from, to)."""
        self._need_root()
        current = self.current_name()
        if current == SHIPPED or not self.version_dir(current).is_dir():
            raise RagError("The shipped reader is in use: there is no earlier reader to roll back to.")
        base = self.card(current).get("base") or SHIPPED
        if base != SHIPPED and not (self.version_dir(base) / ONNX_FILE).is_file():
            base = SHIPPED
        self.switch(base)
        return current, base

    def publish(self, built: Path, name: str, expected_current: str) -> None:
        """Move a finished version folder into ``versions/`` and make it current, unless the reader
        in use changed meanwhile (a rollback during training): then nothing is switched."""
        root = self._need_root()
        if self.current_name() != expected_current:
            raise RagError(f"The reader in use changed during training (now {self.current_name()}, was "
                           f"{expected_current}): the new reader was not switched in. Run rag train again.")
        (root / "versions").mkdir(parents=True, exist_ok=True)
        os.replace(built, self.version_dir(name))
        self.switch(name)

    def check_removable(self, name: str) -> Path:
        """Raise the reason ``name`` cannot be removed (``remove`` checks again under the lock)."""
        root = self._need_root()
        if name == SHIPPED:
            raise RagError("The shipped reader cannot be removed: it is the reader a fresh install uses.")
        if not name or "/" in name or name.startswith(".") or not self.version_dir(name).is_dir():
            raise RagError(f"No reader version {name} in {root / 'versions'} (rag reader list names them).")
        if self.current_name() == name:
            raise RagError(f"Reader version {name} is in use: roll back (rag reader rollback) or switch first.")
        return root

    def remove(self, name: str, cache_dir: Path | None = None) -> dict:
        """Delete version ``name`` and its cached int8 copy (in ``cache_dir``; kept while another
        version has the same weights). Never the shipped reader or the version in use, and not
        while a training run holds the lock (it may be continuing that version). Versions trained
        from it roll back to the shipped reader afterwards. Returns the name, the bytes freed and
        those versions."""
        root = self.check_removable(name)
        vdir = self.version_dir(name)
        with self.lock():
            self.check_removable(name)  # again, under the lock
            onnx = vdir / ONNX_FILE
            sha = file_sha256(onnx) if onnx.is_file() else None
            copy = int8_copy_path(onnx, cache_dir) if sha and cache_dir is not None else None
            trash = root / f".removed-{name}"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(vdir, trash)  # gone from versions/ in one step: never half a version
            if self.current_name() == name:  # switched to in the meantime (a switch takes no lock)
                os.replace(trash, vdir)
                self.check_removable(name)
            freed = sum(p.stat().st_size for p in trash.rglob("*") if p.is_file())
            shutil.rmtree(trash)
            others = [self.shipped / ONNX_FILE] + [self.version_dir(v["name"]) / ONNX_FILE for v in self.versions()]
            if copy is not None and copy.is_file() and not any(p.is_file() and file_sha256(p) == sha for p in others):
                freed += copy.stat().st_size
                copy.unlink()
        children = [v["name"] for v in self.versions() if v.get("base") == name]
        return {"name": name, "freed_bytes": freed, "orphans": children}

    # -- runs -------------------------------------------------------------------------
    def lock(self) -> "TrainLock":
        return TrainLock(self._need_root())

    def clean_leftovers(self) -> list[str]:
        """Folders of killed runs (call under the lock)."""
        removed = []
        if self.root is not None and self.root.is_dir():
            for p in [*self.root.glob(".train-*"), *self.root.glob(".removed-*")]:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
        return removed

    def write_run(self, name: str, record: dict) -> Path:
        runs = self._need_root() / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        path = runs / f"{name}.json"
        tmp = runs / f".{name}.tmp"
        tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        return path

    @property
    def status_file(self) -> Path:
        return self._need_root() / "train-status.json"

    def write_status(self, status: dict) -> None:
        root = self._need_root()
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".train-status.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(status, ensure_ascii=False))
        os.replace(tmp, self.status_file)

    def read_status(self) -> dict | None:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError, RagError):
            return None

    def running(self) -> bool:
        """True while some process holds the training lock."""
        if self.root is None or not self.root.is_dir():
            return False
        try:
            with TrainLock(self.root, probe=True):
                return False
        except TrainLockedError:
            return True


class TrainLock:
    """One ``rag train`` per readers folder; the holder's pid and start time beside the lock."""

    def __init__(self, root: Path, probe: bool = False):
        from filelock import FileLock

        self.probe = probe  # only asking whether it is free: the holder's file is left alone
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.info_file = self.root / "train.lock.json"
        self._lock = FileLock(str(self.root / "train.lock"), thread_local=False)

    def holder(self) -> str:
        try:
            info = json.loads(self.info_file.read_text())
            return f"pid {info['pid']}, started {info['started']}"
        except (OSError, ValueError, KeyError):
            return "another process"

    def __enter__(self) -> "TrainLock":
        from filelock import Timeout

        try:
            # a run waits a moment: the chat's "is one running?" probe holds the lock for an instant
            self._lock.acquire(timeout=0.05 if self.probe else 1.0)
        except Timeout:
            raise TrainLockedError(f"Another rag train is running ({self.holder()}): wait for it to finish.") from None
        if self.probe:
            return self
        self.info_file.write_text(json.dumps({"pid": os.getpid(),
                                              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
        return self

    def __exit__(self, *exc) -> None:
        try:
            if not self.probe:
                self.info_file.unlink(missing_ok=True)
        finally:
            self._lock.release()
