"""Window decay, spelled as the design does (window + factor) or as a half-life: one decay."""

from __future__ import annotations

import math

import pytest

from app.composition import online_config
from config import SettingsError, load_settings
from models.decay import fading_factor


def _online(**env: str):
    return online_config(load_settings(environ=env))


@pytest.mark.parametrize("k", [1, 2, 5])
def test_an_outcome_k_windows_old_weighs_the_factor_to_the_k(k):
    config = _online(
        STREAMLEARN_ONLINE__WINDOW_SIZE="1000", STREAMLEARN_ONLINE__DECAY_FACTOR="0.95"
    )
    assert math.isclose(config.factor ** (k * 1000), 0.95**k, rel_tol=1e-9)


def test_the_window_spelling_is_a_half_life():
    config = _online(
        STREAMLEARN_ONLINE__WINDOW_SIZE="1000", STREAMLEARN_ONLINE__DECAY_FACTOR="0.95"
    )
    assert math.isclose(config.decay_half_life, 1000 * math.log(0.5) / math.log(0.95))
    assert round(config.decay_half_life) == 13_513
    same = _online(STREAMLEARN_ONLINE__DECAY_HALF_LIFE=str(config.decay_half_life))
    assert math.isclose(same.factor, config.factor, rel_tol=1e-12)
    assert fading_factor(config.decay_half_life) ** config.decay_half_life == pytest.approx(0.5)


def test_a_factor_of_one_is_no_decay():
    config = _online(STREAMLEARN_ONLINE__WINDOW_SIZE="1000", STREAMLEARN_ONLINE__DECAY_FACTOR="1")
    assert config.decay_half_life is None and config.factor == 1.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STREAMLEARN_ONLINE__WINDOW_SIZE": "1000"}, "go together"),
        ({"STREAMLEARN_ONLINE__DECAY_FACTOR": "0.9"}, "go together"),
        (
            {
                "STREAMLEARN_ONLINE__WINDOW_SIZE": "1000",
                "STREAMLEARN_ONLINE__DECAY_FACTOR": "0.9",
                "STREAMLEARN_ONLINE__DECAY_HALF_LIFE": "500",
            },
            "not both",
        ),
        (
            {"STREAMLEARN_ONLINE__WINDOW_SIZE": "1000", "STREAMLEARN_ONLINE__DECAY_FACTOR": "0"},
            "decay_factor",
        ),
    ],
)
def test_inconsistent_decay_settings_are_refused(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=env)
