"""Drift monitors: fast on real shifts, quiet otherwise, one alert per shift, restartable."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from models.drift.codec import decode_drift, encode_drift
from models.drift.concept import ConceptMonitor, make_detector
from models.drift.config import DriftConfig
from models.drift.distribution import ReferenceBins, psi
from models.drift.label import LabelMonitor
from models.drift.monitor import DriftMonitor, ModelReference
from models.training import distribution_reference


def _errors(rng, n, rate):
    return (rng.random(n) < rate).astype(float)


def _run_concept(monitor, errors, start=0):
    events = []
    for i, error in enumerate(errors, start=start + 1):
        events += [(i, e) for e in monitor.update("k", {"batch": float(error)}, i)]
    return events


def test_a_ten_point_error_jump_is_detected_within_1000_outcomes_once():
    rng = np.random.default_rng(1)
    monitor = ConceptMonitor(DriftConfig(concept_sources=("batch",)))
    errors = np.concatenate([_errors(rng, 20_000, 0.30), _errors(rng, 5_000, 0.40)])
    events = _run_concept(monitor, errors)
    alerts = [(i, e) for i, e in events if e.event == "alert"]
    assert len(alerts) == 1
    at, alert = alerts[0]
    assert 20_000 < at <= 21_000
    assert alert.kind == "concept" and alert.source == "batch"
    assert alert.action == "retrain_scheduled"
    assert alert.statistic >= alert.threshold


def test_stationary_errors_raise_no_alert_in_100k_outcomes():
    rng = np.random.default_rng(2)
    monitor = ConceptMonitor(DriftConfig(concept_sources=("batch",)))
    assert _run_concept(monitor, _errors(rng, 100_000, 0.3)) == []


def test_hysteresis_and_cooldown_one_alert_one_recovery_per_shift():
    rng = np.random.default_rng(3)
    config = DriftConfig(concept_sources=("batch",), cooldown_outcomes=3000)
    monitor = ConceptMonitor(config)
    errors = np.concatenate(
        [_errors(rng, 10_000, 0.3), _errors(rng, 3_000, 0.55), _errors(rng, 10_000, 0.3)]
    )
    kinds = [e.event for _, e in _run_concept(monitor, errors)]
    assert kinds == ["alert", "recovery"]


def test_improvements_and_unwatched_sources_do_not_alert():
    rng = np.random.default_rng(4)
    monitor = ConceptMonitor(DriftConfig())  # alerts from batch only
    errors = np.concatenate([_errors(rng, 10_000, 0.4), _errors(rng, 5_000, 0.2)])
    events = []
    for i, error in enumerate(errors, start=1):
        events += monitor.update("k", {"batch": float(error), "online": 1.0 - error}, i)
    assert events == []


def test_restored_state_neither_forgets_nor_repeats_an_open_alert():
    rng = np.random.default_rng(5)
    config = DriftConfig(concept_sources=("batch",), kinds=("concept",))
    straight, restored = DriftMonitor(config), DriftMonitor(config)
    errors = np.concatenate([_errors(rng, 10_000, 0.3), _errors(rng, 4_000, 0.6)])
    outcome = {"f": 0.0}
    seen = {"straight": [], "restored": []}
    for i, error in enumerate(errors):
        p = 0.9 if error else 0.1  # a prediction that is wrong exactly when error == 1
        for name, monitor in (("straight", straight), ("restored", restored)):
            events, _ = monitor.update("k", outcome, False, p, None, None, None)
            seen[name] += [(e.event, e.at_outcome) for e in events]
        if i % 997 == 0:
            restored = decode_drift(orjson.loads(orjson.dumps(encode_drift(restored))), config)
    # Detectors are restored by replaying their recent inputs, so the alert may come a few
    # outcomes earlier or later than without restarts -- but exactly once, and the open
    # episode (with its baseline) survives every restart.
    assert [e for e, _ in seen["straight"]] == [e for e, _ in seen["restored"]] == ["alert"]
    assert abs(seen["straight"][0][1] - seen["restored"][0][1]) <= 300
    assert restored.concept.episodes["batch"].open
    assert restored.concept.streams["batch"].baseline == pytest.approx(
        straight.concept.streams["batch"].baseline, abs=0.01
    )


def test_a_restored_detector_is_a_fresh_one_fed_the_saved_errors():
    # Restoring replays the saved window lazily (on first use); the detector must behave exactly
    # as one that was fed that window right away, from the first outcome after the restore.
    rng = np.random.default_rng(8)
    config = DriftConfig(concept_sources=("batch",), kinds=("concept",), replay_window=3000)
    errors = np.concatenate([_errors(rng, 6_000, 0.3), _errors(rng, 3_000, 0.6)])
    monitor = ConceptMonitor(config)
    _run_concept(monitor, errors[:5_000])
    doc = orjson.loads(orjson.dumps(encode_drift(_with_concept(config, monitor))))
    stream = decode_drift(doc, config).concept.streams["batch"]
    eager = make_detector(config)
    for error in errors[2_000:5_000]:
        eager.update(float(error))
    fired = []
    for i, error in enumerate(errors[5_000:], start=5_001):
        stream.update(float(error), i, freeze_baseline=False)
        eager.update(float(error))
        assert stream.detector.drift_detected == eager.drift_detected
        assert stream.window == float(eager.width)
        fired += [i] if eager.drift_detected else []
    assert fired, "the shift at 6,000 should make the detector fire"


def _with_concept(config, concept):
    monitor = DriftMonitor(config)
    monitor.concept = concept
    return monitor


def test_reference_bins_and_psi():
    bins = ReferenceBins({"quantiles": list(np.linspace(0.0, 10.0, 11))})
    assert np.allclose(bins.expected, 0.1)
    assert bins.bin_of(0.5) == 0 and bins.bin_of(9.5) == 9 and bins.bin_of(20) == 9
    binary = ReferenceBins({"quantiles": [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]})
    assert np.allclose(binary.expected, [0.5, 0.5, 0.0])
    exact = ReferenceBins(distribution_reference(np.array([0] * 70 + [1] * 30)))
    assert exact.discrete and exact.expected.sum() == pytest.approx(1.0)
    assert exact.expected[exact.bin_of(0)] == pytest.approx(0.7)
    assert exact.expected[exact.bin_of(1)] == pytest.approx(0.3)
    same = np.full(10, 100.0)
    assert psi(same, bins.expected) == pytest.approx(0.0)
    shifted = np.array([0, 0, 0, 0, 0, 200, 200, 200, 200, 200], dtype=float)
    assert psi(shifted, bins.expected) > 2.0


def test_data_drift_alerts_once_on_a_shifted_feature_and_recovers_on_a_new_reference():
    rng = np.random.default_rng(6)
    config = DriftConfig(kinds=("data",))
    monitor = DriftMonitor(config)
    deciles = distribution_reference(rng.normal(0, 1, 50_000))
    old = ModelReference("v1", {"x": deciles, "y": deciles}, None, None)
    events = []
    for shift, count, reference in ((0.0, 5000, old), (1.0, 5000, old)):
        for _ in range(count):
            values = {"x": float(rng.normal(shift, 1)), "y": float(rng.normal(0, 1))}
            events += monitor.update("k", values, True, None, None, None, reference)[0]
    assert [e.event for e in events] == ["alert"]
    assert list(events[0].details["drifted"]) == ["x"]
    new_deciles = distribution_reference(rng.normal(1, 1, 50_000))
    new = ModelReference("v2", {"x": new_deciles, "y": deciles}, None, None)
    for _ in range(3000):
        values = {"x": float(rng.normal(1.0, 1)), "y": float(rng.normal(0, 1))}
        events += monitor.update("k", values, True, None, None, None, new)[0]
    assert [e.event for e in events] == ["alert", "recovery"]


def test_label_drift_needs_a_real_and_significant_shift():
    rng = np.random.default_rng(7)
    monitor = LabelMonitor(DriftConfig())
    monitor.set_reference("v1", 0.5)
    events = []
    for n, won in enumerate(rng.random(6000) < 0.5, start=1):
        monitor.add(bool(won))
        if n % 500 == 0:
            events += monitor.check("k", n)
    assert events == []
    for n, won in enumerate(rng.random(4000) < 0.62, start=6001):
        monitor.add(bool(won))
        if n % 500 == 0:
            events += monitor.check("k", n)
    assert [e.event for e in events] == ["alert"]
    assert events[0].details["p_value"] < 0.001


def test_invalid_configs_are_refused():
    with pytest.raises(ValueError, match="kinds"):
        DriftConfig(kinds=("vibes",))
    with pytest.raises(ValueError, match="alert_sources"):
        DriftConfig(concept_sources=("online",), alert_sources=("batch",))
    with pytest.raises(ValueError, match="detector"):
        DriftConfig(detector="magic")


def test_a_checkpoint_holds_no_reference_bins_and_a_restore_continues_exactly():
    """The bins are the model's metadata: a restored monitor is re-attached to them on its
    next outcome and its counts, samples and PSI are those of a monitor never restored."""
    rng = np.random.default_rng(11)
    config = DriftConfig(kinds=("data", "prediction"))
    deciles = distribution_reference(rng.normal(0, 1, 20_000))
    predictions = distribution_reference(rng.random(5_000))
    reference = ModelReference("v1", {"x": deciles, "y": deciles}, predictions, None)
    straight, restored = DriftMonitor(config), DriftMonitor(config)
    for i in range(3_000):
        values = {"x": float(rng.normal(0.3, 1)), "y": float(rng.normal(0, 1))}
        p = float(rng.random())
        for monitor in (straight, restored):
            monitor.update("k", values, True, p, None, None, reference)
        if i % 701 == 0:
            doc = orjson.loads(orjson.dumps(encode_drift(restored)))
            assert "references" not in doc["data"] and "quantiles" not in orjson.dumps(doc).decode()
            restored = decode_drift(doc, config)
            assert restored.detached and restored.data.statistics() == {}
    assert not restored.detached
    assert restored.data.counts == straight.data.counts
    assert restored.data.statistics() == straight.data.statistics()
    assert restored.prediction.statistics() == straight.prediction.statistics()
    assert (restored.data.samples["x"].values() == straight.data.samples["x"].values()).all()
    # A restore under a different model starts the comparison over, as a model switch does.
    v2 = ModelReference("v2", {"x": deciles, "y": deciles}, None, None)
    again = decode_drift(orjson.loads(orjson.dumps(encode_drift(restored))), config)
    again.update("k", {"x": 0.0, "y": 0.0}, True, None, None, None, v2)
    assert again.model_version == "v2" and again.data.seen == 1


@pytest.mark.parametrize("appended", [0, 3, 5, 12])
def test_a_ring_survives_its_checkpoint_encoding_in_order(appended):
    from models.drift.ring import Ring

    ring = Ring(5, np.float32)
    for i in range(appended):
        ring.append(i * 1.5)
    doc = orjson.loads(orjson.dumps(ring.encode()))
    held = ring.values().tolist()
    again = Ring.decode(doc, 5, np.float32)
    assert again.values().tolist() == held and len(again) == len(ring) == min(5, appended)
    again.append(99.0)
    ring.append(99.0)
    assert again.values().tolist() == ring.values().tolist()
    smaller = Ring.decode(doc, 2, np.float32)  # a smaller ring keeps the newest values
    assert smaller.values().tolist() == held[-2:]
    with pytest.raises(ValueError):
        Ring.decode({**doc, "count": 99}, 5, np.float32)


@pytest.mark.parametrize(("check_every", "ks_samples"), [(500, 200), (50, 30), (40, 100)])
def test_sample_writes_skipped_by_outcome_number_leave_every_check_the_same(
    check_every, ks_samples
):
    """Keeping only the values a check will read (by ``n``) gives the checks the same samples
    and counts as keeping every value, across reference changes mid-interval."""
    from models.drift.distribution import DistributionMonitor

    rng = np.random.default_rng(check_every)
    config = DriftConfig(check_every=check_every, ks_samples=ks_samples, warmup=10)
    every, windowed = DistributionMonitor("data", config), DistributionMonitor("data", config)
    references = [
        {"x": ReferenceBins(distribution_reference(rng.normal(m, 1, 5000)))} for m in (0, 1)
    ]
    switch_at = {0: 0, 7 * check_every + 13: 1, 9 * check_every - 3: 0}
    for n in range(1, 12 * check_every + 1):
        if n - 1 in switch_at:
            version = f"v{n}"
            every.set_reference(version, references[switch_at[n - 1]])
            windowed.set_reference(version, references[switch_at[n - 1]])
        values = {"x": float(rng.normal(0.5 * (n > 6 * check_every), 1))}
        every.add(values)
        windowed.add(values, n)
        if n % check_every == 0:
            assert every.samples["x"].values().tolist() == windowed.samples["x"].values().tolist()
            assert every.counts == windowed.counts
            assert every.check("k", n) == windowed.check("k", n)
