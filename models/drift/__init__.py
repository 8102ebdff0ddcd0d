"""Drift detection per model key: concept, data, label and prediction drift.

Detectors are River's (ADWIN by default) and scipy's tests; what is ours is the bookkeeping that
makes alerts trustworthy: episodes with hysteresis and cooldown (one shift, one alert, one
recovery), and state that survives restarts (explicit JSON, see :mod:`models.drift.codec`).
"""
