"""Message contracts: strict decoding with reasons; signals and dead letters carry everything."""

from __future__ import annotations

import base64

import orjson
import pytest

from models.blend import Blender
from streams.contracts import (
    ContractError,
    ContractSpec,
    checked_request,
    decode_outcome,
    decode_request,
    encode_dead_letter,
    encode_signal,
)

SPEC = ContractSpec(features=("a", "b"))
KEYED = ContractSpec(features=("a", "b"), key_field="key")
OUTCOME = {
    "outcome_id": "o1",
    "key": "SYM",
    "ts": 5,
    "features": {"a": 1, "b": 2.5, "c": 9},
    "label": 1,
    "realized_rr": -1.0,
}


def _bytes(**changes) -> bytes:
    return orjson.dumps({**OUTCOME, **changes})


def test_valid_outcome_decodes_to_configured_features_in_order():
    outcome = decode_outcome(_bytes(), b"global", SPEC)
    assert outcome.features == {"a": 1.0, "b": 2.5}
    assert list(outcome.features) == ["a", "b"]
    assert outcome.model_key == "global" and outcome.key == "SYM"
    assert outcome.realized_rr == -1.0


def test_model_key_comes_from_the_key_field_and_must_match_the_record_key():
    assert decode_outcome(_bytes(), b"SYM", KEYED).model_key == "SYM"
    with pytest.raises(ContractError, match="must equal the model key 'SYM'"):
        decode_outcome(_bytes(), b"global", KEYED)
    with pytest.raises(ContractError, match="model key field 'key'"):
        decode_outcome(_bytes(key=""), b"", KEYED)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty record"),
        (b"", "not valid JSON"),
        (b"3", "must be a JSON object"),
        (_bytes(label=0.0), "label must be 0 or 1"),
        (_bytes(label=None), "label must be 0 or 1"),
        (_bytes(ts=-1), "ts must be epoch milliseconds"),
        (_bytes(ts=1.5), "ts must be epoch milliseconds"),
        (_bytes(outcome_id=7), "outcome_id must be a non-empty string"),
        (_bytes(features={"a": 1}), "feature 'b' is missing"),
        (_bytes(features={"a": 1, "b": True}), "feature 'b' must be a finite number"),
        (_bytes(features={"a": 1, "b": [2]}), "feature 'b' must be a finite number"),
        (_bytes(realized_rr=True), "realized_rr must be a finite number"),
        # Finite but huge: squared in the scaler's variance they overflow to inf, then NaN.
        (_bytes(features={"a": 1e200, "b": 1}), "beyond limits.max_abs_feature"),
        (_bytes(features={"a": -1e154, "b": 1}), "beyond limits.max_abs_feature"),
        (_bytes(features={"a": 3.5e38, "b": 1}), "beyond limits.max_abs_feature"),
        (_bytes(features={"a": 1, "b": 2}).replace(b'"a":1', b'"a":' + b"9" * 400), "infinity"),
        (_bytes(realized_rr=1e300), "realized_rr must be a finite number with"),
        (_bytes(ts=2**63), "ts must be epoch milliseconds"),
        (_bytes(ts=1e30), "ts must be epoch milliseconds"),
        (_bytes(ts=2**64 - 1), "ts must be epoch milliseconds"),
        (_bytes(outcome_id="x" * 5000), "outcome_id is longer than limits.max_key_bytes"),
        (_bytes(key="\u00e9" * 600), "key is longer than limits.max_key_bytes"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "not valid JSON"),
        (b'{"label": 1, "x": "\xff\xfe"}', "not valid JSON"),
        (b'{"ts": NaN}', "not valid JSON"),
        (b'{"ts": Infinity}', "not valid JSON"),
        (b'{"ts": 1e999}', "not valid JSON"),
        (b"{" + b" " * 300_000 + b"}", "over limits.max_value_bytes"),
    ],
)
def test_out_of_contract_outcomes_raise_a_reason(value, reason):
    with pytest.raises(ContractError) as caught:
        decode_outcome(value, b"global", SPEC)
    assert reason in caught.value.reason


def test_limits_are_inclusive_and_configurable():
    at_limit = decode_outcome(_bytes(features={"a": 1e12, "b": -1e12}), b"global", SPEC)
    assert at_limit.features == {"a": 1e12, "b": -1e12}
    assert decode_outcome(_bytes(ts=2**63 - 1), b"global", SPEC).ts == 2**63 - 1
    loose = ContractSpec(features=("a", "b"), max_abs_feature=1e300)
    assert decode_outcome(_bytes(features={"a": 1e200, "b": 1}), b"global", loose)


def test_oversized_record_keys_are_refused_before_anything_else():
    key = b"k" * 300_000
    with pytest.raises(ContractError, match="record key is 300000 bytes"):
        decode_outcome(_bytes(), key, KEYED)


def test_reasons_stay_short_whatever_the_value_holds():
    with pytest.raises(ContractError) as caught:
        decode_outcome(_bytes(features={"a": "y" * 100_000, "b": 1}), b"global", SPEC)
    assert len(caught.value.reason) < 200


