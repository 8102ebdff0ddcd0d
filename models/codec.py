"""Explicit JSON codec for a model key's learned state (no pickle, ever).

Only learned numbers are stored; hyper-parameters come from settings when the state is decoded.
Floats survive exactly (orjson writes the shortest repr that round-trips), so a learner restored
from Redis continues bit-for-bit like one that never stopped. Decoding validates every field
and raises :class:`StateCodecError` on anything unexpected instead of building a half-valid
model.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import Any

import orjson

from models.blend import BlendFit
from models.blend_weights import BlendWindow, WeightFitConfig
from models.dedupe import RecentIds
from models.drift.codec import DriftStateError, decode_drift, encode_drift
from models.drift.config import DriftConfig
from models.drift.monitor import DriftMonitor
from models.keyed import KeyModel
from models.metrics import SOURCES, BinnedROCAUC, PrequentialMetrics, SourceMetrics
from models.online import OnlineConfig, OnlineLearner
from models.shadow import ShadowTally
from models.stacking import MetaLearner, StackConfig

STATE_VERSION = 5
READABLE_VERSIONS = (3, 4, 5)  # 3: no outcome-id window; 3-4: River metric objects


class StateCodecError(ValueError):
    """Stored state is not a valid encoding of a model key."""


def encode_key_model(key_model: KeyModel) -> bytes:
    """Serialise a key's learner, metrics, drift monitors, outbox and fitted blend (``blend``:
    an ``optimized`` window, ``stack``: a ``stacked`` meta-learner) to JSON bytes."""
    blend = key_model.blend
    return orjson.dumps(
        {
            "v": STATE_VERSION,
            "learner": _encode_learner(key_model.learner),
            "metrics": {
                name: _encode_source(source) for name, source in key_model.metrics.sources.items()
            },
            "last_ts": key_model.last_ts,
            "drift": None if key_model.drift is None else encode_drift(key_model.drift),
            "outbox": key_model.outbox,
            "seen": None if key_model.seen is None else key_model.seen.encode(),
            "blend": _encode_blend(blend) if isinstance(blend, BlendWindow) else None,
            "stack": _encode_stack(blend) if isinstance(blend, MetaLearner) else None,
            "shadow": None if key_model.shadow is None else key_model.shadow.encode(),
        }
    )


def decode_key_model(
    data: bytes | str,
    config: OnlineConfig,
    drift: DriftConfig | None = None,
    blend: BlendFit | None = None,
) -> KeyModel:
    """Rebuild a key's state from :func:`encode_key_model` output, validating it; ``blend`` is
    the mode's config (a key saved in another mode starts its fitted blend afresh)."""
    doc = _document(data)
    learner = _decode_learner(_field(doc, "learner", dict), config)
    prequential = _decode_metrics(doc)
    last_ts = doc.get("last_ts")
    _expect(last_ts is None or _is_int(last_ts), "last_ts must be an integer or null")
    outbox = doc.get("outbox") or []
    _expect(
        isinstance(outbox, list) and all(isinstance(m, dict) for m in outbox),
        "outbox must be a list of messages",
    )
    monitor = None
    if drift is not None:
        saved = doc.get("drift")
        try:
            monitor = DriftMonitor(drift) if saved is None else decode_drift(saved, drift)
        except DriftStateError as exc:
            raise StateCodecError(str(exc)) from None
    seen = None
    if config.dedupe_window:
        saved_ids = doc.get("seen")
        try:
            seen = (
                RecentIds(config.dedupe_window)
                if saved_ids is None
                else RecentIds.decode(saved_ids, config.dedupe_window)
            )
        except ValueError as exc:
            raise StateCodecError(str(exc)) from None
    fitted = None
    if isinstance(blend, WeightFitConfig):
        saved_window = doc.get("blend")
        fitted = blend.fresh() if saved_window is None else _decode_blend(saved_window, blend)
    elif isinstance(blend, StackConfig):
        saved_stack = doc.get("stack")
        fitted = blend.fresh() if saved_stack is None else _decode_stack(saved_stack, blend)
    elif blend is not None:
        raise TypeError(f"no state encoding for a {type(blend).__name__}")
    return KeyModel(
        learner=learner,
        metrics=prequential,
        last_ts=last_ts,
        drift=monitor,
        outbox=outbox,
        seen=seen,
        blend=fitted,
        shadow=_decode_shadow(doc.get("shadow")),
    )


