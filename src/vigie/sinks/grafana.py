"""Publishing Vigie's dashboards and ClickHouse datasource to a Grafana, over its HTTP API.

The dashboards are built from :mod:`vigie.indicators` (the JSON files of
``docker/grafana/dashboards/``, which the compose stack provisions, are the same, and a
test keeps them so), or read from a folder of JSON files; the datasource is the official
ClickHouse plugin (``grafana-clickhouse-datasource``) pointing at the warehouse server.
The operations dashboard reads Prometheus (:func:`prometheus_datasource`). Publishing is
idempotent: the datasource is created or updated by uid, the folder created once, and each
dashboard saved with ``overwrite``.

Examples
--------
>>> ds = datasource("http://clickhouse:8123")
>>> ds["type"], ds["uid"], ds["jsonData"]["host"], ds["jsonData"]["port"]
('grafana-clickhouse-datasource', 'vigie-clickhouse', 'clickhouse', 8123)
>>> sorted(d["uid"] for d in load_dashboards(dashboards_dir()))
['vigie-atypie', 'vigie-management', 'vigie-minoration', 'vigie-vision360']
>>> prometheus_datasource("http://prometheus:9090")["uid"]
'vigie-prometheus'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

from vigie.errors import ConfigurationError, SinkError

log = logging.getLogger(__name__)

PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE_UID = "vigie-clickhouse"
PROMETHEUS_UID = "vigie-prometheus"
FOLDER_UID = "vigie"
FOLDER_TITLE = "Vigie"
_DASHBOARDS = Path("docker") / "grafana" / "dashboards"


@dataclass
class PushReport:
    """What was published: the datasource's fate and each dashboard's uid, version, URL."""

    datasource: str = ""
    folder: str = ""
    dashboards: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def datasource(
    clickhouse_url: str,
    database: str = "default",
    username: str = "default",
    password: str | None = None,
) -> dict[str, Any]:
    """The ClickHouse plugin's datasource for a server URL (``http(s)://host:port``)."""
    parsed = urlparse(clickhouse_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(
            f"Grafana needs a ClickHouse server URL (http(s)://host:8123), got {clickhouse_url!r}"
        )
    secure = parsed.scheme == "https"
    source: dict[str, Any] = {
        "uid": DATASOURCE_UID,
        "name": "Vigie ClickHouse",
        "type": PLUGIN,
        "access": "proxy",
        "isDefault": True,
        "jsonData": {
            "host": parsed.hostname,
            "port": parsed.port or (8443 if secure else 8123),
            "protocol": "http",
            "secure": secure,
            "defaultDatabase": database,
            "username": parsed.username or username,
        },
    }
    secret = parsed.password or password
    if secret:
        source["secureJsonData"] = {"password": secret}
    return source


def prometheus_datasource(url: str) -> dict[str, Any]:
    """The Prometheus datasource of the operations dashboard (``http(s)://host:9090``)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(f"Prometheus URL must be http(s)://host:port, got {url!r}")
    return {
        "uid": PROMETHEUS_UID,
        "name": "Vigie Prometheus",
        "type": "prometheus",
        "access": "proxy",
        "isDefault": False,
        "url": url,
    }


def dashboards_dir(start: Path | None = None) -> Path:
    """``docker/grafana/dashboards`` of the Vigie checkout at or above ``start`` (or cwd)."""
    for base in (start or Path.cwd(), Path(__file__).resolve()):
        for folder in (base, *base.parents):
            if (folder / _DASHBOARDS).is_dir():
                return folder / _DASHBOARDS
    raise ConfigurationError(
        f"no {_DASHBOARDS} found above {start or Path.cwd()}: pass --dashboards"
    )


def load_dashboards(directory: Path) -> list[dict[str, Any]]:
    """Every dashboard JSON in ``directory``, by file name."""
    dashboards = [orjson.loads(path.read_bytes()) for path in sorted(directory.glob("*.json"))]
    if not dashboards:
        raise ConfigurationError(f"no dashboard JSON in {directory}")
    return dashboards


def push_dashboards(
    api: Any,
    dashboards: Sequence[dict[str, Any]],
    source: dict[str, Any],
    message: str = "published by vigie grafana push",
) -> PushReport:
    """Create or update the datasource, the Vigie folder and every dashboard.

    ``api`` is a ``grafana_client.GrafanaApi``.
    """
    from grafana_client.client import GrafanaClientError, GrafanaException

    report = PushReport()
    try:
        report.datasource = _upsert_datasource(api, source, GrafanaClientError)
        report.folder = _ensure_folder(api, GrafanaClientError)
        for dashboard in dashboards:
            saved = api.dashboard.update_dashboard(
                {
                    "dashboard": {**dashboard, "id": None},
                    "folderUid": FOLDER_UID,
                    "overwrite": True,
                    "message": message,
                }
            )
            report.dashboards.append(
                {
                    "uid": saved.get("uid", dashboard["uid"]),
                    "title": dashboard["title"],
                    "version": saved.get("version"),
                    "url": saved.get("url"),
                }
            )
    except GrafanaException as exc:
        raise SinkError(f"Grafana refused the publication: {exc}") from exc
    return report


def _upsert_datasource(api: Any, source: dict[str, Any], not_found: type[Exception]) -> str:
    try:
        api.datasource.get_datasource_by_uid(source["uid"])
    except not_found as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
        api.datasource.create_datasource(source)
        return "created"
    api.datasource.update_datasource_by_uid(source["uid"], source)
    return "updated"


def _ensure_folder(api: Any, not_found: type[Exception]) -> str:
    try:
        api.folder.get_folder(FOLDER_UID)
    except not_found as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        return "created"
    return "exists"
