"""The local stack: a real Kafka broker and a real Redis server, started for development.

``vigie stack up`` and the pytest fixtures both go through :mod:`vigie_dev.stack.local`, so
tests exercise the same code as people do.
"""

from __future__ import annotations

from vigie_dev.stack.local import ServiceStatus, down, session, status, up

__all__ = ["ServiceStatus", "down", "session", "status", "up"]
