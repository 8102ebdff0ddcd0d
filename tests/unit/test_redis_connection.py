"""The Redis connection factory: settings -> redis-py options, and secrets kept out of sight."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.connection import SSLConnection

from app.embedded import EmbeddedInfrastructure, EmbeddedStartError, Endpoints
from app.logs import JsonFormatter, Redactor
from app.redis_connection import RedisConnection
from config import SettingsError, load_settings
from streams.kafka_connection import KafkaConnection

SECRET = "s3cr3t-Pa55"


def _settings(**env: str):
    return load_settings(environ=env)


def test_plain_url_needs_no_options():
    assert RedisConnection("redis://r:6379/0").client_options() == {}


def test_acl_user_and_password_are_passed_to_both_clients():
    connection = RedisConnection("redis://r:6379/0", username="app", password=SECRET)
    assert connection.client_options() == {"username": "app", "password": SECRET}
    for client in (connection.client(), connection.async_client()):
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"]) == ("app", SECRET)


def test_rediss_takes_the_ca_the_client_certificate_and_the_hostname_check(tmp_path):
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    connection = RedisConnection(
        "rediss://r:6380/0", ssl_cafile=ca, ssl_certfile=cert, ssl_keyfile=key,
        ssl_check_hostname=False,
    )  # fmt: skip
    assert connection.tls
    assert connection.client_options() == {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": False,
        "ssl_ca_certs": str(ca),
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
    }
    sync = connection.client().connection_pool
    assert sync.connection_class is SSLConnection
    assert sync.connection_kwargs["ssl_ca_certs"] == str(ca)
    pool = connection.async_client().connection_pool
    assert pool.connection_class is aioredis.SSLConnection
    assert pool.connection_kwargs["ssl_check_hostname"] is False


def test_from_settings_carries_every_security_setting(tmp_path):
    settings = _settings(
        REDIS_URL="rediss://r:6380/0",
        STREAMLEARN_REDIS__USERNAME="app",
        STREAMLEARN_REDIS__PASSWORD=SECRET,
        STREAMLEARN_REDIS__SSL_CAFILE=str(tmp_path / "ca.pem"),
    )
    connection = RedisConnection.from_settings(settings.redis, settings.redis.url)
    assert connection == RedisConnection(
        "rediss://r:6380/0", username="app", password=SECRET, ssl_cafile=tmp_path / "ca.pem"
    )


def test_repr_and_display_never_show_a_password():
    in_field = RedisConnection("redis://r:6379/0", username="app", password=SECRET)
    in_url = RedisConnection(f"redis://app:{SECRET}@r:6379/0")
    for connection in (in_field, in_url):
        assert SECRET not in repr(connection)
        assert SECRET not in connection.display
        assert SECRET not in str(connection)
    assert in_url.display == "redis://app:***@r:6379/0"
    assert in_url.url_password == SECRET


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_URL": "http://r:6379"}, "must start with one of redis://, rediss://, unix://"),
        (
            {"REDIS_URL": f"redis://:{SECRET}@r/0", "STREAMLEARN_REDIS__PASSWORD": SECRET},
            "not both",
        ),
        ({"REDIS_URL": "redis://r/0", "STREAMLEARN_REDIS__SSL_CAFILE": "ca.pem"}, "rediss://"),
        (
            {"REDIS_URL": "rediss://r/0", "STREAMLEARN_REDIS__SSL_CERTFILE": "c.pem"},
            "go together",
        ),
        (
            {"REDIS_URL": "unix:///tmp/r.sock", "STREAMLEARN_REDIS__CLUSTER": "true"},
            "cluster needs a redis:// or rediss:// url",
        ),
    ],
)
def test_inconsistent_redis_settings_are_refused_without_showing_a_password(env, message):
    with pytest.raises(SettingsError) as raised:
        _settings(**env)
    assert message in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_bad_url_with_a_password_is_shown_masked():
    with pytest.raises(SettingsError) as raised:
        _settings(REDIS_URL=f"http://app:{SECRET}@r:6379")
    assert "http://app:***@r:6379" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_settings_name_every_secret_they_hold():
    settings = _settings(
        KAFKA_BOOTSTRAP_SERVERS="k:9093",
        STREAMLEARN_KAFKA__SECURITY_PROTOCOL="SASL_SSL",
        STREAMLEARN_KAFKA__SASL_USERNAME="svc",
        STREAMLEARN_KAFKA__SASL_PASSWORD="kafka-" + SECRET,
        REDIS_URL=f"redis://app:url-{SECRET}@r:6379/0",
    )
    assert set(settings.secrets()) == {"kafka-" + SECRET, "url-" + SECRET}
    assert settings.redacted()["redis"]["url"] == "redis://app:***@r:6379/0"


def test_endpoints_name_the_passwords_of_their_connections():
    endpoints = Endpoints(
        KafkaConnection("k:9093", "SASL_SSL", sasl_username="svc", sasl_password="k-" + SECRET),
        RedisConnection(f"redis://app:u-{SECRET}@r/0"),
    )
    assert set(endpoints.secrets()) == {"k-" + SECRET, "u-" + SECRET}


def test_the_embedded_redis_refuses_credentials_it_cannot_apply():
    settings = _settings(STREAMLEARN_REDIS__PASSWORD=SECRET)
    with pytest.raises(EmbeddedStartError, match=r"need redis\.url"):
        EmbeddedInfrastructure(None, None, settings.kafka, settings.redis)


def test_the_embedded_redis_is_not_a_cluster():
    settings = _settings(STREAMLEARN_REDIS__CLUSTER="true")
    with pytest.raises(EmbeddedStartError, match=r"redis\.cluster needs redis\.url"):
        EmbeddedInfrastructure(None, None, settings.kafka, settings.redis)


def test_a_cluster_connection_builds_cluster_clients_with_the_same_options():
    settings = _settings(
        REDIS_URL="redis://node-1:7000",
        STREAMLEARN_REDIS__CLUSTER="true",
        STREAMLEARN_REDIS__USERNAME="app",
        STREAMLEARN_REDIS__PASSWORD=SECRET,
    )
    connection = RedisConnection.from_settings(settings.redis, settings.redis.url)
    assert connection.cluster
    assert "cluster=True" in repr(connection) and SECRET not in repr(connection)
    client = connection.async_client(socket_timeout=2)  # connects lazily, on first use
    assert isinstance(client, AsyncRedisCluster)
    options = client.nodes_manager.connection_kwargs
    assert (options["username"], options["password"]) == ("app", SECRET)
    assert options["socket_timeout"] == 2
    node = client.nodes_manager.startup_nodes["node-1:7000"]
    assert (node.host, node.port) == ("node-1", 7000)


def test_the_redactor_masks_secrets_as_written_escaped_and_inside_urls():
    redact = Redactor([SECRET, 'with"quote'])
    assert redact(f"auth {SECRET} failed") == "auth *** failed"
    assert redact('{"pw": "with\\"quote"}') == '{"pw": "***"}'
    assert redact("to rediss://app:other-pw@h:6380/0 ok") == "to rediss://app:***@h:6380/0 ok"
    assert redact("plain redis://h:6379/0 and a@b") == "plain redis://h:6379/0 and a@b"


def test_log_lines_mask_secrets_in_messages_extras_and_tracebacks():
    formatter = JsonFormatter(Redactor([SECRET]))
    try:
        raise ConnectionError(f"AUTH {SECRET} rejected")
    except ConnectionError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "login %s", (SECRET,), None)
        record.exc_info = __import__("sys").exc_info()
    record.__dict__["url"] = f"redis://app:{SECRET}@r/0"
    line = formatter.format(record)
    assert SECRET not in line
    assert "login ***" in line and "AUTH *** rejected" in line


def test_credentials_given_to_libraries_through_the_environment_are_secrets():
    from app.logs import environment_secrets

    env = {"AWS_SECRET_ACCESS_KEY": SECRET, "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SESSION_TOKEN": ""}
    assert environment_secrets(env) == (SECRET,)


def test_a_child_worker_gets_every_secret_setting_through_its_environment():
    from app.worker import worker_environment

    settings = _settings(
        REDIS_URL="redis://r:6379/0",
        STREAMLEARN_REDIS__PASSWORD=SECRET,
        STREAMLEARN_WEB__STATUS_TOKEN="token-" + SECRET,
    )
    endpoints = Endpoints(
        KafkaConnection("k:9092"), RedisConnection.from_settings(settings.redis, "redis://r/0")
    )
    child = load_settings(environ=worker_environment(settings, endpoints))
    assert not child.redis.cluster
    assert child.web.status_token.get_secret_value() == "token-" + SECRET
    assert child.redis.password.get_secret_value() == SECRET
    assert set(child.secrets()) == {SECRET, "token-" + SECRET}


def test_a_child_worker_is_told_its_redis_is_a_cluster():
    from app.worker import worker_environment

    settings = _settings()
    endpoints = Endpoints(
        KafkaConnection("k:9092"), RedisConnection("redis://n:7000", cluster=True)
    )
    child = load_settings(environ=worker_environment(settings, endpoints))
    assert child.redis.cluster and child.redis.url == "redis://n:7000"
