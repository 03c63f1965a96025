"""The demo's last step: `vigie web` over the run's warehouse, with three demo accounts.

The warehouse writer has been drained and stopped. chDB admits one process per
directory, so ``vigie web`` serves a copy of the embedded warehouse (``<run dir>/web/
clickhouse``, :func:`web_settings`): the run's own warehouse stays free for ``vigie
warehouse summary --run <id>`` while the web app runs. It runs detached, in its
own session, and outlives the demo: its process id is kept in
``<run dir>/web/web.pid`` and the next demo stops it (that id only) before removing the
run. The accounts are made through the app itself: an adviser (customs staff) first,
whose token finds, through ``GET /api/operators``, two operators that both import and
export; each gets a company account. Passwords are drawn at random for each run,
printed at the end and kept in ``<run dir>/web/demo-accounts.toml`` (mode 0600).

>>> pick_companies([["FR1", 5, 0], ["FR2", 9, 3], ["FR3", 4, 2], ["FR4", 1, 1]])
['FR2', 'FR3']
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from vigie.settings import Settings
from vigie.web.accounts import AccountStore
from vigie_dev.demo.processes import DemoError, child_env, tail, vigie_command
from vigie_dev.testing import free_port

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0


def pid_file(run_dir: Path) -> Path:
    return run_dir / "web" / "web.pid"


def stop_previous(run_dir: Path) -> None:
    """Stop the `vigie web` a previous demo run left in ``run_dir``, by its recorded id."""
    path = pid_file(run_dir)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if b"web" not in command or not any(b"vigie" in part for part in command):
        return  # that id is another process now
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    log.info("stopped the previous demo's vigie web (pid %d)", pid)


def port_for(settings: Settings) -> int:
    """The configured web port when free, else any free port."""
    with socket.socket() as sock:
        try:
            sock.bind((settings.web_host, settings.web_port))
        except OSError:
            return free_port()
    return settings.web_port


def web_settings(settings: Settings) -> Settings:
    """The web app's settings: an embedded warehouse is copied for it, a server shared."""
    dsn = settings.clickhouse_dsn
    if not dsn.startswith("chdb:"):
        return settings
    copy = settings.state_dir.resolve() / "web" / "clickhouse"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(Path(dsn.removeprefix("chdb://")), copy, symlinks=True)  # relative links
    return settings.model_copy(update={"clickhouse_url": f"chdb://{copy}"})


def start_web(settings: Settings) -> dict[str, Any]:
    """Start `vigie web` for the run, make the demo accounts; the address and accounts."""
    run_dir = settings.state_dir
    web_dir = run_dir / "web"
    web_dir.mkdir(parents=True, exist_ok=True)
    store = AccountStore(settings.accounts_path)
    passwords = {"adviser": secrets.token_urlsafe(12)}
    store.add("adviser", "customs", passwords["adviser"])
    port = port_for(settings)
    url = f"http://{settings.web_host}:{port}"
    log_path = run_dir / "logs" / "web.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [*vigie_command(), "web", "--port", str(port)],
            env=child_env(web_settings(settings), os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file(run_dir).write_text(f"{proc.pid}\n")
    token = _wait_and_login(url, proc, log_path, passwords["adviser"])
    companies = pick_companies(_operators(url, token))
    accounts = {"adviser": {"role": "customs", "password": passwords["adviser"]}}
    for name, operator in zip(("company-a", "company-b"), companies, strict=False):
        passwords[name] = secrets.token_urlsafe(12)
        store.add(name, "company", passwords[name], (operator,))
        accounts[name] = {"role": "company", "operator": operator, "password": passwords[name]}
    _keep(web_dir / "demo-accounts.toml", accounts)
    return {"url": url, "pid": proc.pid, "log": str(log_path), "accounts": accounts}


def pick_companies(rows: list[list[Any]]) -> list[str]:
    """The two most active operators that both import and export (rows: operator,
    imports, exports, ...; most active first)."""
    both = [row[0] for row in rows if row[1] > 0 and row[2] > 0]
    return both[:2]


def _wait_and_login(url: str, proc: subprocess.Popen[bytes], log: Path, password: str) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    body = {"username": "adviser", "password": password}
    while True:
        if proc.poll() is not None:
            raise DemoError(f"vigie web exited with status {proc.returncode}:\n{tail(log)}")
        try:
            status, answer = _http(f"{url}/api/token", body=body)
        except OSError:
            if time.monotonic() > deadline:
                raise DemoError(f"vigie web did not answer on {url}:\n{tail(log)}") from None
            time.sleep(0.3)
            continue
        if status != 200:
            raise DemoError(f"vigie web refused the demo adviser: {answer!r}")
        token: str = answer["token"]
        return token


def _operators(url: str, token: str) -> list[list[Any]]:
    query = urllib.parse.urlencode({"page_size": 200})
    status, answer = _http(f"{url}/api/operators?{query}", token=token, timeout=60)
    if status != 200:
        raise DemoError(f"vigie web: operator search failed: {answer!r}")
    rows: list[list[Any]] = answer["rows"]
    return rows


def _http(
    url: str, *, body: Any = None, token: str | None = None, timeout: float = 10
) -> tuple[int, Any]:
    """One request to the web app's JSON API: the status and the decoded answer."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _keep(path: Path, accounts: dict[str, dict[str, str]]) -> None:
    lines = ["# The demo's web accounts (this run only)."]
    for name, entry in accounts.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {render_value(value)}" for key, value in entry.items())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def render_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["pick_companies", "start_web", "stop_previous", "web_settings"]
