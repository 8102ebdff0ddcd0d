"""Training windows read from the topic: newest N valid outcomes, or the last D days."""

from __future__ import annotations

from app.composition import contract_spec
from models.market import MarketSimulator
from streams.windows import DAY_MS, read_window


def test_windows_by_count_and_by_days(deploy):
    deployment = deploy(model={"key_field": "key"})
    names = deployment.names
    sim = MarketSimulator(seed=29, keys=("A", "B", "C"), ms_per_event=60_000)  # 1 per minute
    outcomes = sim.outcomes(12_000)
    producer = deployment.producer()
    producer.send_outcomes(outcomes[:6000])
    for key in (b"A", b"B", b"C"):
        for _ in range(40):
            producer.send_raw(names.outcomes, key, b"not json")  # invalid, among the newest
    producer.send_outcomes(outcomes[6000:])
    producer.flush()
    bootstrap, spec = deployment.endpoints.kafka, contract_spec(deployment.settings)

    everything = read_window(bootstrap, names.outcomes, spec)
    assert len(everything) == len(outcomes)
    assert everything["ts"].is_monotonic_increasing

    newest = read_window(bootstrap, names.outcomes, spec, last_outcomes=6050)
    assert len(newest) == 6050
    assert newest["ts"].min() == outcomes[-6050]["ts"]

    now = outcomes[-1]["ts"]
    two_days = read_window(bootstrap, names.outcomes, spec, last_days=2, now_ms=now)
    expected = [o for o in outcomes if o["ts"] >= now - 2 * DAY_MS]
    assert len(two_days) == len(expected)
    assert list(two_days.columns[:5]) == ["ts", "key", "model_key", "label", "realized_rr"]
    both = read_window(bootstrap, names.outcomes, spec, last_outcomes=500, last_days=2, now_ms=now)
    assert len(both) == 500
