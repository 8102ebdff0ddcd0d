"""How every Kafka client of this project connects: one place for the address and security.

Three client libraries talk to Kafka here -- aiokafka (the engine, the model-updates
listener, the web views), kafka-python (producers, readers, admin) and Faust (the agents
engine). The first two take the same keyword arguments, Faust a credentials object.
:class:`KafkaConnection` holds the settings once and renders them for both forms; no client is
built from a bare bootstrap string. The password is kept out of ``repr`` (and so out of logs
and tracebacks).
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args

from config.settings import KafkaSettings, revealed

#: What the settings accept (a connection built directly is held to the same lists).
PROTOCOLS = get_args(KafkaSettings.model_fields["security_protocol"].annotation)
MECHANISMS = get_args(KafkaSettings.model_fields["sasl_mechanism"].annotation)


@dataclass(frozen=True)
class KafkaConnection:
    """A broker address and how to authenticate to it and encrypt the traffic."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.security_protocol not in PROTOCOLS:
            raise ValueError(f"security_protocol must be one of {PROTOCOLS}")
        if self.sasl and self.sasl_mechanism not in MECHANISMS:
            raise ValueError(f"sasl_mechanism must be one of {MECHANISMS}")
        if self.sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError(f"{self.security_protocol} needs a SASL username and password")

    @classmethod
    def from_settings(cls, kafka: KafkaSettings, bootstrap_servers: str) -> KafkaConnection:
        """The connection the settings describe, to ``bootstrap_servers`` (the configured
        cluster, or the embedded broker when none is configured)."""
        return cls(bootstrap_servers, **revealed(kafka, cls.setting_fields()))

    @classmethod
    def setting_fields(cls) -> tuple[str, ...]:
        """The fields besides the address; each has the same name in :class:`KafkaSettings`."""
        return tuple(f.name for f in fields(cls) if f.name != "bootstrap_servers")

    @property
    def tls(self) -> bool:
        """Whether the traffic is encrypted."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        """Whether clients authenticate with SASL."""
        return self.security_protocol.startswith("SASL_")

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context (system CAs unless ``ssl_cafile``), or None without TLS.

        Built once per connection (it reads the CA and certificate files) and shared by every
        client made from it, as an ``SSLContext`` may be.
        """
        if not self.tls:
            return None
        context = ssl.create_default_context(
            cafile=None if self.ssl_cafile is None else str(self.ssl_cafile)
        )
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None:
            context.load_cert_chain(
                str(self.ssl_certfile), None if self.ssl_keyfile is None else str(self.ssl_keyfile)
            )
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for every aiokafka and kafka-python client (producer, consumer,
        client, admin): both libraries take these names, and both take the TLS settings
        (hostname check included) from ``ssl_context``."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.tls:
            options["ssl_context"] = self.ssl_context
        if self.sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options

    def faust(self) -> dict[str, Any]:
        """Keyword arguments for ``faust.App``: the broker URL and its credentials."""
        import faust

        hosts = [host.strip() for host in self.bootstrap_servers.split(",") if host.strip()]
        # Faust takes one URL per host, separated by ";" (a comma list is read as one host).
        options: dict[str, Any] = {"broker": ";".join(f"kafka://{host}" for host in hosts)}
        if self.sasl:
            options["broker_credentials"] = faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context,
            )
        elif self.tls:
            options["broker_credentials"] = faust.SSLCredentials(self.ssl_context)
        return options
