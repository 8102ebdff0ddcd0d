"""The shipped Prometheus alert rules (deploy/alerts.yml) name only metrics that the worker,
the retrainer and the notifier export (promtool does not run here; this catches the usual
breakage: a renamed metric that silently turns a rule into one that never fires)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

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
