"""Sinks: consumers of the output topics (warehouse, Redis alert feed, webhooks)."""
