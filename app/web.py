"""HTTP views of a worker: liveness, what it holds, and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.engine import Engine


def register_views(app: Any, engine: Engine) -> None:
    """Add ``/health``, ``/status`` and ``/metrics`` to the Faust app's web server."""

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"ok": True, "batch_version": engine.batch.version})

    @app.page("/status")
    async def status(web: Any, request: Any) -> Any:
        return web.json(engine.status())

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(engine.metrics.registry), content_type=CONTENT_TYPE_LATEST)
