"""Vigie: an event-driven streaming risk engine for customs import declarations."""

from __future__ import annotations

__version__ = "0.1.0"
