"""docker/: the compose file's wiring, checked by parsing it (no Docker engine here).

``docker compose config`` needs the compose plugin, absent on this machine; PyYAML reads
the file instead (merge keys included) and the checks follow the references: services,
ports, environment read by Settings, mounted files, provisioning variables, and each Vigie
service's command, run with ``--help`` through the real CLI.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from vigie.errors import ConfigurationError
from vigie.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"
VIGIE_SERVICES = (
    "topics", "worker", "warehouse-writer", "alert-publisher", "webhook-dispatcher", "web"
)  # fmt: skip
ONE_SHOT = ("topics",)
SECRET_VARIABLE = re.compile(r"PASSWORD|TOKEN|SECRET", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def test_every_service_is_there_with_its_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {
        "kafka", "redis", "clickhouse", "grafana", "prometheus", *VIGIE_SERVICES
    }  # fmt: skip
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["grafana"]["build"] == {"context": "./grafana"}  # grafana/grafana + plugin
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]


def test_dependencies_name_real_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for needed, condition in service.get("depends_on", {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            assert condition["condition"] in (
                "service_healthy",
                "service_completed_successfully",
            )
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], needed


def test_vigie_services_point_at_the_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka_env = services["kafka"]["environment"]
    for name in VIGIE_SERVICES:
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        env = service["environment"]
        for key in env:
            field = key.removeprefix("VIGIE_").lower()
            assert key.startswith("VIGIE_") and field in Settings.model_fields, key
        assert (
            f"INTERNAL://{env['VIGIE_KAFKA_BOOTSTRAP']}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
        )
        assert urlparse(_filled(env["VIGIE_REDIS_URL"])).hostname == "redis"
        clickhouse = urlparse(_filled(env["VIGIE_CLICKHOUSE_URL"]))
        assert (clickhouse.scheme, clickhouse.hostname, clickhouse.port) == (
            "http",
            "clickhouse",
            8123,
        )
    assert "clickhouse" in services["warehouse-writer"]["depends_on"]
    assert services["warehouse-writer"]["command"][:2] == ["warehouse", "write"]


@pytest.mark.parametrize("name", VIGIE_SERVICES)
def test_vigie_commands_exist(compose: dict[str, Any], name: str) -> None:
    command = compose["services"][name]["command"]
    done = subprocess.run(
        [sys.executable, "-c", "from vigie.cli import main; main()", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"vigie {' '.join(command)}: {done.stderr}"


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: {source}"


def test_grafana_gets_the_plugin_datasource_and_dashboards(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    env = grafana["environment"]
    assert "GF_INSTALL_PLUGINS" not in env  # deprecated in Grafana 12, and ran at each start
    assert grafana["build"] == {"context": "./grafana"}
    image = (DOCKER / "grafana/Dockerfile").read_text()
    assert re.search(r"^ARG GRAFANA_IMAGE=grafana/grafana:\d+\.\d+\.\d+$", image, re.M)
    assert re.search(r"^ARG CLICKHOUSE_PLUGIN_VERSION=\d+\.\d+\.\d+$", image, re.M)
    assert 'plugins install grafana-clickhouse-datasource "$CLICKHOUSE_PLUGIN_VERSION"' in image
    assert "GF_PLUGINS_PREINSTALL_DISABLED=true" in image  # nothing downloaded at start
    provisioning = (DOCKER / "grafana/provisioning/datasources/clickhouse.yaml").read_text()
    for variable in re.findall(r"\$\{(\w+)\}", provisioning):
        assert variable in env, f"provisioning uses ${{{variable}}}, unset in grafana"
    source = yaml.safe_load(provisioning)["datasources"][0]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["uid"] == "vigie-clickhouse"
    assert env["CH_HOST"] == "clickhouse"
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/vigie.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts[path] == "./grafana/dashboards"
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DOCKER / "grafana/dashboards" / Path(home).name).exists()


def test_the_image_installs_the_lock_in_a_layer_of_its_own() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert [line for line in lines if line.startswith("FROM ")] == [
        "FROM ${PYTHON_IMAGE} AS build",
        "FROM ${PYTHON_IMAGE}",
    ]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+$", text, re.M)
    lock = lines.index("RUN pip install --no-deps -r requirements/runtime.lock \\")
    source = lines.index("COPY src ./src")
    assert lines.index("COPY requirements/runtime.lock requirements/dev.lock requirements/") < lock
    assert lock < source  # a code change does not reinstall the dependencies
    assert "VIGIE_COMPILE=1 pip install --no-deps --no-build-isolation ." in text
    assert "COPY --from=build /opt/vigie /opt/vigie" in text
    runtime = text[text.index("FROM ${PYTHON_IMAGE}\n") :]
    assert "gcc" not in runtime and "USER vigie" in runtime
    assert "HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \\" in text
    assert 'ENTRYPOINT ["vigie"]' in text
    ignored = (DOCKER.parent / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") :][:7] == [
        "*", "!pyproject.toml", "!setup.py", "!README.md", "!requirements/", "!src/",
        "**/__pycache__",
    ]  # fmt: skip


def test_the_image_has_no_chdb_and_the_demo_has() -> None:
    runtime = (DOCKER.parent / "requirements/runtime.lock").read_text()
    demo = (DOCKER.parent / "requirements/demo.lock").read_text()
    dev = (DOCKER.parent / "requirements/dev.lock").read_text()
    assert "\nchdb==" not in runtime and "\npandas==" not in runtime
    assert "\nchdb==" in demo and "\nchdb==" in dev
    for heavy in ("lightgbm", "scikit-learn", "pytest", "mypy", "httpx", "playwright"):
        assert f"\n{heavy}==" not in demo, heavy
    assert all(line in demo for line in runtime.splitlines() if "==" in line)


def test_the_demo_installs_the_demo_lock() -> None:
    makefile = (DOCKER.parent / "Makefile").read_text()
    target = makefile[makefile.index("$(VENV)/.demo:") :].split("\n\n")[0]
    assert "requirements/demo.lock" in target.splitlines()[0]
    assert "pip install --quiet --no-deps -r requirements/demo.lock" in target
    assert "dev[" not in target and "dev.lock" not in target


def test_prometheus_scrapes_the_workers_and_grafana_reads_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    config = yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    (target,) = job["dns_sd_configs"]
    assert target["names"] == ["worker"] and job["metrics_path"] == "/metrics"
    assert services["worker"]["ports"] == [f"127.0.0.1:6066-6069:{target['port']}"]
    assert Settings().worker_web_port == target["port"]
    assert services["worker"]["environment"]["VIGIE_WORKER_WEB_HOST"] == "0.0.0.0"
    assert job["authorization"] == {
        "type": "Bearer", "credentials_file": "/run/secrets/worker_token"
    }  # fmt: skip
    assert services["prometheus"]["secrets"] == ["worker_token"]
    assert compose["secrets"]["worker_token"] == {"environment": "VIGIE_WORKER_TOKEN"}
    assert "VIGIE_WORKER_TOKEN" in services["worker"]["environment"]["VIGIE_WORKER_TOKEN"]
    grafana = services["grafana"]
    provisioning = (DOCKER / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    (source,) = yaml.safe_load(provisioning)["datasources"]
    assert source["uid"] == "vigie-prometheus" and source["url"] == "${PROMETHEUS_URL}"
    assert urlparse(grafana["environment"]["PROMETHEUS_URL"]).hostname == "prometheus"
    providers = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/vigie.yaml").read_text())
    paths = {p["options"]["path"] for p in providers["providers"]}
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts["/var/lib/grafana/dashboards/vigie-operations"] == "./grafana/operations"
    assert "/var/lib/grafana/dashboards/vigie-operations" in paths


def test_web_listens_on_its_published_port(compose: dict[str, Any]) -> None:
    web = compose["services"]["web"]
    port = web["command"][web["command"].index("--port") + 1]
    assert web["ports"] == [f"127.0.0.1:{port}:{port}"] and "0.0.0.0" in web["command"]
    assert "clickhouse" in web["depends_on"]


def test_every_published_port_is_on_loopback(compose: dict[str, Any]) -> None:
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
            published += 1
    assert published == 7  # kafka, redis, clickhouse, grafana, prometheus, worker, web


def _filled(text: str) -> str:
    """A value with each ${VAR:?message} replaced by a placeholder, as compose would."""
    return re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: f"x{m.group(1).lower()}", text)


def test_no_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    text = (DOCKER / "compose.yaml").read_text()
    for found in re.finditer(r"\$\{(\w+)([^}]*)\}", text):
        name, rest = found.groups()
        if SECRET_VARIABLE.search(name):
            assert rest.startswith(":?"), f"${{{name}{rest}}}: a secret needs no default"
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        for key, value in env.items():
            if SECRET_VARIABLE.search(key) and not key.endswith("_FILE"):
                assert str(value).startswith("${") and ":?" in str(value), (name, key)
    example = (DOCKER / ".env.example").read_text()
    needed = {m.group(1) for m in re.finditer(r"\$\{(\w+):\?", text)}
    assert needed == {line.split("=")[0] for line in example.splitlines() if line[:1].isupper()}
    assert all(line.endswith("=") for line in example.splitlines() if line[:1].isupper())
    ignored = (DOCKER.parent / ".gitignore").read_text().splitlines()
    assert "docker/.env" in ignored and "docker/webhooks.toml" in ignored


def test_redis_and_clickhouse_ask_for_passwords(compose: dict[str, Any]) -> None:
    services = compose["services"]
    redis_command = services["redis"]["command"][-1]
    assert 'requirepass "$$REDIS_PASSWORD"' in redis_command and "redis-server -" in redis_command
    assert services["redis"]["environment"]["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD:?")
    for name in VIGIE_SERVICES:
        env = services[name]["environment"]
        assert urlparse(_filled(env["VIGIE_REDIS_URL"])).password == "xredis_password"
        assert urlparse(_filled(env["VIGIE_CLICKHOUSE_URL"])).password
    assert services["clickhouse"]["environment"]["CLICKHOUSE_PASSWORD"].startswith("${")


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check is not None, name
        if name in ONE_SHOT:
            assert check == {"disable": True} and service["restart"] == "no"
            continue
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert {"interval", "timeout", "retries"} <= set(check), name


@pytest.mark.parametrize("name", ["warehouse-writer", "alert-publisher", "webhook-dispatcher"])
def test_sinks_are_checked_on_their_own_http_port(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    port = service["command"][service["command"].index("--http-port") + 1]
    assert f"http://127.0.0.1:{port}/health" in service["healthcheck"]["test"][-1]


def test_the_worker_is_checked_and_takes_controls(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert (
        f"http://127.0.0.1:{Settings().worker_web_port}/health"
        in (worker["healthcheck"]["test"][-1])
    )
    assert worker["environment"]["VIGIE_CONTROLS_TOKEN"].startswith("${VIGIE_CONTROLS_TOKEN:?")


def test_the_webhook_dispatcher_reads_its_subscribers_as_a_secret(
    compose: dict[str, Any],
) -> None:
    dispatcher = compose["services"]["webhook-dispatcher"]
    assert dispatcher["command"][:2] == ["webhooks", "dispatch"]
    assert dispatcher["environment"]["VIGIE_WEBHOOKS_FILE"] == "/run/secrets/webhooks"
    assert dispatcher["secrets"] == ["webhooks"]
    assert compose["secrets"]["webhooks"] == {"file": "./webhooks.toml"}
    assert any(v.startswith("webhooks-state:") for v in dispatcher["volumes"])
    from vigie.sinks.webhooks.subscribers import load_subscribers

    example = DOCKER / "webhooks.example.toml"
    with pytest.raises(ConfigurationError, match="secret"):
        load_subscribers(example)  # its placeholder secret must be replaced
