"""Settings: defaults < YAML < environment, validated once, one-line errors naming the setting."""

from __future__ import annotations

import pytest

from config import DEFAULT_FEATURES, SettingsError, load_settings


def test_defaults_describe_the_documented_product():
    settings = load_settings(environ={})
    assert (settings.blend.w_batch, settings.blend.w_online) == (0.8, 0.2)
    assert settings.online.decay_half_life is None
    assert settings.model.key_field is None
    assert settings.model.features == DEFAULT_FEATURES
    assert settings.kafka.bootstrap_servers is None and settings.redis.url is None
    assert settings.topics.dead_letter(settings.topics.outcomes) == "trade-outcomes.dlq"


def test_yaml_overrides_defaults_and_environment_overrides_yaml(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(
        "online:\n  decay_half_life: 500\n  min_updates: 7\n"
        "blend:\n  w_batch: 0.6\n  w_online: 0.4\n"
        "model:\n  features: [a, b]\n"
    )
    env = {
        "STREAMLEARN_CONFIG": str(path),
        "STREAMLEARN_ONLINE__MIN_UPDATES": "9",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "REDIS_URL": "redis://:secret@redis:6379/0",
    }
    settings = load_settings(environ=env)
    assert settings.online.decay_half_life == 500
    assert settings.online.min_updates == 9
    assert settings.blend.w_batch == 0.6
    assert settings.model.features == ("a", "b")
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.redacted()["redis"]["url"] == "redis://:***@redis:6379/0"


def test_environment_lists_and_none_words():
    settings = load_settings(
        environ={
            "STREAMLEARN_MODEL__FEATURES": "x, y ,z",
            "STREAMLEARN_ONLINE__DECAY_HALF_LIFE": "off",
            "STREAMLEARN_MODEL__KEY_FIELD": "key",
        }
    )
    assert settings.model.features == ("x", "y", "z")
    assert settings.online.decay_half_life is None
    assert settings.model.key_field == "key"


@pytest.mark.parametrize(
    ("env", "phrase"),
    [
        ({"STREAMLEARN_BLEND__W_BATCH": "0.5"}, "w_batch + w_online must be 1"),
        ({"STREAMLEARN_ONLINE__DECAY_HALF_LIFE": "-3"}, "STREAMLEARN_ONLINE__DECAY_HALF_LIFE"),
        ({"STREAMLEARN_ONLINE__DECAY_HALF_LIFE": "soon"}, "valid number"),
        ({"STREAMLEARN_TOPICS__PARTITIONS": "0"}, "STREAMLEARN_TOPICS__PARTITIONS"),
        ({"STREAMLEARN_MODEL__FEATURES": "a,a"}, "unique"),
        ({"STREAMLEARN_ONLINE__LEARNIN_RATE": "0.1"}, "unknown setting"),
        ({"STREAMLEARN_LOG__LEVEL": "LOUD"}, "STREAMLEARN_LOG__LEVEL"),
        ({"STREAMLEARN_TOPICS__SIGNALS": "trade-outcomes"}, "distinct"),
        ({"STREAMLEARN_NOGROUP": "1"}, "STREAMLEARN_<GROUP>__<FIELD>"),
    ],
)
def test_invalid_values_stop_start_up_with_one_line(env, phrase):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=env)
    message = str(caught.value)
    assert phrase in message
    assert "\n" not in message


def test_bad_config_files_are_reported(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml", environ={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("online: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(broken, environ={})
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(SettingsError, match="mapping"):
        load_settings(scalar, environ={})


@pytest.mark.parametrize(
    ("value", "engine"),
    [
        (None, "aiokafka"),
        ("aiokafka", "aiokafka"),
        ("faust", "faust"),
        ("batch", "aiokafka"),
        ("agents", "faust"),
    ],
)
def test_the_fast_engine_is_the_default_and_the_old_engine_names_still_work(value, engine):
    env = {} if value is None else {"STREAMLEARN_PROCESSING__ENGINE": value}
    assert load_settings(environ=env).processing.engine == engine


def test_an_unknown_engine_is_refused():
    with pytest.raises(SettingsError, match="engine"):
        load_settings(environ={"STREAMLEARN_PROCESSING__ENGINE": "spark"})


def test_webhooks_come_as_json_from_the_environment_and_stay_secret():
    hooks = '[{"name": "ops", "url": "https://hooks.example/T0/B0/s3cr3t", "format": "slack"}]'
    settings = load_settings(environ={"STREAMLEARN_NOTIFY__WEBHOOKS": hooks})
    [hook] = settings.notify.webhooks
    assert (hook.name, hook.format, hook.min_severity) == ("ops", "slack", "info")
    assert "s3cr3t" not in str(settings.redacted())
    assert "https://hooks.example/T0/B0/s3cr3t" in settings.secrets()
    again = settings.revealed_dump()["notify"]["webhooks"][0]["url"]
    assert again == "https://hooks.example/T0/B0/s3cr3t"
    with pytest.raises(SettingsError, match="JSON list"):
        load_settings(environ={"STREAMLEARN_NOTIFY__WEBHOOKS": "[{oops"})
