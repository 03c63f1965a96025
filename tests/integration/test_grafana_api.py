"""Publishing to Grafana through grafana-client's ``GrafanaApi``, over real HTTP.

Test double, stated plainly: no Grafana binary can be installed on this machine, so the
server here is a small local ``http.server`` that implements the few Grafana HTTP API
routes Vigie uses (datasources by uid, folders, ``POST /api/dashboards/db``) with
Grafana's status codes and response shapes, and records every request. The client side is
the real grafana-client over real sockets; the assertions are on the payloads received.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from grafana_client.api import GrafanaApi

from vigie.errors import SinkError
from vigie.sinks.grafana import (
    DATASOURCE_UID,
    PLUGIN,
    dashboards_dir,
    datasource,
    load_dashboards,
    push_dashboards,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOKEN = "glsa_test_token"
VIGIE = [sys.executable, "-c", "from vigie.cli import main; main()"]
CLICKHOUSE = ["--clickhouse-url", "http://clickhouse:8123"]


@dataclass
class FakeGrafanaState:
    """What the local Grafana stand-in holds and every request it received."""

    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any, str]] = field(default_factory=list)


def handler_for(state: FakeGrafanaState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            body = self._body() if method in ("POST", "PUT") else None
            auth = self.headers.get("Authorization", "")
            state.requests.append((method, self.path, body, auth))
            if auth != f"Bearer {TOKEN}":
                self._reply(401, {"message": "Unauthorized"})
                return
            route = ROUTES.get((method, self.path.rsplit("/", 1)[0] + "/*"))
            route = route or ROUTES.get((method, self.path))
            if route is None:
                self._reply(404, {"message": "Not found"})
                return
            status, payload = route(state, self.path, body)
            self._reply(status, payload)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

    return Handler


def get_datasource(state: FakeGrafanaState, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    uid = path.rsplit("/", 1)[1]
    if uid not in state.datasources:
        return 404, {"message": "Data source not found"}
    return 200, state.datasources[uid]


def create_datasource(state: FakeGrafanaState, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    if any(d["name"] == body["name"] for d in state.datasources.values()):
        return 409, {"message": "data source with the same name already exists"}
    state.datasources[body["uid"]] = {**body, "id": len(state.datasources) + 1}
    return 200, {"id": len(state.datasources), "message": "Datasource added", "name": body["name"]}


def update_datasource(state: FakeGrafanaState, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    uid = path.rsplit("/", 1)[1]
    if uid not in state.datasources:
        return 404, {"message": "Data source not found"}
    state.datasources[uid] = {**state.datasources[uid], **body}
    return 200, {"message": "Datasource updated", "name": body["name"]}


def get_folder(state: FakeGrafanaState, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    uid = path.rsplit("/", 1)[1]
    if uid not in state.folders:
        return 404, {"message": "folder not found"}
    return 200, state.folders[uid]


def create_folder(state: FakeGrafanaState, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    state.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": 1}
    return 200, state.folders[body["uid"]]


def save_dashboard(state: FakeGrafanaState, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    dashboard = body["dashboard"]
    if body.get("folderUid") and body["folderUid"] not in state.folders:
        return 400, {"message": "folder not found"}
    previous = state.dashboards.get(dashboard["uid"])
    if previous is not None and not body.get("overwrite"):
        return 412, {
            "message": "A dashboard with the same uid already exists",
            "status": "name-exists",
        }
    version = (previous["version"] + 1) if previous else 1
    state.dashboards[dashboard["uid"]] = {**body, "version": version}
    return 200, {
        "id": len(state.dashboards),
        "uid": dashboard["uid"],
        "url": f"/d/{dashboard['uid']}/x",
        "status": "success",
        "version": version,
    }


ROUTES = {
    ("GET", "/api/datasources/uid/*"): get_datasource,
    ("POST", "/api/datasources"): create_datasource,
    ("PUT", "/api/datasources/uid/*"): update_datasource,
    ("GET", "/api/folders/*"): get_folder,
    ("POST", "/api/folders"): create_folder,
    ("POST", "/api/dashboards/db"): save_dashboard,
}


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafanaState]]:
    state = FakeGrafanaState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_push_creates_then_updates_datasource_folder_and_dashboards(
    grafana: tuple[str, FakeGrafanaState],
) -> None:
    url, state = grafana
    api = GrafanaApi.from_url(url, credential=TOKEN)
    boards = load_dashboards(dashboards_dir(REPO))
    source = datasource("http://reader:s3cret@clickhouse:8123", database="default")

    first = push_dashboards(api, boards, source)
    assert first.datasource == "created" and first.folder == "created"
    saved = state.datasources[DATASOURCE_UID]
    assert saved["type"] == PLUGIN == "grafana-clickhouse-datasource"
    assert saved["jsonData"] == {
        "host": "clickhouse",
        "port": 8123,
        "protocol": "http",
        "secure": False,
        "defaultDatabase": "default",
        "username": "reader",
    }
    assert saved["secureJsonData"] == {"password": "s3cret"}
    assert sorted(state.dashboards) == [
        "vigie-atypie",
        "vigie-management",
        "vigie-minoration",
        "vigie-vision360",
    ]
    for uid, body in state.dashboards.items():
        assert body["overwrite"] is True and body["folderUid"] == "vigie"
        assert body["dashboard"]["id"] is None
        targets = [t for p in body["dashboard"]["panels"] for t in p["targets"]]
        assert targets and all(t["datasource"]["uid"] == DATASOURCE_UID for t in targets), uid
    assert [d["version"] for d in first.dashboards] == [1, 1, 1, 1]

    second = push_dashboards(api, boards, source)
    assert second.datasource == "updated" and second.folder == "exists"
    assert [d["version"] for d in second.dashboards] == [2, 2, 2, 2]
    assert len(state.datasources) == 1
    methods = [(m, p) for m, p, _, _ in state.requests]
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in methods
    assert methods.count(("POST", "/api/dashboards/db")) == 8


def test_refused_publication_is_a_sink_error(grafana: tuple[str, FakeGrafanaState]) -> None:
    url, state = grafana
    api = GrafanaApi.from_url(url, credential="wrong-token")
    with pytest.raises(SinkError, match="Grafana refused"):
        push_dashboards(api, load_dashboards(dashboards_dir(REPO)), datasource("http://ch:8123"))
    assert state.requests[0][3] == "Bearer wrong-token"
    assert not state.datasources and not state.dashboards


def test_cli_push(grafana: tuple[str, FakeGrafanaState]) -> None:
    url, state = grafana
    done = subprocess.run(
        [*VIGIE, "grafana", "push", "--url", url, "--token", TOKEN, *CLICKHOUSE, "--json"],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["datasource"] == "created"
    assert {d["uid"] for d in report["dashboards"]} == set(state.dashboards)
    assert state.datasources[DATASOURCE_UID]["jsonData"]["host"] == "clickhouse"


def test_cli_push_with_prometheus_adds_the_operations_dashboard(
    grafana: tuple[str, FakeGrafanaState],
) -> None:
    url, state = grafana
    done = subprocess.run(
        [*VIGIE, "grafana", "push", "--url", url, "--token", TOKEN, *CLICKHOUSE,
         "--prometheus-url", "http://prometheus:9090", "--json"],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert set(state.datasources) == {DATASOURCE_UID, "vigie-prometheus"}
    assert state.datasources["vigie-prometheus"]["url"] == "http://prometheus:9090"
    operations = state.dashboards["vigie-operations"]["dashboard"]
    targets = [t for p in operations["panels"] for t in p["targets"]]
    assert targets and all(t["datasource"]["uid"] == "vigie-prometheus" for t in targets)
    assert len(json.loads(done.stdout)["dashboards"]) == 5