def _decode_shadow(doc: Any) -> ShadowTally | None:
    """A key's shadow tally (absent in states written before shadow evaluation)."""
    if doc is None:
        return None
    try:
        return ShadowTally.decode(doc)
    except ValueError as exc:
        raise StateCodecError(str(exc)) from None


def shadow_of(data: bytes | str) -> ShadowTally | None:
    """Only a stored state's shadow tally (what ``models show`` adds up over keys)."""
    return _decode_shadow(_document(data).get("shadow"))


def _encode_stack(meta: MetaLearner) -> dict[str, Any]:
    return {
        "weights": meta.model._weights.to_dict(),
        "intercept": float(meta.model.intercept),
        "updates": meta.updates,
        "n_iterations": meta.model.optimizer.n_iterations,
    }


def _decode_stack(doc: Any, config: StackConfig) -> MetaLearner:
    """A key's meta-learner; one saved with other inputs (the setting changed) starts afresh
    from the configured mix rather than mixing weights of different inputs."""
    _expect(isinstance(doc, dict), "stack must be an object")
    meta = config.fresh()
    weights = _number_map(_field(doc, "weights", dict), "stack.weights")
    if set(weights) != set(config.initial_weights()):
        return meta
    meta.model._weights = type(meta.model._weights)(weights)
    meta.model.intercept = _finite(_field(doc, "intercept", float | int), "stack intercept")
    meta.model.optimizer.n_iterations = _count(doc, "n_iterations")
    meta.updates = _count(doc, "updates")
    return meta


def _encode_blend(window: BlendWindow) -> dict[str, Any]:
    return {
        "rows": [[pb, po, won] for pb, po, won in window.rows],
        "w_batch": window.w_batch,
        "since_refit": window.since_refit,
        "refits": window.refits,
    }


def _decode_blend(doc: Any, weights: WeightFitConfig) -> BlendWindow:
    """A key's blend window (its newest ``weights.window`` rows when the window shrank)."""
    _expect(isinstance(doc, dict), "blend must be an object")
    rows = _field(doc, "rows", list)
    decoded = []
    for row in rows:
        _expect(isinstance(row, list) and len(row) == 3, "a blend row is [p_batch, p_online, won]")
        pb, po = float(_finite(row[0], "blend p_batch")), float(_finite(row[1], "blend p_online"))
        _expect(0.0 <= pb <= 1.0 and 0.0 <= po <= 1.0, "blend probabilities must be in [0, 1]")
        _expect(isinstance(row[2], bool), "blend won must be true or false")
        decoded.append((pb, po, row[2]))
    w_batch = doc.get("w_batch")
    if w_batch is not None:
        w_batch = float(_finite(w_batch, "blend w_batch"))
        _expect(0.0 <= w_batch <= 1.0, "blend w_batch must be in [0, 1]")
    return BlendWindow(
        config=weights,
        rows=collections.deque(decoded, maxlen=weights.window),
        w_batch=w_batch,
        since_refit=_count(doc, "since_refit"),
        refits=_count(doc, "refits"),
    )


def summary_of(data: bytes | str) -> dict[str, Any]:
    """A state's plain-number summary (:meth:`KeyModel.summary`) without rebuilding its models.

    Computed from the stored metrics on read (status views are rare; checkpoints are not:
    storing it cost 24 us per key per checkpoint, measured).
    """
    doc = _document(data)
    return {
        "updates": _count(_field(doc, "learner", dict), "updates"),
        "last_ts": doc.get("last_ts"),
        "metrics": _decode_metrics(doc).summary(),
    }


