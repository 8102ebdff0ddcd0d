"""Contract suite for the state codec: exact round trips, strict refusal of bad state."""

from __future__ import annotations

import orjson
import pytest
from river import datasets

from models.codec import StateCodecError, decode_key_model, encode_key_model, summary_of
from models.keyed import KeyModel
from models.online import OnlineConfig

CONFIGS = {
    "plain": OnlineConfig(),
    "decay": OnlineConfig(decay_half_life=100),
    "decay+rr-weights": OnlineConfig(decay_half_life=300, weight_by_rr=True),
}
DATA = list(datasets.Phishing())


def _step(model: KeyModel, i: int, x: dict, y: bool) -> None:
    p = model.learner.predict_proba(x)
    model.metrics.update("online", y, p)
    model.metrics.update("batch", y, 0.3 if i % 2 else 0.8)
    model.metrics.update("blend", y, 0.5 * p + 0.25)
    model.learner.learn(x, y, model.learner.config.sample_weight(1.0 + (i % 3)))
    model.last_ts = i


@pytest.mark.parametrize("name", CONFIGS)
def test_round_trip_at_any_point_continues_bit_for_bit(name):
    config = CONFIGS[name]
    straight, restored = KeyModel.fresh(config), KeyModel.fresh(config)
    for i, (x, y) in enumerate(DATA):
        _step(straight, i, x, y)
        _step(restored, i, x, y)
        if i % 37 == 0:
            restored = decode_key_model(encode_key_model(restored), config)
    assert restored.learner.weights == straight.learner.weights
    assert restored.learner.intercept == straight.learner.intercept
    assert restored.updates == straight.updates == len(DATA)
    assert restored.summary() == straight.summary()
    assert summary_of(encode_key_model(straight)) == straight.summary()
    assert encode_key_model(restored) == encode_key_model(straight)


def test_fresh_model_round_trips():
    config = OnlineConfig()
    fresh = KeyModel.fresh(config)
    again = decode_key_model(encode_key_model(fresh), config)
    assert again.updates == 0 and again.summary() == fresh.summary()
    assert again.learner.predict_proba({"a": 1.0}) == 0.5


def _encoded() -> dict:
    model = KeyModel.fresh(OnlineConfig())
    for i, (x, y) in enumerate(DATA[:50]):
        _step(model, i, x, y)
    return orjson.loads(encode_key_model(model))


def _mutate(change):
    """A corruption that edits the document in place and returns it."""
    return lambda doc: (change(doc), doc)[1]


@pytest.mark.parametrize(
    ("corrupt", "phrase"),
    [
        (lambda d: "not a dict", "JSON object"),
        (lambda d: {**d, "v": 99}, "unsupported state version"),
        (lambda d: {k: v for k, v in d.items() if k != "learner"}, "missing field 'learner'"),
        (_mutate(lambda d: d["learner"].update(intercept="x")), "'intercept' has wrong type"),
        (_mutate(lambda d: d["learner"]["weights"].update(https=None)), "finite numbers"),
        (_mutate(lambda d: d["learner"].update(updates=-1)), "'updates' must be >= 0"),
        (_mutate(lambda d: d["learner"]["scaler"]["means"].pop("https")), "different features"),
        (_mutate(lambda d: d["metrics"].pop("batch")), "metrics must cover"),
        (_mutate(lambda d: d["metrics"]["online"]["roc_auc"]["wins"].pop()), "one count per bin"),
        (_mutate(lambda d: d["metrics"]["online"].update(correct=10**6)), "more correct"),
        (_mutate(lambda d: d.update(last_ts="yesterday")), "last_ts"),
    ],
)
def test_invalid_state_is_refused_with_a_reason(corrupt, phrase):
    payload = orjson.dumps(corrupt(_encoded()))
    with pytest.raises(StateCodecError, match=phrase):
        decode_key_model(payload, OnlineConfig())


def test_non_json_bytes_are_refused():
    with pytest.raises(StateCodecError, match="not JSON"):
        decode_key_model(b"\x80\x04\x95pickle", OnlineConfig())


def test_a_version_4_state_with_river_metric_objects_is_read():
    """States written before the metrics became plain sums (v4) keep their numbers."""
    doc = _encoded()
    for source in doc["metrics"].values():
        source["log_loss"] = {"n": float(source["n"]), "mean": source["log_loss"]}
        correct = source.pop("correct")
        source["accuracy"] = {
            "cells": [[True, True, float(correct)]],
            "rows": [],
            "cols": [],
            "n_samples": source["n"],
            "total_weight": float(source["n"]),
            "true_positives": float(correct),
        }
    doc["v"] = 4
    old = decode_key_model(orjson.dumps(doc), OnlineConfig())
    new = decode_key_model(orjson.dumps(_encoded()), OnlineConfig())
    assert old.summary() == new.summary()
    assert old.metrics.summary()["online"]["n"] == 50
