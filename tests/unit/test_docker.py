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

from vigie.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"
VIGIE_SERVICES = ("topics", "worker", "warehouse-writer", "alert-publisher", "web")


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
    assert services["grafana"]["image"].startswith("grafana/grafana:")
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
        assert urlparse(env["VIGIE_REDIS_URL"]).hostname == "redis"
        clickhouse = urlparse(env["VIGIE_CLICKHOUSE_URL"])
        assert (clickhouse.scheme, clickhouse.hostname, clickhouse.port) == (
            "http",
            "clickhouse",
            8123,
        )
    assert "clickhouse" in services["warehouse-writer"]["depends_on"]
    assert services["warehouse-writer"]["command"] == ["warehouse", "write"]


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
    assert "grafana-clickhouse-datasource" in env["GF_INSTALL_PLUGINS"]
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


def test_dockerfile_installs_the_package() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert text.count("FROM python:3.11-slim") == 1
    assert "pip install ." in text
    assert 'ENTRYPOINT ["vigie"]' in text


def test_prometheus_scrapes_the_workers_and_grafana_reads_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    config = yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    (target,) = job["dns_sd_configs"]
    assert target["names"] == ["worker"] and job["metrics_path"] == "/metrics"
    assert str(target["port"]) in services["worker"]["ports"][0]
    assert Settings().worker_web_port == target["port"]
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
    assert web["ports"] == [f"{port}:{port}"] and "0.0.0.0" in web["command"]
    assert "clickhouse" in web["depends_on"]
