"""The one way Vigie connects to ClickHouse: embedded chDB or a server, same client API.

``settings.clickhouse_dsn`` is ``chdb:///path/to/dir`` by default (an embedded database
under the state directory) or ``http(s)://host:8123`` for a server. chDB is an optional
extra (``vigie[chdb]``): a production image that talks to a server does without it, and
an embedded DSN without it is a :class:`~vigie.errors.MissingDependencyError` naming
the extra.

chDB embeds one ClickHouse server per process, bound to the first path it opens: while a
client is open, opening a *different* ``chdb://`` path in the same process fails
(``EmbeddedServer already initialized with path ...``). Clients on the same path are fine.
So a process (a worker, a pytest session) uses one warehouse directory, and examples here
do not open one.

>>> from pathlib import Path
>>> from vigie.settings import Settings
>>> Settings(state_dir=Path("/srv/vigie")).clickhouse_dsn
'chdb:///srv/vigie/clickhouse'
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import clickhouse_connect

from vigie.errors import MissingDependencyError
from vigie.settings import Settings, redacted

CONNECT_TIMEOUT_S = 5.0
SEND_RECEIVE_TIMEOUT_S = 60.0
"""A server that stops answering mid-insert is an error after this long, not a hang."""
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_CODE = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?([^.(]+)")


def connect(settings: Settings) -> Any:
    """A clickhouse-connect client for the configured warehouse (with timeouts on HTTP)."""
    dsn = settings.clickhouse_dsn
    if dsn.startswith("chdb:"):
        if importlib.util.find_spec("chdb") is None:
            raise MissingDependencyError(
                f"the embedded ClickHouse at {dsn.removeprefix('chdb://')} needs chDB: install "
                "it (pip install 'vigie[chdb]') or set VIGIE_CLICKHOUSE_URL to a server"
            )
        return clickhouse_connect.get_client(dsn=dsn)
    return clickhouse_connect.get_client(
        dsn=dsn,
        connect_timeout=CONNECT_TIMEOUT_S,
        send_receive_timeout=SEND_RECEIVE_TIMEOUT_S,
        query_retries=0,  # the writer retries, with backoff, for as long as it takes
    )


def short_reason(text: str) -> str:
    """The part of a driver's error a person acts on.

    >>> short_reason("...NewConnectionError(... [Errno 111] Connection refused')) executing")
    'Connection refused'
    """
    found = _ERRNO.search(text) or _CODE.search(text)
    if found is None:
        return text.splitlines()[0][:160] if text else "no answer"
    return " ".join(g.strip() for g in found.groups() if not g.isdigit()) or text[:160]


def clickhouse_failure(dsn: str, exc: BaseException) -> str:
    """One line on why the warehouse cannot be opened, and what to do about it."""
    text = str(exc)
    if dsn.startswith("chdb:"):
        path = dsn.removeprefix("chdb://")
        if isinstance(exc, MissingDependencyError):
            return str(exc)
        if "Cannot lock file" in text or "EmbeddedServer" in text:
            return (
                f"the embedded ClickHouse at {path} is held by another process "
                "(chDB admits one per directory: vigie warehouse write, vigie web?): "
                "stop it, or set VIGIE_CLICKHOUSE_URL to a server"
            )
        return f"the embedded ClickHouse at {path} cannot be opened: {short_reason(text)}"
    where = f"ClickHouse at {redacted(dsn)}"
    if "Authentication failed" in text or "Code: 516" in text:
        return f"{where} refused the credentials: check the user and password in the URL"
    return f"{where} does not answer ({short_reason(text)}): start it or set VIGIE_CLICKHOUSE_URL"
