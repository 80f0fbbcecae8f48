"""Errors a user can act on. The CLI and the app turn these into one clear line each."""

from __future__ import annotations

REBUILD_HINT = "Rebuild it with: rag build --full"


class RagError(Exception):
    """Base class: the message is meant for the user, and says what to do."""


class ConfigError(RagError):
    """A setting has a value that cannot work (names the setting)."""


class ModelNotFoundError(ConfigError):
    """The embedding model named by the ``model_name`` setting is not available offline."""


class IngestError(RagError):
    """An articles folder cannot be read or holds no usable article."""


class IndexMissingError(RagError):
    """No index has been built at the configured path."""


class IndexIncompatibleError(RagError):
    """The index on disk was built with another model, chunking or format version."""


class IndexCorruptError(RagError):
    """The index on disk cannot be read."""


class BuildLockedError(RagError):
    """Another build holds the index lock."""


class TrainError(RagError):
    """A reader cannot be trained on the marks (too few, none usable, data missing) or kept."""


class TrainLockedError(TrainError):
    """Another rag train holds the readers folder's lock."""
