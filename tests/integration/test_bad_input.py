"""Malformed messages go to the dead-letter topics with a reason; nothing valid is lost."""

from __future__ import annotations

import base64

import orjson
import pytest

from models.market import MarketSimulator
from streams.reader import read_topic
from tests.integration.infra import ENGINES
from tests.schema_check import assert_valid

GOOD = MarketSimulator(seed=2).outcomes(1)[0]


def _variant(**changes) -> bytes:
    message = {**GOOD, "features": dict(GOOD["features"])}
    for name, value in changes.items():
        if name.startswith("feature_"):
            feature = name.removeprefix("feature_")
            if value is ...:
                del message["features"][feature]
            else:
                message["features"][feature] = value
        elif value is ...:
            del message[name]
        else:
            message[name] = value
    return orjson.dumps(message)


# (record key, value, a phrase the reason must contain)
BAD_OUTCOMES = [
    (b"global", b"{not json", "not valid JSON"),
    (b"global", b"[1, 2, 3]", "must be a JSON object"),
    (b"global", b'{"label": 1, "features": {"ret_1": 1e999}}', "not valid JSON"),
    (b"global", b'{"ret_1": NaN}', "not valid JSON"),
    (b"global", _variant(feature_ret_5=...), "feature 'ret_5' is missing"),
    (b"global", _variant(feature_rsi_14="55"), "feature 'rsi_14' must be a finite number"),
    (b"global", _variant(feature_vol_20=None), "feature 'vol_20' must be a finite number"),
    (b"global", _variant(label=2), "label must be 0 or 1"),
    (b"global", _variant(label="1"), "label must be 0 or 1"),
    (b"global", _variant(label=True), "label must be 0 or 1"),
    (b"global", _variant(outcome_id=...), "outcome_id must be a non-empty string"),
    (b"global", _variant(ts="2026-01-01"), "ts must be epoch milliseconds"),
    (b"global", _variant(realized_rr="big"), "realized_rr must be a finite number"),
    (b"global", _variant(features=[1, 2]), "features must be an object"),
    (b"SYM1", _variant(), "must equal the model key"),
    (None, _variant(), "must equal the model key"),
    (b"global", None, "empty record"),
    # Too big to copy whole into a dead letter under Kafka's 1 MB message limit: must not stop
    # the stream (the letter points at the source record instead).
    (b"global", b"{" + b" " * 300_000, "over limits.max_value_bytes"),
    (b"global", b"[" + b"7," * 400_000 + b"7]", "over limits.max_value_bytes"),
    # Hostile values: finite but huge (they overflowed the scaler to NaN), int64 overflow,
    # deep nesting, invalid UTF-8, an oversized record key.
    (b"global", _variant(feature_ret_1=1e200), "beyond limits.max_abs_feature"),
    (b"global", _variant(feature_ret_1=-1e154), "beyond limits.max_abs_feature"),
    (b"global", _variant(feature_vol_20=3.5e38), "beyond limits.max_abs_feature"),
    (b"global", _variant(ts=10**19).replace(b"10000000000000000000", b"9" * 400), "infinity"),
    (b"global", _variant(ts=2**63), "ts must be epoch milliseconds"),
    (b"global", b'{"a":' * 5000 + b"1" + b"}" * 5000, "not valid JSON"),
    (b"global", b'{"outcome_id": "\xff\xfe"}', "not valid JSON"),
    (b"k" * 300_000, _variant(), "over limits.max_key_bytes"),
    (b"global", _variant(outcome_id="o" * 5000), "longer than limits.max_key_bytes"),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_outcomes_and_requests_are_dead_lettered_and_the_stream_flows(deploy, tmp_path, engine):
    deployment = deploy(topics={"partitions": 1}, processing={"engine": engine})
    names = deployment.names
    sim = MarketSimulator(seed=3)
    valid = sim.outcomes(10 * len(BAD_OUTCOMES) + 10)
    producer = deployment.producer()
    # Interleave: 10 valid, then one bad, ... so every bad record sits between valid ones.
    bad_iter = iter(BAD_OUTCOMES)
    for i in range(0, len(valid), 10):
        producer.send_outcomes(valid[i : i + 10])
        bad = next(bad_iter, None)
        if bad is not None:
            producer.send_raw(names.outcomes, bad[0], bad[1])
    requests = sim.requests(50)
    producer.send_requests(requests[:25])
    producer.send_raw(names.requests, b"global", b'{"request_id": "r-bad", "features": {}}')
    producer.send_raw(names.requests, b"global", b"\xff\xfe not utf8")
    producer.send_requests(requests[25:])
    producer.flush()

    worker = deployment.worker(tmp_path).start()
    total = len(valid) + len(BAD_OUTCOMES)
    deployment.wait_for(lambda: deployment.applied_offsets()[0] == total - 1, 60, "all applied")
    deployment.wait_for(lambda: len(deployment.read(names.signals)) == 50, 30, "50 signals")
    deployment.wait_for(
        lambda: len(deployment.read(names.outcomes_dead_letter)) == len(BAD_OUTCOMES),
        30,
        "dead letters",
    )

    assert deployment.key_models()["global"].updates == len(valid)
    letters = deployment.read(names.outcomes_dead_letter)
    assert len(letters) == len(BAD_OUTCOMES)
    sources = {r.offset: r.value for r in read_topic(deployment.endpoints.kafka, names.outcomes)}
    for letter, (key, value, phrase) in zip(letters, BAD_OUTCOMES, strict=True):
        assert phrase in letter["reason"], (phrase, letter["reason"])
        assert letter["source_topic"] == names.outcomes
        assert letter["source_partition"] == 0
        original = letter["original_value_b64"]
        if not letter["original_copied"]:
            assert len(value) > 500_000 or len(key) > 500_000
            assert letter["original_size"] == len(value)
            assert sources[letter["source_offset"]] == value  # still where the letter points
        else:
            assert (base64.b64decode(original) if original is not None else None) == value
            assert (base64.b64decode(letter["original_key_b64"]) if key else None) == key
    offsets = [letter["source_offset"] for letter in letters]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)

    request_letters = deployment.read(names.requests_dead_letter)
    reasons = [letter["reason"] for letter in request_letters]
    assert len(reasons) == 2
    assert "key must be a non-empty string" in reasons[0]
    assert "not valid JSON" in reasons[1]
    assert request_letters[1]["original_value_text"] is None  # not UTF-8: bytes kept in base64
    # Every letter -- huge, binary, keyless originals included -- follows its schema.
    assert assert_valid("dead-letter", letters + request_letters) == len(BAD_OUTCOMES) + 2
    assert {s["request_id"] for s in deployment.read(names.signals)} == {
        r["request_id"] for r in requests
    }

    # The worker is still alive and still learning after all that.
    producer.send_outcomes(sim.outcomes(30))
    producer.flush()
    deployment.wait_for(
        lambda: deployment.applied_offsets()[0] == total + 30 - 1, 30, "learning after bad input"
    )
    assert worker.alive()
    assert deployment.key_models()["global"].updates == len(valid) + 30