def _document(data: bytes | str) -> dict[str, Any]:
    """The state's JSON object, of a readable version."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StateCodecError(f"state is not JSON: {exc}") from None
    _expect(isinstance(doc, dict), "state must be a JSON object")
    _expect(doc.get("v") in READABLE_VERSIONS, f"unsupported state version {doc.get('v')!r}")
    return doc


def _decode_metrics(doc: dict[str, Any]) -> PrequentialMetrics:
    encoded = _field(doc, "metrics", dict)
    _expect(set(encoded) == set(SOURCES), f"metrics must cover {SOURCES}")
    return PrequentialMetrics(
        sources={name: _decode_source(encoded[name], doc["v"]) for name in SOURCES}
    )


# -- learner ---------------------------------------------------------------------------------


def _encode_learner(learner: OnlineLearner) -> dict[str, Any]:
    scaler, model = learner.scaler, learner.model
    return {
        "updates": learner.updates,
        "scaler": {
            "counts": dict(scaler.counts),
            "means": dict(scaler.means),
            "vars": dict(scaler.vars),
        },
        "weights": model._weights.to_dict(),
        "intercept": float(model.intercept),
        "n_iterations": model.optimizer.n_iterations,
    }


def _decode_learner(doc: dict[str, Any], config: OnlineConfig) -> OnlineLearner:
    learner = OnlineLearner(config)
    scaler_doc = _field(doc, "scaler", dict)
    counts = _number_map(_field(scaler_doc, "counts", dict), "scaler.counts")
    means = _number_map(_field(scaler_doc, "means", dict), "scaler.means")
    vars_ = _number_map(_field(scaler_doc, "vars", dict), "scaler.vars")
    _expect(set(counts) == set(means) == set(vars_), "scaler statistics cover different features")
    learner.scaler.counts = collections.Counter(counts)
    learner.scaler.means = collections.defaultdict(float, means)
    learner.scaler.vars = collections.defaultdict(float, vars_)
    weights = _number_map(_field(doc, "weights", dict), "weights")
    model = learner.model
    model._weights = type(model._weights)(weights)
    model.intercept = _finite(_field(doc, "intercept", float | int), "intercept")
    model.optimizer.n_iterations = _count(doc, "n_iterations")
    learner.updates = _count(doc, "updates")
    return learner


# -- metrics ---------------------------------------------------------------------------------


def _encode_source(source: SourceMetrics) -> dict[str, Any]:
    return {
        "n": source.n,
        "log_loss": source.log_loss_mean,
        "correct": source.correct,
        "roc_auc": {
            "bins": source.roc_auc.bins,
            "wins": source.roc_auc.wins,
            "losses": source.roc_auc.losses,
        },
    }


def _decode_source(doc: Any, version: int) -> SourceMetrics:
    _expect(isinstance(doc, dict), "metrics of a source must be an object")
    source = SourceMetrics(n=_count(doc, "n"))
    if version >= 5:
        source.log_loss_mean = _finite(_field(doc, "log_loss", float | int), "log_loss")
        source.correct = _count(doc, "correct")
    else:  # River's LogLoss (a stats.Mean) and Accuracy (a confusion matrix)
        log_loss = _field(doc, "log_loss", dict)
        source.log_loss_mean = _finite(_field(log_loss, "mean", float | int), "log_loss.mean")
        source.correct = int(_v4_true_positives(_field(doc, "accuracy", dict)))
    _expect(source.correct <= source.n, "more correct predictions than scored ones")
    roc_doc = _field(doc, "roc_auc", dict)
    bins = _count(roc_doc, "bins")
    wins, losses = _field(roc_doc, "wins", list), _field(roc_doc, "losses", list)
    _expect(len(wins) == len(losses) == bins > 0, "roc_auc needs one count per bin")
    _expect(all(_is_int(v) and v >= 0 for v in wins + losses), "roc_auc counts must be >= 0")
    source.roc_auc = BinnedROCAUC(bins)
    source.roc_auc.wins[:] = wins
    source.roc_auc.losses[:] = losses
    return source


def _v4_true_positives(doc: dict[str, Any]) -> float:
    """Correct predictions from a version-4 state's River confusion matrix."""
    for cell in _field(doc, "cells", list):
        _expect(
            isinstance(cell, list) and len(cell) == 3 and _is_label(cell[0]) and _is_label(cell[1]),
            "confusion matrix cells are [bool, bool, weight]",
        )
    return _finite(_field(doc, "true_positives", float | int), "true_positives")


# -- validation helpers ----------------------------------------------------------------------


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise StateCodecError(message)


def _field(doc: dict[str, Any], name: str, kind: Any) -> Any:
    _expect(name in doc, f"missing field {name!r}")
    value = doc[name]
    _expect(isinstance(value, kind) and not isinstance(value, bool), f"{name!r} has wrong type")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_label(value: Any) -> bool:
    return isinstance(value, bool)


def _count(doc: dict[str, Any], name: str) -> int:
    value = _field(doc, name, int)
    _expect(value >= 0, f"{name!r} must be >= 0")
    return value


def _finite(value: Any, name: str) -> float:
    _expect(
        isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value),
        f"{name} must be a finite number",
    )
    return value


def _number_map(doc: dict[str, Any], name: str) -> dict[str, float]:
    check: Callable[[Any], bool] = lambda v: (  # noqa: E731
        isinstance(v, float | int) and not isinstance(v, bool) and math.isfinite(v)
    )
    _expect(all(check(v) for v in doc.values()), f"{name} must map names to finite numbers")
    return doc
