"""Points in time given on the command line: an ISO 8601 time or a duration ago.

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
>>> since("90m", now).isoformat(), since("2d", now).isoformat()
('2026-03-02T10:30:00+00:00', '2026-02-28T12:00:00+00:00')
>>> since("2026-03-01T08:00", now).isoformat()
'2026-03-01T08:00:00+00:00'
>>> since("soon", now)
Traceback (most recent call last):
...
vigie.errors.ConfigurationError: 'soon' is neither an ISO 8601 time nor a duration ...
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from vigie.errors import ConfigurationError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since(text: str, now: datetime | None = None) -> datetime:
    """The UTC time ``text`` names: ``2026-03-01T08:00Z`` (UTC when no offset), or ``2h`` ago."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(
            f"{text!r} is neither an ISO 8601 time nor a duration (30s, 15m, 2h, 7d)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
