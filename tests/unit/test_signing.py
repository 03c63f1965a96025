"""Our Standard Webhooks signatures, checked by the independent ``standardwebhooks`` package."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from vigie.errors import ConfigurationError
from vigie.sinks.webhooks.signing import new_secret, sign, signed_headers, webhook_id

BODY = b'{"type":"alert.raised","data":{"alert_id":"alert:D-1","risk":0.93}}'


def test_reference_verifier_accepts_our_signature() -> None:
    secret = new_secret()
    headers = signed_headers(secret, webhook_id("alert:D-1", "desk"), int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers)["data"]["alert_id"] == "alert:D-1"


def test_our_signature_equals_the_reference_implementation() -> None:
    secret = new_secret()
    stamp = int(time.time())
    theirs = Webhook(secret).sign("msg_x", datetime.fromtimestamp(stamp, UTC), BODY.decode())
    assert sign(secret, "msg_x", stamp, BODY) == theirs


@pytest.mark.parametrize("tamper", ["body", "id", "secret", "timestamp"])
def test_reference_verifier_rejects_tampering(tamper: str) -> None:
    secret = new_secret()
    stamp = int(time.time())
    headers = signed_headers(secret, "msg_1", stamp, BODY)
    body = BODY
    if tamper == "body":
        body = BODY.replace(b"0.93", b"0.13")
    elif tamper == "id":
        headers["webhook-id"] = "msg_2"
    elif tamper == "secret":
        secret = new_secret()
    else:
        headers["webhook-timestamp"] = str(stamp - 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_webhook_id_is_stable_per_alert_and_subscriber() -> None:
    assert webhook_id("alert:D-1", "desk") == webhook_id("alert:D-1", "desk")
    ids = {webhook_id(a, s) for a in ("alert:D-1", "alert:D-2") for s in ("desk", "audit")}
    assert len(ids) == 4


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_c2hvcnQ=", ""])
def test_bad_secrets_are_configuration_errors(secret: str) -> None:
    with pytest.raises(ConfigurationError):
        sign(secret, "msg_1", 1, BODY)


@pytest.mark.parametrize("kind", ["risk", "random_audit"])
def test_the_payload_says_whether_the_alert_is_a_random_audit(kind: str) -> None:
    import orjson

    from vigie.sinks.examples import example_alert
    from vigie.sinks.webhooks.dispatcher import payload_for

    payload = orjson.loads(payload_for(example_alert("D-1", kind=kind)))  # type: ignore[arg-type]
    assert payload["type"] == "alert.raised"
    assert payload["data"]["kind"] == kind
    assert payload["data"]["score"]["selection"] == ("engine" if kind == "risk" else kind)
