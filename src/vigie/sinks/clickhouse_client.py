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
from typing import Any

import clickhouse_connect

from vigie.errors import MissingDependencyError
from vigie.settings import Settings

CONNECT_TIMEOUT_S = 5.0
SEND_RECEIVE_TIMEOUT_S = 60.0
"""A server that stops answering mid-insert is an error after this long, not a hang."""


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