def test_request_contract_and_signal_encoding():
    request = decode_request(
        orjson.dumps({"request_id": "r1", "key": "SYM", "ts": 9, "features": {"a": 0, "b": 1}}),
        b"global",
        SPEC,
    )
    blend = Blender(0.8, 0.2, 10).blend(0.6, 0.3, 12)
    signal = orjson.loads(encode_signal(request, blend, "v1", 12, 1000))
    assert signal == {
        "schema_version": 1,
        "request_id": "r1",
        "key": "SYM",
        "model_key": "global",
        "ts": 9,
        "score": 0.8 * 0.6 + 0.2 * 0.3,
        "p_batch": 0.6,
        "p_online": 0.3,
        "w_batch": 0.8,
        "w_online": 0.2,
        "batch_version": "v1",
        "online_updates": 12,
        "status": "ok",
        "reason": None,
        "scored_at": 1000,
        "degraded": None,
    }


def test_dead_letter_keeps_exact_bytes():
    raw = b"\x00\xffnot json"
    letter = orjson.loads(encode_dead_letter(raw, b"k", "bad", "topic", 3, 42, 7))
    assert base64.b64decode(letter["original_value_b64"]) == raw
    assert letter["original_value_text"] is None
    assert (letter["source_partition"], letter["source_offset"]) == (3, 42)


@pytest.mark.parametrize("limit", [1_000_000, 100_000])
@pytest.mark.parametrize(
    ("key_size", "value_size"),
    [
        (1, 10),
        (1, 60_000),
        (1, 300_000),
        (1, 740_000),
        (1, 999_000),
        (300_000, 10),
        (300_000, 600_000),
        (990_000, 990_000),
    ],
)
def test_dead_letters_always_fit_the_broker_limit(limit, key_size, value_size):
    key, value = b"k" * key_size, b"{" + b"\x01" * (value_size - 1)
    encoded = encode_dead_letter(value, key, "r" * 50_000, "topic", 0, 6, 7, max_bytes=limit)
    assert len(encoded) <= limit
    letter = orjson.loads(encoded)
    assert len(letter["reason"]) <= 1000
    assert letter["original_size"] == value_size and letter["original_key_size"] == key_size
    assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (
        "topic",
        0,
        6,
    )
    if letter["original_copied"]:
        assert base64.b64decode(letter["original_value_b64"]) == value
        assert base64.b64decode(letter["original_key_b64"]) == key
    else:  # points at the source record, keeps the first KiB of what it could not copy
        if letter["original_value_b64"] is None:
            assert base64.b64decode(letter["original_prefix_b64"]) == value[:1024]
        if letter["original_key_b64"] is None:
            assert base64.b64decode(letter["original_key_prefix_b64"]) == key[:1024]


def test_dead_letters_copy_what_fits():
    big = b"{" + b"x" * 500_000
    letter = orjson.loads(encode_dead_letter(big, b"k", "bad", "topic", 0, 5, 7))
    assert base64.b64decode(letter["original_value_b64"]) == big
    assert letter["original_copied"] is True and letter["original_value_text"] is None
    huge = b"{" + b"x" * 900_000
    encoded = encode_dead_letter(huge, b"k", "bad", "topic", 0, 6, 7)
    assert len(encoded) < 10_000
    assert orjson.loads(encoded)["original_copied"] is False


def test_dead_letterer_never_repeats_an_oversized_key_as_the_record_key():
    from streams.dead_letters import DeadLetterer, Refusal
    from streams.records import InputRecord

    letterer = DeadLetterer("in", "in.dlq", lambda: 1, max_key_bytes=1024)
    small = letterer(InputRecord(0, 1, b"SYM", b"{}"), Refusal("invalid", "bad"))
    assert small.key == b"SYM"
    big = letterer(InputRecord(0, 2, b"k" * 300_000, b"{" * 700_000), Refusal("too_large", "bad"))
    assert big.key is None and len(big.value) <= 1_000_000


def test_requests_carry_an_optional_deadline_and_inputs_an_optional_known_version():
    base = {"request_id": "r1", "key": "SYM", "ts": 9, "features": {"a": 0, "b": 1}}
    for decoded in (decode_request, checked_request):
        assert decoded(orjson.dumps(base), b"global", SPEC).deadline_ms is None
        timed = decoded(orjson.dumps({**base, "deadline_ms": 50}), b"global", SPEC)
        assert timed.deadline_ms == 50
        versioned = {**base, "schema_version": 1}
        assert decoded(orjson.dumps(versioned), b"global", SPEC).request_id == "r1"
    for deadline in (-1, 2**63, "soon", 1.5, True):
        with pytest.raises(ContractError, match="deadline_ms must be epoch milliseconds"):
            decode_request(orjson.dumps({**base, "deadline_ms": deadline}), b"global", SPEC)
    with pytest.raises(ContractError, match="schema_version 2 is newer than this worker's 1"):
        decode_request(orjson.dumps({**base, "schema_version": 2}), b"global", SPEC)
    with pytest.raises(ContractError, match="schema_version must be an integer"):
        decode_outcome(_bytes(schema_version="1"), b"global", SPEC)
    assert decode_outcome(_bytes(schema_version=1), b"global", SPEC).label in (0, 1)
