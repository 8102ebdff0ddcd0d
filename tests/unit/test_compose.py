"""The shipped ``docker-compose.yml``, checked without Docker (none runs here).

``docker compose config`` interpolates ``${VARIABLES}`` and validates the result against the
Compose Specification's JSON schema; this does both: the file is interpolated with the values
of ``.env.example`` and validated with ``jsonschema`` against ``data/compose-spec.json``, the
schema of github.com/compose-spec/compose-spec (``schema/compose-spec.json`` at commit
170098ba07d9, Apache-2.0). Then what the deployment promises: no secret in the file, restart
policies and healthchecks, two workers and a retrainer that Prometheus scrapes, and a README
that names the same services.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from config import load_settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
#: ``$$`` (a literal dollar), ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}``.
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Z0-9_]+)(?::(?P<op>[-?])(?P<arg>[^}]*))?\}")
LONG_RUNNING = (
    "kafka",
    "redis",
    "worker",
    "retrainer",
    "notify",
    "dashboard",
    "prometheus",
    "grafana",
)


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def _interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of the syntax the file uses (an unset ``:?`` variable fails)."""
    if isinstance(node, dict):
        return {key: _interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def value_of(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        if env.get(name):
            return env[name]
        if op == "?":
            raise AssertionError(f"${{{name}}} is required: {arg}")
        return arg if op == "-" else ""

    return VARIABLE.sub(value_of, node)


def _raw() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _interpolate(_raw(), _env_example())


def test_the_file_is_valid_against_the_compose_specification(compose):
    schema = orjson.loads(SCHEMA.read_bytes())
    jsonschema.Draft7Validator(schema).validate(compose)


def test_the_schema_catches_a_broken_file(compose):
    broken = {**compose, "services": {**compose["services"], "worker": {"restart": 3}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(orjson.loads(SCHEMA.read_bytes())).validate(broken)


def test_every_required_variable_is_in_env_example_and_env_is_ignored():
    text = (ROOT / "docker-compose.yml").read_text()
    required = {m.group("name") for m in VARIABLE.finditer(text) if m.group("op") == "?"}
    assert required <= set(_env_example()), "a required variable is missing from .env.example"
    with pytest.raises(AssertionError, match="is required"):
        _interpolate(_raw(), {})  # without .env, compose refuses to start: no default secret
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_no_secret_is_written_in_the_file():
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if re.search(r"PASSWORD|SECRET|TOKEN|AUTH", str(key)) and value is not None:
                    assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", str(value)), (
                        f"{path}.{key} must come from .env (${{NAME:?...}}), not the file"
                    )
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(_raw(), "compose")


def test_services_restart_and_report_their_health(compose):
    services = compose["services"]
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["command"] == ["worker"]
    assert services["retrainer"]["command"] == ["retrainer"]
    for name in ("worker", "retrainer"):
        for needed in ("kafka", "redis"):
            assert services[name]["depends_on"][needed]["condition"] == "service_healthy"


def test_the_stack_is_secured_and_durable(compose):
    services = compose["services"]
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].startswith("CLIENT:SASL_PLAINTEXT")
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert "CLIENT://kafka:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command and "--requirepass" in redis_command
    settings = load_settings(environ=services["worker"]["environment"])
    assert settings.kafka.security_protocol == "SASL_PLAINTEXT"
    assert settings.kafka.sasl_mechanism == kafka["KAFKA_SASL_ENABLED_MECHANISMS"]
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.redis.password is not None
    assert settings.topics.outcomes_retention_days == float(
        _env_example()["OUTCOMES_RETENTION_DAYS"]
    )
    for volume in ("kafka-data", "redis-data", "model-store"):
        assert volume in compose["volumes"]


def test_prometheus_scrapes_every_worker_and_the_retrainer(compose):
    worker = load_settings(environ=compose["services"]["worker"]["environment"])
    retrainer = load_settings(environ=compose["services"]["retrainer"]["environment"])
    assert worker.web.enabled and worker.web.host == "0.0.0.0"
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    dns = jobs["streamlearn-worker"]["dns_sd_configs"][0]
    assert dns["names"] == ["worker"] and dns["port"] == worker.web.port
    targets = jobs["streamlearn-retrainer"]["static_configs"][0]["targets"]
    assert targets == [f"retrainer:{retrainer.retrain.metrics_port}"]
    mounted = compose["services"]["prometheus"]["volumes"][0]
    assert mounted.startswith("./deploy/prometheus.yml:")


def test_grafana_loads_the_shipped_dashboard_from_the_bundled_prometheus(compose):
    grafana = compose["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"] if volume.startswith("."))
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards_dir = mounts["./deploy/grafana/dashboards"]
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (datasource,) = source["datasources"]
    assert datasource["url"] == "http://prometheus:9090" and datasource["type"] == "prometheus"
    provider = yaml.safe_load((provisioning / "dashboards" / "streamlearn.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == dashboards_dir
    dashboard = orjson.loads((ROOT / "deploy/grafana/dashboards/streamlearn.json").read_bytes())
    used = {
        target["datasource"]["uid"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }
    assert used == {datasource["uid"]}, "every panel queries the provisioned Prometheus"
    dashboard_env = load_settings(environ=compose["services"]["dashboard"]["environment"])
    assert dashboard_env.dashboard.host == "0.0.0.0" and dashboard_env.dashboard.token
    assert compose["services"]["dashboard"]["ports"] == [f"127.0.0.1:{6069}:6069"]


def test_the_readme_names_the_services_the_file_runs(compose):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run it with Docker Compose", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.MULTILINE))
    assert named == set(compose["services"])
    for line in ("cp .env.example .env", "docker compose up -d --build"):
        assert line in section and line in (ROOT / "docker-compose.yml").read_text()
