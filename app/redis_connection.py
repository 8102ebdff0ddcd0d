"""How every Redis client of this project connects: one place for the address and security.

Workers (asyncio clients), the retrainer and the CLI (blocking clients) all build their
connections from one :class:`RedisConnection`, so ``rediss://`` with a CA, client
certificates and an ACL user and password apply everywhere alike, and so does Redis Cluster
(the URL then names any one node; redis-py's cluster clients find the others and follow the
slots as they move). The password, also one inside the URL, is kept out of ``repr`` and out
of :attr:`RedisConnection.display` (what logs and output show).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from config.settings import RedisSettings, mask_url_password, revealed, url_password


@dataclass(frozen=True, repr=False)
class RedisConnection:
    """A Redis URL and how to authenticate to it and check its certificate."""

    url: str
    username: str | None = None
    password: str | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    cluster: bool = False

    @classmethod
    def from_settings(cls, settings: RedisSettings, url: str) -> RedisConnection:
        """The connection the settings describe, to ``url`` (the configured Redis, or the
        embedded one when none is configured)."""
        return cls(url, **revealed(settings, cls.setting_fields()))

    @classmethod
    def setting_fields(cls) -> tuple[str, ...]:
        """The fields besides the URL; each has the same name in :class:`RedisSettings`."""
        return tuple(f.name for f in fields(cls) if f.name != "url")

    @property
    def tls(self) -> bool:
        """Whether the traffic is encrypted (a ``rediss://`` URL)."""
        return self.url.startswith("rediss://")

    @property
    def url_password(self) -> str | None:
        """The password written inside the URL, if any."""
        return url_password(self.url)

    @property
    def display(self) -> str:
        """The URL with any password masked: what logs and output may show."""
        return mask_url_password(self.url) or ""

    def __repr__(self) -> str:
        user = f", username={self.username!r}" if self.username else ""
        cluster = ", cluster=True" if self.cluster else ""
        return f"RedisConnection({self.display!r}{user}{cluster})"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for redis-py's ``from_url`` (blocking and asyncio alike): the ACL
        credentials, and for ``rediss://`` the CA, client certificate and hostname check.
        Values in the URL's query string win over these (redis-py's rule)."""
        options: dict[str, Any] = {}
        if self.username is not None:
            options["username"] = self.username
        if self.password is not None:
            options["password"] = self.password
        if self.tls:
            options["ssl_cert_reqs"] = "required"
            options["ssl_check_hostname"] = self.ssl_check_hostname
            for name, path in (
                ("ssl_ca_certs", self.ssl_cafile),
                ("ssl_certfile", self.ssl_certfile),
                ("ssl_keyfile", self.ssl_keyfile),
            ):
                if path is not None:
                    options[name] = str(path)
        return options

    def client(self, **options: Any) -> redis.Redis | RedisCluster:
        """A blocking client (the CLI, the retrainer); ``options`` add to the connection's."""
        kind = RedisCluster if self.cluster else redis.Redis
        return kind.from_url(self.url, **self.client_options(), **options)

    def async_client(self, **options: Any) -> aioredis.Redis | AsyncRedisCluster:
        """An asyncio client (workers, status readers); ``options`` add to the connection's."""
        kind = AsyncRedisCluster if self.cluster else aioredis.Redis
        return kind.from_url(self.url, **self.client_options(), **options)
