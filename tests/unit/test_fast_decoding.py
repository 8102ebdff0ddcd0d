"""The msgspec fast path decides nothing: on any input it agrees with the contract's checks.

Each case is decoded twice -- by ``decode_outcome``/``decode_request`` (fast path first) and by
``checked_outcome``/``checked_request`` (the contract alone) -- and must give the same message
or the same reason. Inputs: hand-picked edge cases and thousands of seeded random mutations of
valid messages (values of every JSON type, bounds, duplicate keys, broken bytes).
"""

from __future__ import annotations

import copy
import json
import random

import pytest

from streams.contracts import (
    ContractError,
    ContractSpec,
    checked_outcome,
    checked_request,
    decode_outcome,
    decode_request,
)
from streams.fast_decoding import fast_outcome, fast_request

SPECS = {
    "global": ContractSpec(features=("a", "b"), max_abs_feature=1e6, max_key_bytes=16),
    "keyed": ContractSpec(features=("a", "b"), key_field="key", max_key_bytes=16),
    "other-field": ContractSpec(features=("a",), key_field="symbol", max_value_bytes=300),
}
VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    1.0,
    0.5,
    -0.0,
    1e6,
    1e6 + 1,
    -1e6,
    1e300,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63),
    10**40,
    "",
    "x",
    "SYM",
    "é" * 5,
    "k" * 17,
    "💥" * 4,
    [],
    {},
    [1],
    {"a": 1},
]
SPELLINGS = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"1E400", b"-0", b"00", b"1.", b".5"]


FAST = {decode_outcome: fast_outcome, decode_request: fast_request}


def _base(spec: ContractSpec, identifier: str) -> dict:
    """A valid message with exactly the documented fields (the fast path's input)."""
    message = {identifier: "o1", "key": "SYM", "ts": 5}
    message["features"] = {name: 1.5 for name in spec.features}
    if spec.key_field == "symbol":
        message["symbol"] = "SYM"
    return message


def _same(decode, checked, value, key, spec):
    def run(fn):
        try:
            return "ok", fn(value, key, spec)
        except ContractError as exc:
            return "refused", exc.reason

    fast, contract = run(decode), run(checked)
    assert fast == contract, (value, key)
    took_fast = FAST[decode](value, spec) is not None if isinstance(value, bytes) else False
    return "fast" if took_fast else fast[0]


def _mutations(rng: random.Random, base: dict, n: int):
    names = [*base, "features.a", "features.b", "extra", "schema_version", "deadline_ms"]
    for _ in range(n):
        message = {**base, "features": dict(base["features"])}
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(names)
            value = copy.deepcopy(rng.choice(VALUES))
            if name.startswith("features."):
                if isinstance(message.get("features"), dict):
                    message["features"][name.split(".")[1]] = value
            elif rng.random() < 0.1:
                message.pop(name, None)
            else:
                message[name] = value
        raw = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        if rng.random() < 0.1:
            raw = raw.replace(b"1.5", rng.choice(SPELLINGS), 1)
        if rng.random() < 0.05:
            raw = raw[: rng.randint(0, len(raw))]
        yield raw


@pytest.mark.parametrize("spec_name", SPECS)
def test_random_outcomes_and_requests_decode_exactly_as_the_contract_says(spec_name):
    spec = SPECS[spec_name]
    rng = random.Random(spec_name)
    key = b"global" if spec.key_field is None else b"SYM"
    kinds = {"fast": 0, "ok": 0, "refused": 0}
    outcome = {**_base(spec, "outcome_id"), "label": 1, "realized_rr": -1.0}
    for raw in _mutations(rng, outcome, 4000):
        kinds[_same(decode_outcome, checked_outcome, raw, key, spec)] += 1
    for raw in _mutations(rng, _base(spec, "request_id"), 2000):
        kinds[_same(decode_request, checked_request, raw, key, spec)] += 1
    versioned = {**_base(spec, "request_id"), "schema_version": 1, "deadline_ms": 7}
    for raw in _mutations(rng, versioned, 1000):
        kinds[_same(decode_request, checked_request, raw, key, spec)] += 1
    # All three ways were taken: fast path, contract accepting, contract refusing.
    assert kinds["fast"] > 200 and kinds["ok"] > 50 and kinds["refused"] > 1000, kinds


@pytest.mark.parametrize(
    "raw",
    [
        b'{"outcome_id":"o","key":"SYM","ts":1,"features":{"a":1,"b":2},"label":0,"label":1}',
        b'{"outcome_id":"o","key":"SYM","ts":1,"features":{"a":1,"a":"x","b":2},"label":0}',
        b'{"outcome_id":"o","key":"SYM","ts":1,"features":{"a":1,"b":2},"label":true}',
        b'{"outcome_id":"o","key":"SYM","ts":1,"features":{"a":1,"b":2},"label":1.0}',
        b'{"outcome_id":"\\ud800","key":"SYM","ts":1,"features":{"a":1,"b":2},"label":1}',
        b'{"outcome_id":"o","key":"SYM","ts":1,"features":{"a":1,"b":2},"label":1} trailing',
        b'\xef\xbb\xbf{"outcome_id":"o","key":"SYM","ts":1,"features":{"a":1,"b":2},"label":1}',
        b'{"outcome_id":"o\xff","key":"SYM","ts":1,"features":{"a":1,"b":2},"label":1}',
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
    ],
)
@pytest.mark.parametrize("record_key", [b"SYM", b"global", None, b"x" * 40])
def test_edge_cases_agree(raw, record_key):
    for spec in SPECS.values():
        _same(decode_outcome, checked_outcome, raw, record_key, spec)
