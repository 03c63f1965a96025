"""``vigie web`` from the command line: accounts kept hashed in a 0600 file, and a clear,
immediate refusal when another process holds the embedded warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson

VIGIE = [sys.executable, "-c", "from vigie.cli import main; main()"]


def vigie(
    state: Path, *args: str, stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    env["VIGIE_STATE_DIR"] = str(state)
    return subprocess.run([*VIGIE, *args], input=stdin, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_accounts_are_kept_hashed_in_a_private_file(tmp_path: Path) -> None:
    added = vigie(tmp_path, "web", "accounts", "add", "acme", "--role", "company",
                  "--operator", "FR1", "--operator", "FR2", "--password-stdin", "--json",
                  stdin="correct horse battery\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    path = tmp_path / "web" / "accounts.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "correct horse battery" not in text and "$argon2id$" in text
    listed = orjson.loads(vigie(tmp_path, "web", "accounts", "list", "--json").stdout)
    assert listed["accounts"] == {"acme": {"role": "company", "operators": ["FR1", "FR2"]}}
    short = vigie(tmp_path, "web", "accounts", "add", "x1", "--role", "customs",
                  "--password-stdin", stdin="short\n")  # fmt: skip
    assert short.returncode != 0 and "12 characters" in short.stderr
    assert vigie(tmp_path, "web", "accounts", "remove", "acme").returncode == 0
    assert vigie(tmp_path, "web", "accounts", "remove", "acme").returncode != 0
    assert "acme" not in path.read_text()


def test_a_held_warehouse_is_refused_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, clickhouse_connect
            client = clickhouse_connect.get_client(dsn="chdb://{tmp_path / 'clickhouse'}")
            client.command("SELECT 1")
            print("holding", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        refused = vigie(tmp_path, "web", "--port", "1", timeout=60)
    finally:
        holder.communicate("", timeout=60)
    message = " ".join(refused.stderr.split())  # the console wraps long lines
    assert refused.returncode != 0
    assert f"{tmp_path / 'clickhouse'} is held by another process" in message, message
    assert "VIGIE_CLICKHOUSE_URL" in message
