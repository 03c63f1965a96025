"""The web app's accounts: who may log in, with which role, over which operators.

Accounts live in one TOML file (``<state dir>/web/accounts.toml`` by default), written
with mode 0600 by ``vigie web accounts add/remove``. A password is stored only as its
Argon2id hash (argon2-cffi, RFC 9106 low-memory parameters); nothing can read it back.

Two roles:

- ``customs``: customs staff (advisers, managers) read any operator and the Pilote
  performance indicators;
- ``company``: a company reads the flows of its own identifiers (EORI numbers) and
  nothing else.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> store = AccountStore(Path(tempfile.mkdtemp()) / "accounts.toml")
>>> _ = store.add("acme", "company", "a long passphrase", operators=("FR123",))
>>> oct(store.path.stat().st_mode & 0o777)
'0o600'
>>> store.get("acme").operators, store.verify("acme", "a long passphrase") is not None
(('FR123',), True)
>>> store.verify("acme", "wrong") is None, store.verify("nobody", "x") is None
(True, True)
"""

from __future__ import annotations

import re
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from vigie.errors import ConfigurationError
from vigie.secretfiles import write_secret

Role = Literal["customs", "company"]
ROLES: tuple[Role, ...] = ("customs", "company")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
OPERATOR = re.compile(r"^[\w.:/-]{1,64}$")
MIN_PASSWORD = 12

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("a password no account has")
"""Verified against when the account does not exist, so both answers take as long."""


@dataclass(frozen=True)
class Account:
    """One account: its name, role, operators (companies only) and password hash."""

    name: str
    role: Role
    operators: tuple[str, ...]
    password_hash: str

    @property
    def is_customs(self) -> bool:
        return self.role == "customs"


class AccountStore:
    """The accounts file, re-read when it changes (the CLI edits it while the app runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._accounts: dict[str, Account] = {}

    def all(self) -> dict[str, Account]:
        """Every account, by name (empty when the file does not exist)."""
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._accounts = None, {}
                return {}
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._accounts = _parse(self.path)
                self._stamp = stamp
            return dict(self._accounts)

    def get(self, name: str) -> Account | None:
        return self.all().get(name)

    def verify(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is its password, else None (same work either way)."""
        account = self.get(name)
        try:
            _HASHER.verify(account.password_hash if account else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return account

    def add(self, name: str, role: str, password: str, operators: tuple[str, ...] = ()) -> Account:
        """Create or replace an account; the file is rewritten with mode 0600."""
        _check_name(name)
        account = Account(name, _role(role), _operators(role, operators), _hash(password))
        accounts = self.all()
        accounts[name] = account
        self._write(accounts)
        return account

    def remove(self, name: str) -> bool:
        """Delete an account; whether it existed."""
        accounts = self.all()
        if accounts.pop(name, None) is None:
            return False
        self._write(accounts)
        return True

    def _write(self, accounts: dict[str, Account]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_secret(self.path, render(accounts))


def render(accounts: dict[str, Account]) -> str:
    """The TOML text of ``accounts`` (strings quoted as JSON, which TOML reads alike)."""
    lines = ["# Vigie web accounts: written by `vigie web accounts`; passwords are Argon2 hashes."]
    for account in sorted(accounts.values(), key=lambda a: a.name):
        lines += [
            "",
            f"[accounts.{_quote(account.name)}]",
            f"role = {_quote(account.role)}",
            f"operators = [{', '.join(_quote(o) for o in account.operators)}]",
            f"password_hash = {_quote(account.password_hash)}",
        ]
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return orjson.dumps(value).decode("utf-8")


def _parse(path: Path) -> dict[str, Account]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"accounts file {path}: {exc}") from exc
    accounts = {}
    for name, entry in data.get("accounts", {}).items():
        try:
            accounts[name] = Account(
                name=name,
                role=_role(entry["role"]),
                operators=_operators(entry["role"], tuple(entry.get("operators", ()))),
                password_hash=str(entry["password_hash"]),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"accounts file {path}: account {name!r}: {exc}") from exc
    return accounts


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise ConfigurationError(
            f"account name {name!r}: 2 to 64 lower-case letters, digits, '.', '_' or '-'"
        )


def _role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise ConfigurationError(f"role {role!r}: expected one of {', '.join(ROLES)}")


def _operators(role: str, operators: tuple[str, ...]) -> tuple[str, ...]:
    if role == "customs":
        if operators:
            raise ConfigurationError("a customs account reads every operator: give none")
        return ()
    if not operators:
        raise ConfigurationError("a company account needs at least one operator identifier")
    for operator in operators:
        if not isinstance(operator, str) or not OPERATOR.match(operator):
            raise ConfigurationError(f"operator identifier {operator!r} is malformed")
    return tuple(dict.fromkeys(operators))


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ConfigurationError(f"a password needs at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)
