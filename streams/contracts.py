"""Message contracts of every topic, as JSON (orjson), with strict validation.

Outcomes and signal requests first try a typed msgspec decode (``streams.fast_decoding``):
only records it fully accepts take that path; all others are decided and explained here.

Decoders return a typed message or raise :class:`ContractError` whose ``reason`` says exactly
what is wrong; the agents turn that into a dead-letter record and keep the stream flowing.
See ``docs/messages.md`` for an example per topic.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import msgspec
import orjson

from config import Settings
from models.blend import Blend
from streams.fast_decoding import Fast, TypedDecoders, fast_outcome, fast_request
from streams.messages import (
    MAX_TS,
    DeadLetterMessage,
    RetrainRequestMessage,
    SignalMessage,
    SignalRequestMessage,
    TradeOutcomeMessage,
)

#: Model key used for every message when no ``model.key_field`` is configured.
GLOBAL_KEY = "global"


class ContractError(ValueError):
    """A message breaks its topic's contract; ``reason`` is a one-line explanation and
    ``kind`` which rule (one of :data:`streams.messages.LETTER_KINDS`)."""

    def __init__(self, reason: str, kind: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class TradeOutcome(msgspec.Struct, frozen=True):
    """A closed trade: its features, whether it won (label 1) and its realised R/R.

    (A msgspec struct rather than a frozen dataclass: built per outcome, and a frozen
    dataclass's ``__init__`` cost ~1 us of the decoder's 2.7, measured.)
    """

    outcome_id: str
    key: str
    model_key: str
    ts: int
    features: dict[str, float]
    label: int
    realized_rr: float | None


class SignalRequest(msgspec.Struct, frozen=True):
    """A request to score a prospective trade (a msgspec struct, as :class:`TradeOutcome`)."""

    request_id: str
    key: str
    model_key: str
    ts: int
    features: dict[str, float]
    deadline_ms: int | None = None


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


#: How much of an offending value a reason quotes (reasons must stay one short line).
SHOWN_CHARS = 80


@dataclass(frozen=True)
class ContractSpec:
    """What the decoders check: the features (in model order), the model-key field and limits.

    ``max_abs_feature`` keeps learning numerically safe (a feature of 1e200 squared overflows
    the scaler's variance); the byte limits keep every record the worker derives from an input
    (signals, dead letters) producible.
    """

    features: tuple[str, ...]
    key_field: str | None = None
    max_abs_feature: float = 1e12
    max_key_bytes: int = 1024
    max_value_bytes: int = 262_144

    @classmethod
    def from_settings(cls, settings: Settings) -> ContractSpec:
        """What the ``model`` and ``limits`` settings ask of every message (the workers' and
        the clients' one mapping)."""
        limits = settings.limits
        return cls(
            features=settings.model.features,
            key_field=settings.model.key_field,
            max_abs_feature=limits.max_abs_feature,
            max_key_bytes=limits.max_key_bytes,
            max_value_bytes=limits.max_value_bytes,
        )

    @cached_property
    def typed(self) -> TypedDecoders:
        """The msgspec decoders of this spec (the fast path), built on first use."""
        return TypedDecoders(self)

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
    fast = _fast(fast_outcome, value, record_key, spec)
    if fast is None:
        return checked_outcome(value, record_key, spec)
    message, model_key = fast.message, fast.model_key
    return TradeOutcome(
        outcome_id=message.outcome_id,
        key=message.key,
        model_key=model_key,
        ts=message.ts,
        features=fast.features,
        label=message.label,
        realized_rr=message.realized_rr,
    )


def checked_outcome(
    value: bytes | None, record_key: bytes | None, spec: ContractSpec
) -> TradeOutcome:
    """:func:`decode_outcome` without the fast path: the contract itself, every reason worded."""
    message = _load_object(value, record_key, spec)
    _check_version(message, TradeOutcomeMessage.VERSION)
    label = message.get("label")
    if type(label) is not int or label not in (0, 1):
        raise ContractError(f"label must be 0 or 1, got {_shown(label)}")
    realized = message.get("realized_rr")
    if realized is not None and not _is_bounded_number(realized, spec.max_abs_feature):
        raise ContractError(
            f"realized_rr must be a finite number with |value| <= {spec.max_abs_feature:g} "
            f"or null, got {_shown(realized)}"
        )
    model_key = _checked_model_key(message, record_key, spec)
    return TradeOutcome(
        outcome_id=_string(message, "outcome_id", spec),
        key=_string(message, "key", spec),
        model_key=model_key,
        ts=_timestamp(message),
        features=_features(message, spec),
        label=label,
        realized_rr=None if realized is None else float(realized),
    )


def decode_request(
    value: bytes | None, record_key: bytes | None, spec: ContractSpec
) -> SignalRequest:
    """Validate and decode a ``signal-requests`` record."""
    fast = _fast(fast_request, value, record_key, spec)
    if fast is None:
        return checked_request(value, record_key, spec)
    message = fast.message
    return SignalRequest(
        request_id=message.request_id,
        key=message.key,
        model_key=fast.model_key,
        ts=message.ts,
        features=fast.features,
        deadline_ms=message.deadline_ms,
    )


def checked_request(
    value: bytes | None, record_key: bytes | None, spec: ContractSpec
) -> SignalRequest:
    """:func:`decode_request` without the fast path: the contract itself, every reason worded."""
    message = _load_object(value, record_key, spec)
    _check_version(message, SignalRequestMessage.VERSION)
    model_key = _checked_model_key(message, record_key, spec)
    deadline = message.get("deadline_ms")
    if deadline is not None and (type(deadline) is not int or not 0 <= deadline <= MAX_TS):
        raise ContractError(
            f"deadline_ms must be epoch milliseconds (integer, 0 <= deadline_ms < 2^63) or "
            f"null, got {_shown(deadline)}"
        )
    return SignalRequest(
        request_id=_string(message, "request_id", spec),
        key=_string(message, "key", spec),
        model_key=model_key,
        ts=_timestamp(message),
        features=_features(message, spec),
        deadline_ms=deadline,
    )


def decode_retrain_request(value: bytes | None) -> RetrainRequest:
    """Validate and decode a ``retrain-requests`` record."""
    spec = _CONTROL_SPEC
    message = _load_object(value, None, spec)
    _check_version(message, RetrainRequestMessage.VERSION)
    outcomes = message.get("window_outcomes")
    if outcomes is not None and (type(outcomes) is not int or not 100 <= outcomes <= MAX_TS):
        raise ContractError(
            f"window_outcomes must be an integer >= 100 or null, got {_shown(outcomes)}"
        )
    days = message.get("window_days")
    if days is not None and not (_is_finite_number(days) and 0 < days <= 1e6):
        raise ContractError(
            f"window_days must be a positive number (<= 1e6) or null, got {_shown(days)}"
        )
    force = message.get("force", False)
    if type(force) is not bool:
        raise ContractError(f"force must be true or false, got {_shown(force)}")
    return RetrainRequest(
        request_id=_string(message, "request_id", spec),
        requested_by=_string(message, "requested_by", spec),
        reason=_string(message, "reason", spec),
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
    degraded: str | None = None,
    explanation: dict[str, float] | None = None,
) -> bytes:
    """A ``signals`` record: the score, every part of it, and why a part is missing.

    ``degraded`` is null normally; otherwise it says what the worker could not check while
    scoring (e.g. the active-version pointer during a Redis outage). ``explanation``: the
    batch model's top contributions (``signal.explain``); the field is absent without it.
    """
    signal = {
        "schema_version": SignalMessage.VERSION,
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
        "status": blend.status,  # orjson writes an enum's value
        "reason": blend.reason,
        "scored_at": scored_at_ms,
        "degraded": degraded,
    }
    if explanation is not None:
        signal["explanation"] = explanation
    return orjson.dumps(signal)


TEXT_COPY_LIMIT = 16 * 1024
"""Originals up to this many bytes that are UTF-8 are also shown as text, for people."""

PREFIX_BYTES = 1024
"""How much of an original that is not copied is kept (base64) to help find and read it."""

REASON_CHARS = 1000
"""Reasons are cut to this many characters (they quote offending values)."""

_LETTER_OVERHEAD = 1024
"""Room kept in a dead letter for its JSON fields besides the copies."""


def encode_dead_letter(
    value: bytes | None,
    record_key: bytes | None,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    failed_at_ms: int,
    max_bytes: int = 1_000_000,
    kind: str = "invalid",
) -> bytes:
    """A dead-letter record: the original bytes (base64, exact), the reason (and its ``kind``,
    one of :data:`streams.messages.LETTER_KINDS`) and the source.

    The letter never exceeds ``max_bytes`` (the broker's record limit; a letter that cannot be
    produced would stop the stream it is meant to keep flowing): the original key and value are
    copied while their base64 fits, else left out and ``original_copied`` is false; the source
    partition and offset then find the original in its topic, and its first KiB is kept.
    """
    size = None if value is None else len(value)
    key_size = None if record_key is None else len(record_key)
    budget = (max_bytes - _LETTER_OVERHEAD - REASON_CHARS * 6 - 2 * PREFIX_BYTES * 4 // 3) * 3 // 4
    key_copied = key_size is None or key_size <= budget
    if key_copied and key_size:
        budget -= key_size
    copied = size is None or size <= budget
    # JSON may escape a character as 6; the text copy is made only when that still fits.
    if copied and size and size <= TEXT_COPY_LIMIT and (budget - size) * 4 // 3 >= 6 * size:
        text = _text_or_none(value)
    else:
        text = None
    return orjson.dumps(
        {
            "schema_version": DeadLetterMessage.VERSION,
            "reason": reason[:REASON_CHARS],
            "kind": kind,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "original_key_b64": _b64(record_key) if key_copied else None,
            "original_value_b64": _b64(value) if copied else None,
            "original_value_text": text,
            "original_size": size,
            "original_key_size": key_size,
            "original_copied": copied and key_copied,
            "original_prefix_b64": None if copied or value is None else _b64(value[:PREFIX_BYTES]),
            "original_key_prefix_b64": None
            if key_copied or record_key is None
            else _b64(record_key[:PREFIX_BYTES]),
            "failed_at": failed_at_ms,
        }
    )


def encode_message(message: Mapping[str, Any]) -> bytes:
    """JSON bytes of an outgoing message (used by producers and the simulator)."""
    return orjson.dumps(message)


def record_key_of(message: Mapping[str, Any], spec: ContractSpec) -> bytes:
    """The Kafka record key a producer must use: the message's model key."""
    return spec.model_key(message).encode()


def _load_object(
    value: bytes | None, record_key: bytes | None, spec: ContractSpec
) -> dict[str, Any]:
    if value is None:
        raise ContractError("empty record (no value)", "empty")
    if len(value) > spec.max_value_bytes:
        raise ContractError(
            f"record value is {len(value)} bytes, over limits.max_value_bytes "
            f"{spec.max_value_bytes}",
            "too_large",
        )
    if record_key is not None and len(record_key) > spec.max_key_bytes:
        raise ContractError(
            f"record key is {len(record_key)} bytes, over limits.max_key_bytes "
            f"{spec.max_key_bytes}",
            "too_large",
        )
    try:
        message = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"not valid JSON: {_cut(str(exc))}", "not_json") from None
    if not isinstance(message, dict):
        raise ContractError(
            f"message must be a JSON object, got {type(message).__name__}", "not_json"
        )
    return message


def _fast(
    decode: Callable[[bytes, ContractSpec], Fast | None],
    value: bytes | None,
    record_key: bytes | None,
    spec: ContractSpec,
) -> Fast | None:
    """The fast path (``streams.fast_decoding``) with the checks that need this module's
    constants: limits on the raw record, ts range, record key == model key. None: the contract
    decides."""
    if (
        value is None
        or record_key is None
        or len(value) > spec.max_value_bytes
        or len(record_key) > spec.max_key_bytes
    ):
        return None
    fast = decode(value, spec)
    if fast is None or not 0 <= fast.message.ts <= MAX_TS:
        return None
    if fast.model_key is None:
        fast.model_key = GLOBAL_KEY
    return fast if record_key == fast.model_key.encode() else None


def _check_version(message: Mapping[str, Any], supported: int) -> None:
    """Refuse a ``schema_version`` this code does not know (absent or null: the current)."""
    version = message.get("schema_version")
    if version is None or (type(version) is int and 1 <= version <= supported):
        return
    if type(version) is int and version > supported:
        raise ContractError(
            f"schema_version {version} is newer than this worker's {supported}: upgrade the "
            "workers before the producers"
        )
    raise ContractError(
        f"schema_version must be an integer from 1 to {supported} or absent, got {_shown(version)}"
    )


def _checked_model_key(
    message: Mapping[str, Any], record_key: bytes | None, spec: ContractSpec
) -> str:
    model_key = spec.model_key(message)
    if record_key is None or record_key != model_key.encode():
        shown = None if record_key is None else _cut(record_key.decode(errors="replace"))
        raise ContractError(
            f"record key {shown!r} must equal the model key {_cut(model_key)!r} "
            "(one model's messages must share a partition)",
            "key_mismatch",
        )
    return model_key


def _string(message: Mapping[str, Any], name: str, spec: ContractSpec) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value:
        raise ContractError(f"{name} must be a non-empty string, got {_shown(value)}")
    if len(value) * 4 > spec.max_key_bytes and len(value.encode()) > spec.max_key_bytes:
        raise ContractError(f"{name} is longer than limits.max_key_bytes {spec.max_key_bytes}")
    return value


def _timestamp(message: Mapping[str, Any]) -> int:
    value = message.get("ts")
    if type(value) is not int or not 0 <= value <= MAX_TS:
        raise ContractError(
            f"ts must be epoch milliseconds (integer, 0 <= ts < 2^63), got {_shown(value)}"
        )
    return value


def _features(message: Mapping[str, Any], spec: ContractSpec) -> dict[str, float]:
    features = message.get("features")
    if not isinstance(features, dict):
        raise ContractError("features must be an object of name: number")
    limit = spec.max_abs_feature
    out: dict[str, float] = {}
    for name in spec.features:
        if name not in features:
            raise ContractError(f"feature {name!r} is missing")
        value = features[name]
        if not _is_finite_number(value):
            raise ContractError(f"feature {name!r} must be a finite number, got {_shown(value)}")
        number = float(value)
        if not -limit <= number <= limit:
            raise ContractError(
                f"feature {name!r} is {_shown(value)}, beyond limits.max_abs_feature {limit:g}"
            )
        out[name] = number
    return out


_INT_LIMIT = 2**1023  # CPython does not fold big powers: computed once here, not per call


def _is_finite_number(value: Any) -> bool:
    if type(value) is float:
        return math.isfinite(value)
    # Python ints are unbounded: float() of a 400-digit integer raises OverflowError.
    return type(value) is int and -_INT_LIMIT < value < _INT_LIMIT


def _is_bounded_number(value: Any, limit: float) -> bool:
    return _is_finite_number(value) and -limit <= float(value) <= limit


def _shown(value: Any) -> str:
    """A short repr of an offending value for a reason (values can be megabytes long)."""
    if isinstance(value, dict | list):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    if type(value) is int and not -(10**40) < value < 10**40:
        return f"an integer of {len(str(abs(value)))} digits"
    return _cut(repr(value))


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _text_or_none(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


_CONTROL_SPEC = ContractSpec(features=(), max_key_bytes=4096, max_value_bytes=65_536)
"""Limits of control messages (retrain requests), which have no features or model key."""
