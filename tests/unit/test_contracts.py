"""Message contracts: strict decoding with reasons; signals and dead letters carry everything."""

from __future__ import annotations

import base64

import orjson
import pytest

from models.blend import Blender
from streams.contracts import (
    DEAD_LETTER_COPY_LIMIT,
    ContractError,
    ContractSpec,
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
    ],
)
def test_out_of_contract_outcomes_raise_a_reason(value, reason):
    with pytest.raises(ContractError) as caught:
        decode_outcome(value, b"global", SPEC)
    assert reason in caught.value.reason


def test_request_contract_and_signal_encoding():
    request = decode_request(
        orjson.dumps({"request_id": "r1", "key": "SYM", "ts": 9, "features": {"a": 0, "b": 1}}),
        b"global",
        SPEC,
    )
    blend = Blender(0.8, 0.2, 10).blend(0.6, 0.3, 12)
    signal = orjson.loads(encode_signal(request, blend, "v1", 12, 1000))
    assert signal == {
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
    }


def test_dead_letter_keeps_exact_bytes():
    raw = b"\x00\xffnot json"
    letter = orjson.loads(encode_dead_letter(raw, b"k", "bad", "topic", 3, 42, 7))
    assert base64.b64decode(letter["original_value_b64"]) == raw
    assert letter["original_value_text"] is None
    assert (letter["source_partition"], letter["source_offset"]) == (3, 42)


def test_dead_letters_stay_producible_for_huge_originals():
    # Copied up to the limit (base64 only: text is for small originals)...
    big = b"{" + b"x" * (DEAD_LETTER_COPY_LIMIT - 1)
    letter = orjson.loads(encode_dead_letter(big, b"k", "bad", "topic", 0, 5, 7))
    assert base64.b64decode(letter["original_value_b64"]) == big
    assert letter["original_copied"] is True and letter["original_value_text"] is None
    # ...beyond it the letter points at the source record instead of carrying a copy that
    # could not be produced (Kafka's default limit is 1 MB a message).
    huge = b"{" + b"x" * 900_000
    encoded = encode_dead_letter(huge, b"k", "bad", "topic", 0, 6, 7)
    letter = orjson.loads(encoded)
    assert len(encoded) < 10_000
    assert letter["original_value_b64"] is None and letter["original_copied"] is False
    assert letter["original_size"] == len(huge)
    assert base64.b64decode(letter["original_prefix_b64"]) == huge[:1024]
    assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (
        "topic",
        0,
        6,
    )
