"""``streamlearn models ...`` and ``streamlearn retrain``: operate the batch-model registry."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from app.composition import kafka_connection, redis_connection
from app.composition import registry as open_registry
from app.live_metrics import live_report
from app.model_report import compare_rows, render_compare, render_show
from config import Settings
from models.gate import live_verdict
from models.registry import ModelRegistry, RegistryState
from streams.model_updates import ModelUpdatePublisher, from_registry_event
from streams.retrain_requests import enqueue_retrain, retrain_request


class RegistryCommandError(RuntimeError):
    """A registry command cannot run (missing configuration)."""


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:
        return "cli"


@contextmanager
def _registry(settings: Settings) -> Iterator[ModelRegistry]:
    redis = redis_connection(settings)
    if redis is None:
        raise RegistryCommandError("the registry lives in Redis: set REDIS_URL")
    with open_registry(settings, redis) as models:
        yield models


def _announce(settings: Settings, message: dict[str, Any]) -> str:
    """Publish a registry change on ``model-updates`` when a broker is configured."""
    kafka = kafka_connection(settings)
    if kafka is None:
        return " (no KAFKA_BOOTSTRAP_SERVERS: workers will see it by polling)"
    publisher = ModelUpdatePublisher(kafka, settings.topics.model_updates)
    try:
        publisher.publish(message)
    finally:
        publisher.close()
    return ""


def version_row(version: str, metadata: dict[str, Any], state: RegistryState) -> dict[str, Any]:
    """One version as ``models list --json`` prints it (shape in docs/operations.md)."""
    holdout = metadata.get("holdout_metrics") or metadata.get("validation_metrics") or {}
    gate = metadata.get("gate")
    return {
        "version": version,
        "role": role_of(version, state),
        "rows": (metadata.get("window") or {}).get("rows"),
        "log_loss": holdout.get("log_loss"),
        "roc_auc": holdout.get("roc_auc"),
        "gate": None if gate is None else ("passed" if gate.get("promote") else "rejected"),
        "requested_by": sorted({r.get("requested_by") for r in metadata.get("requests") or []}),
        "reason": metadata.get("reason"),
    }


def role_of(version: str, state: RegistryState) -> str:
    """``active``, ``staged`` or ``stored``."""
    return (
        "active" if version == state.active else "staged" if version == state.staged else "stored"
    )


def list_versions(settings: Settings, as_json: bool = False) -> int:
    """``models list``: every stored version with its numbers; active and staged marked."""
    with _registry(settings) as registry:
        state = registry.state()
        rows = [
            version_row(version, registry.store.metadata(version), state)
            for version in registry.store.versions()
        ]
    if as_json:
        document = {"active": state.active, "staged": state.staged, "versions": rows}
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{'':2}{'version':<34} {'rows':>8} {'holdout loss':>12} {'AUC':>6}  gate")
    for row in rows:
        mark = {"active": "*", "staged": "s"}.get(row["role"], "")
        loss, auc = row["log_loss"], row["roc_auc"]
        print(
            f"{mark:<2}{row['version']:<34} {row['rows'] or 0:>8,} "
            f"{'-' if loss is None else f'{loss:.4f}':>12} "
            f"{'-' if auc is None else f'{auc:.3f}':>6}  {row['gate'] or '-'}"
        )
    print("\n* active, s staged")
    return 0


def show_version(settings: Settings, version: str, as_json: bool = False) -> int:
    """``models show V``: the version's family, window, metrics, trading metrics, gate and
    explanation (``--json``: the full metadata with its role, as one object
    ``{"version", "role", "metadata"}``)."""
    with _registry(settings) as registry:
        metadata = registry.store.metadata(version)
        role = role_of(version, registry.state())
    live = live_report(settings, version)
    if as_json:
        document = {"version": version, "role": role, "metadata": metadata, "live": live}
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_show(version, role, metadata, live))
    return 0


def compare_versions(settings: Settings, first: str, second: str, as_json: bool = False) -> int:
    """``models compare A B``: two versions side by side (``--json``: both summaries)."""
    with _registry(settings) as registry:
        state = registry.state()
        a = (first, role_of(first, state), registry.store.metadata(first))
        b = (second, role_of(second, state), registry.store.metadata(second))
    if as_json:
        document = {
            "versions": [a[0], b[0]],
            "rows": [
                {"label": label, "a": left, "b": right}
                for label, left, right in compare_rows(a[2], b[2])
            ],
        }
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_compare(a, b))
    return 0


def promote(settings: Settings, version: str | None, reason: str, force: bool = False) -> int:
    """``models promote [V]``: activate V (default: the staged version); a version the gate
    rejected only with ``force``, and with ``retrain.shadow_min_outcomes`` set, a staged
    version only once its live metrics show it better than the champion (or ``force``)."""
    with _registry(settings) as registry:
        staged = registry.state().staged
        if staged is not None and (version or staged) == staged:
            reason = _live_gate(settings, staged, reason, force)
        event = registry.promote(version, _operator(), reason, force=force)
    note = _announce(settings, from_registry_event(event))
    print(f"version {event.version} active (was {event.previous}){note}")
    return 0


def _live_gate(settings: Settings, version: str, reason: str, force: bool) -> str:
    """The promotion's reason with the staged version's live verdict; refused (without
    ``force``) when ``retrain.shadow_min_outcomes`` asks for live evidence it does not have."""
    needed = settings.retrain.shadow_min_outcomes
    live = live_report(settings, version)
    verdict = live_verdict(live, needed)
    if verdict.refusal is None:
        return f"{reason} ({verdict.summary})" if live else reason
    if not force:
        raise RegistryCommandError(
            f"version {version} is not promoted on live evidence: {verdict.refusal}; "
            "promote it anyway with --force"
        )
    return f"{reason} (forced: {verdict.refusal})"


def rollback(settings: Settings, version: str | None, reason: str) -> int:
    """``models rollback [V]``: re-activate V (default: the previously active version)."""
    with _registry(settings) as registry:
        event = registry.rollback(version, _operator(), reason)
    note = _announce(settings, from_registry_event(event))
    print(f"rolled back to {event.version} (was {event.previous}){note}")
    return 0


def rebuild(settings: Settings, force: bool = False) -> int:
    """``models rebuild``: restore the registry in Redis from the journal in the model store."""
    with _registry(settings) as registry:
        state: RegistryState = registry.rebuild(force=force)
    print(
        f"registry rebuilt from {len(state.history)} journal events: active {state.active}, "
        f"staged {state.staged}"
    )
    return 0


def request_retrain(
    settings: Settings,
    reason: str,
    window_outcomes: int | None,
    window_days: float | None,
    force: bool,
) -> int:
    """``retrain``: enqueue a retrain request for the retrainer."""
    kafka = kafka_connection(settings)
    if kafka is None:
        raise RegistryCommandError("retrain requests go to Kafka: set KAFKA_BOOTSTRAP_SERVERS")
    message = retrain_request(_operator(), reason, window_outcomes, window_days, force)
    enqueue_retrain(kafka, settings.topics.retrain_requests, message)
    print(f"retrain request {message['request_id']} queued on {settings.topics.retrain_requests}")
    return 0
