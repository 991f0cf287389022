"""Matcher-layer exceptions. The service maps them to HTTP codes (service/errors.py)."""

from __future__ import annotations


class MatcherError(Exception):
    """Base class of every matcher error."""


class IndexNotReady(MatcherError):
    """No index build is available to retrieve from."""


class UnknownEntity(MatcherError):
    """An id given to the matcher is not in the data it was built with."""


class NoFeasibleAssignment(MatcherError):
    """A solver could not produce any assignment at all (a partial one is not an error)."""


class InvalidParameter(MatcherError, ValueError):
    """A parameter is outside its declared constraints."""
