"""Client messages as the workers read them: ``schema_version`` set, the record key the model
key, and the worker's own contract checked before anything is sent (with the workers' own
decoders, msgspec fast path first: the verdicts are the contract's, at ~1 us a message)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from streams.contracts import ContractSpec, decode_outcome, decode_request
from streams.messages import SignalRequestMessage, TradeOutcomeMessage
from streams.records import now_ms


def outcome_record(message: Mapping[str, Any], spec: ContractSpec) -> tuple[bytes, bytes]:
    """``(record key, value)`` of a trade outcome; raises
    :class:`~streams.contracts.ContractError` with the reason a worker would dead-letter it."""
    value = orjson.dumps({"schema_version": TradeOutcomeMessage.VERSION, **message})
    key = spec.model_key(message).encode()
    decode_outcome(value, key, spec)
    return key, value


def request_record(message: Mapping[str, Any], spec: ContractSpec) -> tuple[bytes, bytes]:
    """``(record key, value)`` of a signal request, checked as :func:`outcome_record`."""
    value = orjson.dumps({"schema_version": SignalRequestMessage.VERSION, **message})
    key = spec.model_key(message).encode()
    decode_request(value, key, spec)
    return key, value


def outcome(
    outcome_id: str,
    key: str,
    features: Mapping[str, float],
    label: int,
    realized_rr: float | None = None,
    ts: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A ``trade-outcomes`` message (``ts`` defaults to now; ``fields``: e.g. the model-key
    field when ``model.key_field`` names a field of its own)."""
    return {
        "outcome_id": outcome_id,
        "key": key,
        "ts": now_ms() if ts is None else ts,
        "features": dict(features),
        "label": label,
        "realized_rr": realized_rr,
        **fields,
    }
