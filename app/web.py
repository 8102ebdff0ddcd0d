"""HTTP views of a worker: liveness, readiness, what it holds, and Prometheus metrics.

* ``/health`` (liveness): 200 while every loop of the engine is alive and no fatal condition
  is set; 503 with the reasons otherwise (an orchestrator restarts the worker on it).
* ``/ready`` (readiness): 200 when, in addition, Redis and the broker answer now, every
  assigned partition is claimed, learning is not paused and no partition with records waiting
  has gone 30 s without progress; 503 with the reasons otherwise.
  A worker that is alive but not ready still scores with the models it holds.
* ``/status``: what the worker holds (partitions, batch version, a page of its keys:
  ``?offset=&limit=``); behind a bearer token when ``web.status_token`` is set.
* ``/metrics``: Prometheus text format: counters, histograms, process metrics and gauges read
  from the state at scrape time (see ``streams.telemetry`` and ``streams.state_metrics``).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaClient
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.engine import Engine
from streams.health import stalled_partitions
from streams.kafka_connection import KafkaConnection
from streams.state_metrics import StateCollector

PROBE_TIMEOUT_S = 2.0
#: Most keys one ``/status`` page may hold.
MAX_PAGE = 10_000


class BrokerProbe:
    """Asks the broker for its metadata: a real round trip, not just an open port."""

    def __init__(self, kafka: KafkaConnection) -> None:
        self._kafka = kafka
        self._client: AIOKafkaClient | None = None

    async def check(self) -> str | None:
        """None when the broker answered within the timeout, else why not."""
        try:
            if self._client is None:
                client = AIOKafkaClient(**self._kafka.client_options())
                await asyncio.wait_for(client.bootstrap(), PROBE_TIMEOUT_S)
                self._client = client
            await asyncio.wait_for(self._client.fetch_all_metadata(), PROBE_TIMEOUT_S)
        except Exception as exc:
            if self._client is not None:
                client, self._client = self._client, None
                await client.close()
            return f"broker unreachable: {type(exc).__name__}: {exc}"
        return None


async def redis_problem(engine: Engine) -> str | None:
    """None when Redis answers a PING within the timeout (or the engine runs on in-memory
    twins), else why not."""
    if engine.ports.connection is None:
        return None
    try:
        await asyncio.wait_for(engine.ports.connection.ping(), PROBE_TIMEOUT_S)
    except Exception as exc:
        return f"redis unreachable: {type(exc).__name__}: {exc}"
    return None


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries the bearer ``token`` (always, without one).
    Compared in constant time, so the answer's timing tells nothing about the token.

    >>> authorized(None, None), authorized("Bearer t0k", "t0k"), authorized("Bearer x", "t0k")
    (True, True, False)
    """
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def page_of(query: Mapping[str, str], default_limit: int) -> tuple[int, int]:
    """``offset`` and ``limit`` of a ``/status`` page from the query string.

    >>> page_of({}, 100), page_of({"offset": "200", "limit": "50"}, 100)
    ((0, 100), (200, 50))
    """
    return (
        _integer(query, "offset", 0, 0, None),
        _integer(query, "limit", default_limit, 1, MAX_PAGE),
    )


def _integer(
    query: Mapping[str, str], name: str, default: int, least: int, most: int | None
) -> int:
    text = query.get(name)
    try:
        value = default if text is None else int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {text[:40]!r}") from None
    if value < least or (most is not None and value > most):
        raise ValueError(f"{name} must be between {least} and {most or 'any'}, not {value}")
    return value


def register_views(
    app: Any,
    engine: Engine,
    kafka: KafkaConnection,
    engine_status: Callable[[], dict[str, Any]],
    status_token: str | None = None,
    status_page_size: int = 100,
    metrics_top_keys: int = 10,
) -> None:
    """Add ``/health``, ``/ready``, ``/status`` and ``/metrics`` to the Faust app's web server.

    ``/status`` answers one page of keys (``?offset=&limit=``) and, with a ``status_token``,
    only to requests that carry it as a bearer token. ``/metrics`` adds gauges read from the
    engine's state at scrape time (:mod:`streams.state_metrics`), per-key ones for the
    ``metrics_top_keys`` keys with the most outcomes.
    """
    probe = BrokerProbe(kafka)
    engine.metrics.registry.register(StateCollector(engine, engine_status, metrics_top_keys))
    errors = engine.metrics.dependency_errors

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        report = engine.health.report()
        report["batch_version"] = engine.batch.version
        return web.json(report, status=200 if report["ok"] else 503)

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        report = engine.health.report()
        status = engine_status()
        problems = dict(report["problems"])
        if not report["ok"]:
            problems.setdefault("loops", "an engine loop is not alive")
        redis_down, broker_down = await asyncio.gather(redis_problem(engine), probe.check())
        if redis_down:
            problems["redis"] = redis_down
            errors.labels("redis", "ping").inc()
        if broker_down:
            problems["broker"] = broker_down
            errors.labels("kafka", "metadata").inc()
        if status.get("unclaimed_partitions"):
            problems["partitions"] = f"not claimed yet: {status['unclaimed_partitions']}"
        if status.get("learning_paused"):
            problems["learning"] = f"paused: {status.get('store_error')}"
        stalled = stalled_partitions(
            {p: (m.applied_offset, m.advanced_at) for p, m in engine.state.partitions.items()},
            status.get("highwaters", {}),
            time.monotonic(),
        )
        if stalled:
            problems["progress"] = "; ".join(f"partition {p}: {w}" for p, w in stalled.items())
        body = {
            "ok": not problems,
            "problems": problems,
            "loops": report["loops"],
            "partitions": {
                p: {"applied_offset": m.applied_offset, "checkpointed": m.checkpointed_offset}
                for p, m in sorted(engine.state.partitions.items())
            },
            **status,
        }
        return web.json(body, status=200 if not problems else 503)

    @app.page("/status")
    async def status(web: Any, request: Any) -> Any:
        if not authorized(request.headers.get("Authorization"), status_token):
            return web.json(
                {"error": "/status needs Authorization: Bearer <web.status_token>"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="streamlearn"'},
            )
        try:
            offset, limit = page_of(request.query, status_page_size)
        except ValueError as exc:
            return web.json({"error": str(exc)}, status=400)
        return web.json(engine.status(offset, limit))

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside ``content_type``; the header carries it as is.
        return web.bytes(
            generate_latest(engine.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )
