"""Message contracts of every topic, as JSON (orjson), with strict validation.

Decoders return a typed message or raise :class:`ContractError` whose ``reason`` says exactly
what is wrong; the agents turn that into a dead-letter record and keep the stream flowing.
See ``docs/messages.md`` for an example per topic.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from models.blend import Blend

#: Model key used for every message when no ``model.key_field`` is configured.
GLOBAL_KEY = "global"


class ContractError(ValueError):
    """A message breaks its topic's contract; ``reason`` is a one-line explanation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TradeOutcome:
    """A closed trade: its features, whether it won (label 1) and its realised R/R."""

    outcome_id: str
    key: str
    model_key: str
    ts: int
    features: dict[str, float]
    label: int
    realized_rr: float | None


@dataclass(frozen=True, slots=True)
class SignalRequest:
    """A request to score a prospective trade."""

    request_id: str
    key: str
    model_key: str
    ts: int
    features: dict[str, float]


@dataclass(frozen=True, slots=True)
class RetrainRequest:
    """A request to retrain the batch model: who asks, why, and on which window."""

    request_id: str
    requested_by: str
    reason: str
    ts: int
    window_outcomes: int | None
    window_days: float | None
    force: bool


@dataclass(frozen=True)
class ContractSpec:
    """What the decoders check: the feature list (in model order) and the model-key field."""

    features: tuple[str, ...]
    key_field: str | None = None

    def model_key(self, message: Mapping[str, Any]) -> str:
        """The model key of a (valid) message: its ``key_field`` value, or the global key."""
        if self.key_field is None:
            return GLOBAL_KEY
        value = message.get(self.key_field)
        if not isinstance(value, str) or not value:
            raise ContractError(f"model key field {self.key_field!r} must be a non-empty string")
        return value


def decode_outcome(
    value: bytes | None, record_key: bytes | None, spec: ContractSpec
) -> TradeOutcome:
    """Validate and decode a ``trade-outcomes`` record."""
    message = _load_object(value)
    label = message.get("label")
    if type(label) is not int or label not in (0, 1):
        raise ContractError(f"label must be 0 or 1, got {label!r}")
    realized = message.get("realized_rr")
    if realized is not None and not _is_finite_number(realized):
        raise ContractError(f"realized_rr must be a finite number or null, got {realized!r}")
    model_key = _checked_model_key(message, record_key, spec)
    return TradeOutcome(
        outcome_id=_string(message, "outcome_id"),
        key=_string(message, "key"),
        model_key=model_key,
        ts=_timestamp(message),
        features=_features(message, spec.features),
        label=label,
        realized_rr=None if realized is None else float(realized),
    )


def decode_request(
    value: bytes | None, record_key: bytes | None, spec: ContractSpec
) -> SignalRequest:
    """Validate and decode a ``signal-requests`` record."""
    message = _load_object(value)
    model_key = _checked_model_key(message, record_key, spec)
    return SignalRequest(
        request_id=_string(message, "request_id"),
        key=_string(message, "key"),
        model_key=model_key,
        ts=_timestamp(message),
        features=_features(message, spec.features),
    )


def decode_retrain_request(value: bytes | None) -> RetrainRequest:
    """Validate and decode a ``retrain-requests`` record."""
    message = _load_object(value)
    outcomes = message.get("window_outcomes")
    if outcomes is not None and (type(outcomes) is not int or outcomes < 100):
        raise ContractError(f"window_outcomes must be an integer >= 100 or null, got {outcomes!r}")
    days = message.get("window_days")
    if days is not None and not (_is_finite_number(days) and days > 0):
        raise ContractError(f"window_days must be a positive number or null, got {days!r}")
    force = message.get("force", False)
    if type(force) is not bool:
        raise ContractError(f"force must be true or false, got {force!r}")
    return RetrainRequest(
        request_id=_string(message, "request_id"),
        requested_by=_string(message, "requested_by"),
        reason=_string(message, "reason"),
        ts=_timestamp(message),
        window_outcomes=outcomes,
        window_days=None if days is None else float(days),
        force=force,
    )


def encode_signal(
    request: SignalRequest,
    blend: Blend,
    batch_version: str | None,
    online_updates: int,
    scored_at_ms: int,
) -> bytes:
    """A ``signals`` record: the score, every part of it, and why a part is missing."""
    return orjson.dumps(
        {
            "request_id": request.request_id,
            "key": request.key,
            "model_key": request.model_key,
            "ts": request.ts,
            "score": blend.score,
            "p_batch": blend.p_batch,
            "p_online": blend.p_online,
            "w_batch": blend.w_batch,
            "w_online": blend.w_online,
            "batch_version": batch_version,
            "online_updates": online_updates,
            "status": blend.status.value,
            "reason": blend.reason,
            "scored_at": scored_at_ms,
        }
    )


DEAD_LETTER_COPY_LIMIT = 512 * 1024
"""Originals up to this many bytes are copied into their dead letter. A larger one stays only in
its source topic, where the letter's source partition and offset find it: its base64 copy would
push the letter past Kafka's default 1 MB message limit, and a dead letter that cannot be
produced would stop the stream it is meant to keep flowing."""

TEXT_COPY_LIMIT = 16 * 1024
"""Originals up to this many bytes that are UTF-8 are also shown as text, for people."""


def encode_dead_letter(
    value: bytes | None,
    record_key: bytes | None,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    failed_at_ms: int,
) -> bytes:
    """A dead-letter record: the original bytes (base64, exact), the reason and the source."""
    size = None if value is None else len(value)
    copied = size is None or size <= DEAD_LETTER_COPY_LIMIT
    key_copied = record_key is None or len(record_key) <= DEAD_LETTER_COPY_LIMIT
    return orjson.dumps(
        {
            "reason": reason,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "original_key_b64": _b64(record_key) if key_copied else None,
            "original_value_b64": _b64(value) if copied else None,
            "original_value_text": _text_or_none(value)
            if size is not None and size <= TEXT_COPY_LIMIT
            else None,
            "original_size": size,
            "original_copied": copied and key_copied,
            "original_prefix_b64": None if copied or value is None else _b64(value[:1024]),
            "failed_at": failed_at_ms,
        }
    )


def encode_message(message: Mapping[str, Any]) -> bytes:
    """JSON bytes of an outgoing message (used by producers and the simulator)."""
    return orjson.dumps(message)


def record_key_of(message: Mapping[str, Any], spec: ContractSpec) -> bytes:
    """The Kafka record key a producer must use: the message's model key."""
    return spec.model_key(message).encode()


def _load_object(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise ContractError("empty record (no value)")
    try:
        message = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ContractError(f"message must be a JSON object, got {type(message).__name__}")
    return message


def _checked_model_key(
    message: Mapping[str, Any], record_key: bytes | None, spec: ContractSpec
) -> str:
    model_key = spec.model_key(message)
    if record_key is None or record_key != model_key.encode():
        shown = None if record_key is None else record_key.decode(errors="replace")
        raise ContractError(
            f"record key {shown!r} must equal the model key {model_key!r} "
            "(one model's messages must share a partition)"
        )
    return model_key


def _string(message: Mapping[str, Any], name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value:
        raise ContractError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _timestamp(message: Mapping[str, Any]) -> int:
    value = message.get("ts")
    if type(value) is not int or value < 0:
        raise ContractError(f"ts must be epoch milliseconds (integer >= 0), got {value!r}")
    return value


def _features(message: Mapping[str, Any], names: Sequence[str]) -> dict[str, float]:
    features = message.get("features")
    if not isinstance(features, dict):
        raise ContractError("features must be an object of name: number")
    out: dict[str, float] = {}
    for name in names:
        if name not in features:
            raise ContractError(f"feature {name!r} is missing")
        value = features[name]
        if not _is_finite_number(value):
            raise ContractError(f"feature {name!r} must be a finite number, got {value!r}")
        out[name] = float(value)
    return out


def _is_finite_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _text_or_none(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None
