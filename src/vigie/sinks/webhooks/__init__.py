"""Signed alert webhooks: subscribers, Standard Webhooks signing, a persistent outbox and
the dispatcher that retries with backoff."""
