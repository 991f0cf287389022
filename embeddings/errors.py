"""Embeddings-layer exceptions; each names the file or setting involved."""

from __future__ import annotations


class EmbeddingsError(Exception):
    """Base class of every embeddings error."""


class UnknownBackend(EmbeddingsError, ValueError):
    """Backend name not among the valid ones (the message lists them)."""


class ModelLoadError(EmbeddingsError):
    """A model could not be loaded from the configured location."""


class IndexCorrupted(EmbeddingsError):
    """A build file is missing, unreadable or fails its checksum."""


class IndexMismatch(EmbeddingsError):
    """A build does not match the encoder (model id or dimension)."""


class BuildLocked(EmbeddingsError):
    """Another re-index run holds the lock."""


class IndexNotFound(EmbeddingsError):
    """The index directory has no current build (never built, or the pointer is missing)."""


class BuildVerificationFailed(EmbeddingsError):
    """A freshly written build failed its self-check; the previous build stays current."""
