"""The shipped Prometheus alert rules (deploy/alerts.yml) and the Grafana dashboard
(deploy/grafana/dashboards/streamlearn.json) name only metrics that the worker, the retrainer
and the notifier export (promtool does not run here; this catches the usual breakage: a
renamed metric that silently turns a rule into one that never fires, or a panel into an
empty one)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import yaml
from prometheus_client import generate_latest

from app.notify import NotifyMetrics
from app.retrainer_metrics import RetrainerMetrics
from streams.state_metrics import StateCollector
from tests.unit.engines import claimed, in_memory_engine

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "info": ("_info",)}


def exported() -> set[str]:
    """Every sample name the three processes can export (also series not created yet)."""

    async def engine():
        return await claimed(in_memory_engine())

    worker = asyncio.run(engine())
    status = {"highwaters": {}, "request_highwaters": {}}
    worker.metrics.registry.register(StateCollector(worker, lambda: status, top_keys=10))
    names: set[str] = set()
    for registry in (
        worker.metrics.registry,
        RetrainerMetrics().registry,
        NotifyMetrics().registry,
    ):
        text = generate_latest(registry).decode()
        for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
            names |= {name + suffix for suffix in SUFFIXES.get(kind, ("",))}
    return names


def test_every_rule_uses_exported_metrics_and_says_what_to_do():
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())["groups"][0]["rules"]
    known = exported()
    assert "streamlearn_consumer_lag" in known and "streamlearn_retrains_total" in known
    for rule in rules:
        used = set(re.findall(r"\b(streamlearn_[a-z_]+)", rule["expr"]))
        assert used or 'up{job="streamlearn-' in rule["expr"], rule["alert"]
        assert used <= known, (rule["alert"], used - known)
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    names = {rule["alert"] for rule in rules}
    assert {
        "StreamlearnLagGrowing",
        "StreamlearnDriftOpen",
        "StreamlearnNoSignals",
        "StreamlearnRetrainFailed",
    } <= names
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_the_grafana_dashboard_queries_exported_metrics_and_shows_what_ops_need():
    dashboard = orjson.loads((ROOT / "deploy/grafana/dashboards/streamlearn.json").read_bytes())
    known = exported()
    queries = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    queries += [(a["name"], a["expr"]) for a in dashboard["annotations"]["list"]]
    queries.append(("$model_key", dashboard["templating"]["list"][0]["definition"]))
    for title, expr in queries:
        used = set(re.findall(r"\b(streamlearn_[a-z_]+)", expr))
        assert used or "process_" in expr, title
        assert used <= known, (title, used - known)
    shown = " ".join(expr for _, expr in queries)
    for needed in (
        "streamlearn_prequential_correct_total",  # accuracy per source
        "streamlearn_prequential_log_loss_total",
        "streamlearn_key_recent_accuracy_ratio",  # per key
        "streamlearn_drift_statistic",
        "streamlearn_drift_open_episodes",
        "streamlearn_consumer_lag",
        "streamlearn_signal_latency_seconds_bucket",
        "streamlearn_batch_model_info",
        "streamlearn_retrains_total",
        "streamlearn_drift_alerts_total",  # alerts as annotations
    ):
        assert needed in shown, needed
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert len(titles) == len(set(titles)), "panel titles are unique"
