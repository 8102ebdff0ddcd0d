"""The Kafka connection factory: one security setting, rendered right for every client type."""

from __future__ import annotations

import asyncio
import inspect
import ssl

import faust
import pytest
import trustme
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.net.transport import KafkaSSLTransport

from config import load_settings
from streams.kafka_connection import KafkaConnection

BOOTSTRAP = "broker-1:9093,broker-2:9093"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, and a client certificate it signed, as PEM files."""
    root = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    client = ca.issue_cert("streamlearn-client")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(root / "client.pem"))
    client.private_key_pem.write_to_path(str(root / "client.key"))
    return root


def _connections(pki) -> dict[str, KafkaConnection]:
    tls = {"ssl_cafile": pki / "ca.pem"}
    sasl = {"sasl_username": "svc", "sasl_password": "s3cret"}
    return {
        "PLAINTEXT": KafkaConnection(BOOTSTRAP),
        "SSL": KafkaConnection(BOOTSTRAP, "SSL", **tls),
        "SSL+mTLS": KafkaConnection(
            BOOTSTRAP,
            "SSL",
            ssl_certfile=pki / "client.pem",
            ssl_keyfile=pki / "client.key",
            **tls,
        ),
        "SASL_PLAINTEXT/PLAIN": KafkaConnection(
            BOOTSTRAP, "SASL_PLAINTEXT", sasl_mechanism="PLAIN", **sasl
        ),
        "SASL_SSL/SCRAM-SHA-256": KafkaConnection(
            BOOTSTRAP, "SASL_SSL", sasl_mechanism="SCRAM-SHA-256", **sasl, **tls
        ),
        "SASL_SSL/SCRAM-SHA-512": KafkaConnection(BOOTSTRAP, "SASL_SSL", **sasl, **tls),
    }


CASES = [
    "PLAINTEXT",
    "SSL",
    "SSL+mTLS",
    "SASL_PLAINTEXT/PLAIN",
    "SASL_SSL/SCRAM-SHA-256",
    "SASL_SSL/SCRAM-SHA-512",
]


@pytest.mark.parametrize("case", CASES)
def test_aiokafka_clients_are_configured_as_the_connection_says(pki, case):
    connection = _connections(pki)[case]
    options = connection.client_options()

    async def build() -> None:
        for client_type in (AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient):
            accepted = inspect.signature(client_type.__init__).parameters
            assert set(options) <= set(accepted), client_type
        client = AIOKafkaClient(**options)
        assert client._security_protocol == connection.security_protocol
        assert client._bootstrap_servers == BOOTSTRAP
        assert (client._ssl_context is not None) == connection.tls
        if connection.sasl:
            assert client._sasl_mechanism == connection.sasl_mechanism
            assert client._sasl_plain_username == "svc"
            assert client._sasl_plain_password == "s3cret"
        producer = AIOKafkaProducer(**options)  # the constructors accept the combination
        consumer = AIOKafkaConsumer(**options)
        assert producer.client._security_protocol == connection.security_protocol
        assert consumer._client._security_protocol == connection.security_protocol

    asyncio.run(build())


@pytest.mark.parametrize("case", CASES)
def test_kafka_python_clients_take_every_option(pki, case):
    connection = _connections(pki)[case]
    options = connection.client_options()
    for client_type in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(options) <= set(client_type.DEFAULT_CONFIG), client_type
    assert options["security_protocol"] == connection.security_protocol
    assert ("ssl_context" in options) == connection.tls
    if connection.tls:  # kafka-python uses the given context as is (hostname check included)
        config = {**KafkaSSLTransport.DEFAULT_CONFIG, "ssl_context": options["ssl_context"]}
        assert KafkaSSLTransport._build_ssl_context(config) is connection.ssl_context
    if connection.sasl:
        assert options["sasl_mechanism"] == connection.sasl_mechanism
        assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
            "svc",
            "s3cret",
        )


@pytest.mark.parametrize("case", CASES)
def test_the_faust_app_connects_the_same_way(pki, case):
    connection = _connections(pki)[case]
    app = faust.App("connection-test", **connection.faust())
    assert [str(url) for url in app.conf.broker] == [
        "kafka://broker-1:9093",
        "kafka://broker-2:9093",
    ]
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials)  # what Faust gives aiokafka
    assert auth["security_protocol"] == connection.security_protocol
    assert (auth.get("ssl_context") is not None) == connection.tls
    if connection.sasl:
        assert auth["sasl_mechanism"] == connection.sasl_mechanism
        assert auth["sasl_plain_password"] == "s3cret"


def test_tls_context_checks_the_broker_against_the_ca_and_presents_the_client_certificate(pki):
    connections = _connections(pki)
    context = connections["SSL+mTLS"].ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs()  # the CA file was loaded
    relaxed = KafkaConnection(BOOTSTRAP, "SSL", ssl_cafile=pki / "ca.pem", ssl_check_hostname=False)
    assert relaxed.ssl_context.check_hostname is False  # type: ignore[union-attr]
    assert connections["PLAINTEXT"].ssl_context is None
    assert connections["SSL"].ssl_context is connections["SSL"].ssl_context  # files read once


def test_settings_map_to_the_connection_and_the_password_stays_out_of_repr(pki):
    settings = load_settings(
        environ={
            "STREAMLEARN_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMLEARN_KAFKA__SASL_MECHANISM": "SCRAM-SHA-256",
            "STREAMLEARN_KAFKA__SASL_USERNAME": "svc",
            "STREAMLEARN_KAFKA__SASL_PASSWORD": "s3cret",
            "STREAMLEARN_KAFKA__SSL_CAFILE": str(pki / "ca.pem"),
        }
    )
    connection = KafkaConnection.from_settings(settings.kafka, BOOTSTRAP)
    assert connection == _connections(pki)["SASL_SSL/SCRAM-SHA-256"]
    assert "s3cret" not in repr(connection) and "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL"}, "username and password"),
        (
            {"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "p"}
            | {"sasl_mechanism": "GSSAPI"},
            "sasl_mechanism",
        ),
    ],
)
def test_incomplete_or_unknown_security_is_refused(arguments, problem):
    with pytest.raises(ValueError, match=problem):
        KafkaConnection(BOOTSTRAP, **arguments)


def test_a_child_worker_gets_the_whole_connection_through_its_environment(pki):
    from app.embedded import Endpoints
    from app.redis_connection import RedisConnection
    from app.worker import worker_environment

    connection = _connections(pki)["SASL_SSL/SCRAM-SHA-256"]
    redis = RedisConnection(
        "rediss://r:6380/0", username="app", password="pw", ssl_cafile=pki / "ca.pem"
    )
    env = worker_environment(load_settings(environ={}), Endpoints(connection, redis))
    child = load_settings(environ=env)
    assert KafkaConnection.from_settings(child.kafka, env["KAFKA_BOOTSTRAP_SERVERS"]) == connection
    assert RedisConnection.from_settings(child.redis, env["REDIS_URL"]) == redis
