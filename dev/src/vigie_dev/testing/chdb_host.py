"""A vigie command run in a process that also answers for its embedded warehouse.

chDB admits one process per directory: while ``vigie warehouse write`` holds the embedded
warehouse, a test can neither read it nor make ClickHouse refuse its inserts. So
``python -m vigie_dev.testing.chdb_host --port P -- warehouse write ...`` migrates the
warehouse, then runs the ``vigie`` command unchanged in this process, beside a small
HTTP server on 127.0.0.1:P with its own client of the same directory:

* ``POST /query``: the SQL of the body; the rows as JSON.
* ``POST /refuse``: every table refuses inserts with ClickHouse's own backpressure,
  "Too many parts" (``max_parts_in_total = 1``), as a server whose disk fills does.
* ``POST /accept``: the tables take inserts again.

With ``--keep-raw-rows`` the tables never merge (``max_bytes_to_merge_at_max_space_in_pool
= 1``, kept in the tables' metadata, so across restarts too): the raw rows stay as
inserted, and a duplicate inserted is a duplicate counted, not merged away before a test
looks. :class:`HostedWarehouse` starts and drives such a process.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from vigie.errors import VigieError
from vigie.settings import Settings, get_settings
from vigie.sinks.warehouse.rows import TABLES

log = logging.getLogger(__name__)

REFUSE = "ALTER TABLE {table} MODIFY SETTING max_parts_in_total = 1"
ACCEPT = "ALTER TABLE {table} RESET SETTING max_parts_in_total"
KEEP_RAW_ROWS = "ALTER TABLE {table} MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 1"


def control_server(client: Any, port: int) -> ThreadingHTTPServer:
    """Serve ``/query``, ``/refuse`` and ``/accept`` on 127.0.0.1:``port`` (a daemon thread)."""
    lock = threading.Lock()  # one statement at a time on the control client

    statements = {"/refuse": REFUSE, "/accept": ACCEPT}

    def run(body: bytes, path: str) -> Any:
        with lock:
            if path == "/query":
                return [list(row) for row in client.query(body.decode()).result_rows]
            for table in TABLES:
                client.command(statements[path].format(table=table))
            return {"tables": list(TABLES)}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("control: " + format, *args)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/query" and self.path not in statements:
                status, answer = 404, b'{"error": "not found"}'
            else:
                try:
                    status, answer = 200, orjson.dumps(run(body, self.path), default=str)
                except Exception as exc:  # the driver's errors: the test reads them
                    status, answer = 500, orjson.dumps({"error": str(exc)})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="chdb-host", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    """``--port P [--keep-raw-rows] -- <vigie arguments>``: host the command."""
    from vigie.cli import main as vigie_main
    from vigie.sinks.clickhouse_client import connect
    from vigie.sinks.warehouse.migrations import migrate

    parser = argparse.ArgumentParser(prog="chdb_host")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keep-raw-rows", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    client = connect(get_settings())
    migrate(client)
    if args.keep_raw_rows:
        for table in TABLES:
            client.command(KEEP_RAW_ROWS.format(table=table))
    control_server(client, args.port)
    sys.argv = ["vigie", *command]
    vigie_main()


class HostedWarehouse:
    """A hosted ``vigie`` command (the warehouse writer) and the client of its warehouse.

    Parameters
    ----------
    env
        The child's environment (``VIGIE_*`` settings).
    log_path
        Where its output goes (appended across restarts).
    args
        The ``vigie`` arguments (``warehouse write --group ...``).
    keep_raw_rows
        Tables that never merge (see the module's docstring).
    """

    def __init__(
        self, env: dict[str, str], log_path: Path, args: list[str], *, keep_raw_rows: bool = True
    ) -> None:
        from vigie_dev.testing import free_port

        self.env, self.log_path, self.args = env, log_path, args
        self.keep_raw_rows = keep_raw_rows
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HostedWarehouse:
        flags = ["--keep-raw-rows"] if self.keep_raw_rows else []
        argv = [sys.executable, "-m", "vigie_dev.testing.chdb_host", "--port", str(self.port)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [*argv, *flags, "--", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def post(self, path: str, body: bytes = b"", timeout: float = 120.0) -> Any:
        """POST to the control server; its JSON answer (raises on an error answer)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", body)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise VigieError(f"warehouse host {path}: {exc.code} {exc.read()[:500]!r}") from exc

    def answers(self) -> bool:
        """Whether the control server answers (the warehouse is migrated and open)."""
        with suppress(OSError, VigieError):
            self.post("/query", b"SELECT 1", timeout=5)
            return True
        return False

    def query(self, sql: str) -> list[list[Any]]:
        rows: list[list[Any]] = self.post("/query", sql.encode())
        return rows

    def scalar(self, sql: str) -> Any:
        return self.query(sql)[0][0]

    def refuse(self) -> None:
        self.post("/refuse")

    def accept(self) -> None:
        self.post("/accept")

    def kill(self) -> None:
        """SIGKILL: no flush, no commit, no goodbye."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then wait (SIGKILL after ``timeout``); the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def hosted_env(settings: Settings) -> dict[str, str]:
    """The environment of a hosted command for ``settings`` (every setting as VIGIE_*)."""
    from vigie_dev.demo.processes import child_env

    return child_env(settings, os.environ)


if __name__ == "__main__":
    main()
