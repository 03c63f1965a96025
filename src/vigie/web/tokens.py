"""Session tokens and CSRF tokens: HMAC-SHA256 over what they claim, with an expiry.

A session token names its account, its expiry and a fingerprint of the account's
password hash: changing the password or removing the account ends every session at
once. The same token serves as the browser's session cookie (HttpOnly, SameSite=Strict)
and as an API bearer token (``POST /api/token``). The signing key is 32 random bytes
kept in ``<state dir>/web/secret.key`` (mode 0600), made on first start.

A form carries a CSRF token bound to its session (or, before login, to a random
cookie): a page of another site cannot read it, so cannot forge the form.

Examples
--------
>>> keys = Keys(b"k" * 32)
>>> token = keys.session("acme", "argon2-hash", now=1000.0, lifetime_s=60)
>>> keys.read_session(token, now=1030.0)
SessionClaim(account='acme', expires=1060, fingerprint='...')
>>> keys.read_session(token, now=1061.0) is None, keys.read_session(token + "x", now=0) is None
(True, True)
>>> keys.check_csrf(keys.csrf("nonce-1"), "nonce-1"), keys.check_csrf("forged", "nonce-1")
(True, False)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import orjson


@dataclass(frozen=True)
class SessionClaim:
    """What a valid session token says."""

    account: str
    expires: int
    fingerprint: str


def fingerprint(password_hash: str) -> str:
    """A short digest of the account's password hash, carried by its sessions."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


class Keys:
    """Signs and checks session and CSRF tokens with one secret key."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the signing key needs at least 32 bytes")
        self._secret = secret

    @classmethod
    def from_file(cls, path: Path) -> Keys:
        """The key in ``path``, made (0600) when the file does not exist yet."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return cls(path.read_bytes())
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        return cls(path.read_bytes())

    def _sign(self, purpose: str, payload: bytes) -> str:
        mac = hmac.new(self._secret, purpose.encode() + b"\x00" + payload, hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def session(self, account: str, password_hash: str, now: float, lifetime_s: float) -> str:
        """A session token for ``account``, valid ``lifetime_s`` seconds from ``now``."""
        claim = {"a": account, "e": int(now + lifetime_s), "f": fingerprint(password_hash)}
        payload = base64.urlsafe_b64encode(orjson.dumps(claim)).decode().rstrip("=")
        return f"{payload}.{self._sign('session', payload.encode())}"

    def read_session(self, token: str, now: float) -> SessionClaim | None:
        """The claim of a genuine, unexpired token; None for anything else."""
        payload, _, signature = token.partition(".")
        if not signature or not hmac.compare_digest(
            signature, self._sign("session", payload.encode())
        ):
            return None
        try:
            claim = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            result = SessionClaim(str(claim["a"]), int(claim["e"]), str(claim["f"]))
        except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
            return None
        return result if result.expires > now else None

    def csrf(self, binding: str) -> str:
        """The CSRF token of a form bound to ``binding`` (a session token or a nonce)."""
        return self._sign("csrf", binding.encode())

    def check_csrf(self, token: str, binding: str) -> bool:
        return bool(binding) and hmac.compare_digest(token, self.csrf(binding))
