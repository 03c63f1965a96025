"""Standard Webhooks signatures (https://www.standardwebhooks.com), on the stdlib only.

A delivery carries three headers: ``webhook-id`` (stable, so receivers can drop
duplicates), ``webhook-timestamp`` (Unix seconds of the attempt) and ``webhook-signature``
= ``"v1," + base64(HMAC-SHA256(secret bytes, f"{id}.{timestamp}.{body}"))``. The secret is
written ``whsec_`` + base64 of its bytes.

The specification's own example:

>>> sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
...      1614265330, b'{"test": 2432232314}')
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
>>> webhook_id("alert:D-1", "customs-fr")
'msg_5736dbe97a2c9b0c0672fd3062f108b0'
>>> len(secret_bytes(new_secret()))
32
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from vigie.errors import ConfigurationError

SECRET_PREFIX = "whsec_"


def secret_bytes(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret (the prefix is optional)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ConfigurationError(f"webhook secret is not whsec_ + base64: {exc}") from exc
    if len(key) < 16:
        raise ConfigurationError(f"webhook secret has {len(key)} bytes, at least 16 are needed")
    return key


def new_secret(size: int = 32) -> str:
    """A fresh random secret, ``whsec_`` + base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of ``body`` sent as ``msg_id`` at ``timestamp``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery attempt.

    >>> h = signed_headers("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1614265330, b"{}")
    >>> sorted(h)
    ['content-type', 'webhook-id', 'webhook-signature', 'webhook-timestamp']
    """
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def webhook_id(alert_id: str, subscriber: str) -> str:
    """The delivery id: the same for every attempt and replay of one alert to one subscriber."""
    digest = hashlib.sha256(f"{subscriber}\x00{alert_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"
