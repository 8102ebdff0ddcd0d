"""Explicit JSON state of a :class:`~models.drift.monitor.DriftMonitor` (no pickle).

River keeps ADWIN's buckets in a Rust object that can be neither pickled nor inspected, so a
detector is saved as the last ``replay_window`` errors it saw (bit-packed) and restored by
replaying them into a fresh detector. Everything that decides alerts -- baselines, recent
levels, suspicion windows, open episodes, cooldowns, counts -- is saved exactly, so a restart
neither forgets an open alert nor raises it again.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

from models.drift.alerts import Episode
from models.drift.concept import ErrorStream
from models.drift.config import DriftConfig
from models.drift.distribution import DistributionMonitor
from models.drift.monitor import DriftMonitor
from models.drift.ring import Ring


class DriftStateError(ValueError):
    """Stored drift state cannot be decoded."""


def encode_drift(monitor: DriftMonitor) -> dict[str, Any]:
    """Plain data for the key's state document."""
    return {
        "n": monitor.n,
        "model_version": monitor.model_version,
        "concept": {
            "streams": {s: _encode_stream(st) for s, st in monitor.concept.streams.items()},
            "episodes": {s: e.as_dict() for s, e in monitor.concept.episodes.items()},
        },
        "data": _encode_distribution(monitor.data),
        "prediction": _encode_distribution(monitor.prediction),
        "label": {
            "reference_version": monitor.label.reference_version,
            "reference_rate": monitor.label.reference_rate,
            "n": monitor.label.n,
            "wins": monitor.label.wins,
            "episode": monitor.label.episode.as_dict(),
        },
    }


def decode_drift(doc: Any, config: DriftConfig) -> DriftMonitor:
    """Rebuild a monitor (detectors replayed) from :func:`encode_drift` output."""
    try:
        monitor = DriftMonitor(config)
        monitor.n = int(doc["n"])
        monitor.model_version = doc["model_version"]
        for source, data in doc["concept"]["streams"].items():
            if source in monitor.concept.streams:
                _decode_stream(monitor.concept.streams[source], data)
        for source, data in doc["concept"]["episodes"].items():
            if source in monitor.concept.episodes:
                monitor.concept.episodes[source] = Episode.from_dict(data)
        _decode_distribution(monitor.data, doc["data"])
        _decode_distribution(monitor.prediction, doc["prediction"])
        label = doc["label"]
        monitor.label.reference_version = label["reference_version"]
        monitor.label.reference_rate = label["reference_rate"]
        monitor.label.n, monitor.label.wins = float(label["n"]), float(label["wins"])
        monitor.label.episode = Episode.from_dict(label["episode"])
        monitor.detached = monitor.model_version is not None
    except (KeyError, TypeError, ValueError) as exc:
        raise DriftStateError(f"drift state is invalid: {exc!r}") from None
    return monitor


def _encode_stream(stream: ErrorStream) -> dict[str, Any]:
    bits = stream.replay.values()
    return {
        "replay": base64.b64encode(np.packbits(bits).tobytes()).decode(),
        "replay_length": len(bits),
        "baseline": [stream.baseline_mean.value, stream.baseline_mean.weight],
        "recent": [stream.recent_mean.value, stream.recent_mean.weight],
        "seen": stream.seen,
        "suspect_until": stream.suspect_until,
    }


def _decode_stream(stream: ErrorStream, data: dict[str, Any]) -> None:
    packed = np.frombuffer(base64.b64decode(data["replay"]), dtype=np.uint8)
    bits = np.unpackbits(packed)[: int(data["replay_length"])]
    stream.replay_into_detector(bits)
    stream.baseline_mean.value, stream.baseline_mean.weight = data["baseline"]
    stream.recent_mean.value, stream.recent_mean.weight = data["recent"]
    stream.seen, stream.suspect_until = int(data["seen"]), int(data["suspect_until"])


def _encode_distribution(monitor: DistributionMonitor) -> dict[str, Any]:
    # No reference bins: they are the batch model's metadata (see DriftMonitor.attach).
    return {
        "reference_version": monitor.reference_version,
        "counts": monitor.counts,
        "samples": {name: ring.encode() for name, ring in monitor.samples.items()},
        "seen": monitor.seen,
        "episode": monitor.episode.as_dict(),
    }


def _decode_distribution(monitor: DistributionMonitor, data: dict[str, Any]) -> None:
    counts: dict[str, list[float]] = {}
    for name, values in data["counts"].items():
        if not isinstance(values, list) or not all(
            isinstance(v, float | int) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            raise ValueError(f"counts of {name!r} must be a list of finite numbers")
        counts[name] = [float(v) for v in values]
    samples = {}
    for name, saved in data["samples"].items():
        if isinstance(saved, str):  # state version <= 4: the values in order, base64
            ring = Ring(monitor.config.ks_samples, np.float32)
            ring.extend(np.frombuffer(base64.b64decode(saved), dtype=np.float32))
        else:
            ring = Ring.decode(saved, monitor.config.ks_samples, np.float32)
        samples[name] = ring
    if set(samples) != set(counts):
        raise ValueError("samples and counts cover different columns")
    version = data["reference_version"]
    if version is not None and not isinstance(version, str):
        raise ValueError("reference_version must be a string or null")
    monitor.restore(version, counts, samples, int(data["seen"]), Episode.from_dict(data["episode"]))
