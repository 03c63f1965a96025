"""Vigie's exceptions, one tree.

::

    VigieError
    ├── ConfigurationError          a setting or mapping that cannot work
    ├── DecodeError                 a record that cannot become a contract object
    │   └── (carries .reason and .errors, goes to the dead-letter topic)
    ├── StackError                  a local service that would not start or answer
    │   └── MissingDependencyError  a program or package to install first
    └── SinkError                   a sink that failed to write
        └── BackpressureError       a sink asking to be retried after `retry_after` s
"""

from __future__ import annotations

from typing import Any


class VigieError(Exception):
    """Base of every error Vigie raises on purpose."""


class ConfigurationError(VigieError):
    """A setting, mapping or argument that cannot work."""


class DecodeError(VigieError):
    """A record that does not satisfy its contract.

    ``reason`` is one short code (``invalid_json``, ``schema``, ``oversized``, ...) and
    ``errors`` the list of precise problems a person can act on.
    """

    def __init__(self, reason: str, errors: list[dict[str, Any]]) -> None:
        self.reason = reason
        self.errors = errors
        summary = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '<record>'}: {e.get('msg', '')}"
            for e in errors
        )
        super().__init__(f"{reason}: {summary}")


class StackError(VigieError):
    """A local service that did not start or does not answer."""


class MissingDependencyError(StackError):
    """A program or optional package that must be installed first."""


class SinkError(VigieError):
    """A sink that could not write."""


class BackpressureError(SinkError):
    """A sink that must slow down; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
