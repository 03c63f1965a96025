"""``vigie web``: Vision 360 of economic operators and Pilote performance, in a browser.

A FastAPI application (:mod:`vigie.web.app`) reading ClickHouse through the indicators
of :mod:`vigie.indicators`, the same SQL as the Grafana dashboards. Customs staff read
any operator and the management indicators; a company reads its own identifiers only,
enforced on the server in every query (:mod:`vigie.web.access`); every request is
written to the ``web_audit`` table (:mod:`vigie.web.audit`). Accounts are kept hashed
(:mod:`vigie.web.accounts`), sessions and tokens are signed and expire
(:mod:`vigie.web.tokens`). See ``docs/web.md``.
"""
