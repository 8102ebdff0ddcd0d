"""A worker: the Faust app wired to the engine (from ``app.composition``), its agents, timers."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.types import TP

from app.composition import active_version, build_engine
from app.embedded import Endpoints
from app.heap import freeze_startup_heap
from app.logs import logging_config, process_redactor
from app.transport import StreamlearnApp
from app.web import register_views
from config import Settings, env_name
from streams.agents import FaustSender, LearnerAgent, ScorerAgent
from streams.aiokafka_engine import AiokafkaEngine
from streams.alerts import ALERTS, RETRAIN
from streams.engine import Engine
from streams.model_updates import follow_model_updates
from streams.outbox import OutboxFlusher
from streams.topics import TopicNames, ensure_topics_for

log = logging.getLogger(__name__)


def create_app(settings: Settings, endpoints: Endpoints) -> tuple[faust.App, Engine]:
    """Build the Faust app and the engine it drives; nothing connects until the worker starts."""
    names = TopicNames.from_settings(settings)
    partitions = settings.topics.partitions
    datadir_root = Path(tempfile.gettempdir()) / "streamlearn-faust"
    datadir_root.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    aiokafka_mode = settings.processing.engine == "aiokafka"
    app = StreamlearnApp(
        # With the aiokafka engine the group name belongs to its consumer; Faust's own (idle)
        # consumer gets a group of its own.
        f"{settings.kafka.consumer_group}-app" if aiokafka_mode else settings.kafka.consumer_group,
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        **endpoints.kafka.faust(),
        autodiscover=False,
        datadir=str(datadir_root / "{conf.name}"),
        topic_partitions=partitions,
        topic_replication_factor=settings.topics.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_s,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        web_enabled=settings.web.enabled,
        web_bind=settings.web.host,
        web_host=settings.web.host,
        web_port=settings.web.port,
        logging_config=_logging(settings, endpoints),
    )
    outbox_topics = {ALERTS: names.drift_alerts, RETRAIN: names.retrain_requests}
    if aiokafka_mode:
        engine, engine_status = _wire_aiokafka_engine(app, settings, endpoints, outbox_topics)
    else:
        engine, engine_status = _wire_agents(app, settings, endpoints, outbox_topics)

    async def follow_batch_model() -> None:
        try:
            await engine.sync_batch_model()
        except Exception as exc:  # Redis down: keep the model held; try again next tick
            log.info("batch model pointer not read", extra={"error": repr(exc)})

    app.timer(settings.batch.poll_interval_s, name="batch-model-follower")(follow_batch_model)

    async def listen_for_model_updates() -> None:
        # The fast path; the timer above is the fallback if this consumer is down.
        while True:
            try:
                await follow_model_updates(
                    endpoints.kafka, names.model_updates, engine.sync_batch_model
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following; polling covers the gap
                log.warning("model-updates listener restarting", extra={"error": repr(exc)})
                await asyncio.sleep(5)

    app.task(listen_for_model_updates)
    token = settings.web.status_token
    register_views(
        app,
        engine,
        endpoints.kafka,
        engine_status,
        status_token=None if token is None else token.get_secret_value(),
        status_page_size=settings.web.status_page_size,
        metrics_top_keys=settings.web.metrics_top_keys,
    )
    return app, engine


EngineStatus = Callable[[], dict[str, Any]]


def _wire_agents(
    app: faust.App, settings: Settings, endpoints: Endpoints, outbox_topics: dict[str, str]
) -> tuple[Engine, EngineStatus]:
    """The Faust agents engine: stream agents for outcomes and requests."""
    names = TopicNames.from_settings(settings)
    partitions = settings.topics.partitions
    outcomes = app.topic(
        names.outcomes, partitions=partitions, key_serializer="raw", value_serializer="raw"
    )
    requests = app.topic(
        names.requests, partitions=partitions, key_serializer="raw", value_serializer="raw"
    )

    def is_assigned(partition: int) -> bool:
        try:
            assignment = app.consumer.assignment()
        except Exception:  # consumer not started yet
            return False
        return any(tp.topic == names.outcomes and tp.partition == partition for tp in assignment)

    engine = build_engine(settings, endpoints.redis, is_assigned)
    sender = FaustSender(app)
    outbox = OutboxFlusher(
        sender,
        outbox_topics,
        endpoints.kafka,
        engine.ports.retrain_guard,
        settings.drift.retrain_dedupe_s,
    )
    checkpointer = engine.checkpointer(sender, outbox)

    async def reposition(partition: int, offset: int) -> None:
        await seek_faust_consumer(app, TP(names.outcomes, partition), offset)

    learner_agent = LearnerAgent(
        engine.learner,
        checkpointer,
        settings.processing,
        reposition,
        engine.health,
        engine.metrics,
    )
    scorer_agent = ScorerAgent(engine.scorer, sender, settings.processing, engine.health)

    async def learn_outcomes(stream: Any) -> None:
        await learner_agent.run(stream)

    async def score_requests(stream: Any) -> None:
        await scorer_agent.run(stream)

    app.agent(outcomes, name="learn-outcomes")(learn_outcomes)
    app.agent(requests, name="score-requests")(score_requests)

    async def checkpoint_quiet_streams() -> None:
        try:
            await learner_agent.on_timer()
        except Exception as exc:  # never let a timer take the worker down
            log.error("checkpoint timer failed", extra={"error": repr(exc)})

    checkpoint_tick = min(settings.checkpoint.interval_ms / 1000.0, 0.25)
    app.timer(checkpoint_tick, name="checkpoint-timer")(checkpoint_quiet_streams)

    @app.on_partitions_assigned.connect
    async def restore_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        mine = [tp.partition for tp in assigned if tp.topic == names.outcomes]
        try:  # the partition count of the co-partitioning checks (None: they wait)
            engine.placement.partitions = app.consumer.topic_partitions(names.requests)
        except Exception:
            engine.placement.partitions = None
        try:  # an exception here would crash the Faust app; the timer retries claims
            await learner_agent.claim_assigned(mine)
        except Exception as exc:
            log.error("claims on assignment failed; retrying", extra={"error": repr(exc)})

    @app.on_partitions_revoked.connect
    async def checkpoint_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        try:
            await learner_agent.on_revoked(
                tp.partition for tp in revoked if tp.topic == names.outcomes
            )
        except Exception as exc:
            log.error("checkpoint on revocation failed", extra={"error": repr(exc)})

    @app.on_before_shutdown.connect
    async def checkpoint_on_shutdown(sender: Any, **_: Any) -> None:
        try:
            await learner_agent.on_shutdown()
        finally:
            await engine.close()

    def highwater(tp: TP) -> int | None:
        try:
            return app.consumer.highwater(tp)
        except Exception:  # not fetched yet
            return None

    def request_partitions() -> list[int]:
        try:
            return [tp.partition for tp in app.consumer.assignment() if tp.topic == names.requests]
        except Exception:  # consumer not started yet
            return []

    def status() -> dict[str, Any]:
        return {
            "highwaters": {
                p: highwater(TP(names.outcomes, p)) for p in list(engine.state.partitions)
            },
            "request_highwaters": {
                p: highwater(TP(names.requests, p)) for p in request_partitions()
            },
            "unclaimed_partitions": sorted(
                p for p in range(partitions) if is_assigned(p) and p not in engine.state.partitions
            ),
            "learning_paused": not checkpointer.store_available,
            "store_error": checkpointer.last_error,
        }

    return engine, status


async def seek_faust_consumer(app: faust.App, tp: TP, offset: int) -> None:
    """Reposition Faust's consumer of ``tp`` at ``offset`` (the applied offset + 1 in Redis).

    Faust commits only gap-free runs of acked offsets above its last commit. Seeking forward
    past that commit (Redis ahead of Kafka, the usual case after a crash) leaves a gap that
    would stop commits for good, so the skipped range is declared as a gap, as Faust itself
    does for offsets it skips.
    """
    consumer = app.consumer
    committed = consumer._committed_offset.get(tp)
    # seek_wait runs in Faust's consumer thread (a plain seek from here races its fetcher).
    await consumer.seek_wait({tp: offset})
    if committed is not None and offset - 1 >= committed:
        await consumer._add_gap(tp, committed, offset - 1)


def _wire_aiokafka_engine(
    app: faust.App, settings: Settings, endpoints: Endpoints, outbox_topics: dict[str, str]
) -> tuple[Engine, EngineStatus]:
    """the aiokafka engine: one aiokafka consumer, whole fetches (see streams.aiokafka_engine)."""
    holder: dict[str, AiokafkaEngine] = {}

    def is_assigned(partition: int) -> bool:  # the aiokafka engine exists once this is called
        return holder["batch"].is_assigned(partition)

    engine = build_engine(settings, endpoints.redis, is_assigned)
    batch = holder["batch"] = AiokafkaEngine(engine, settings, endpoints.kafka)

    async def run_aiokafka_engine() -> None:
        delay = 0.5
        while True:
            try:
                await batch.start(outbox_topics)
            except Exception as exc:  # broker not reachable yet: keep trying, /ready says why
                log.error("aiokafka engine failed to start; retrying", extra={"error": repr(exc)})
                engine.health.problem("start", f"engine not started: {exc!r}")
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)
                continue
            engine.health.problem("start", None)
            return

    app.task(run_aiokafka_engine)

    @app.on_before_shutdown.connect
    async def stop_aiokafka_engine(sender: Any, **_: Any) -> None:
        try:
            await batch.stop()
        finally:
            await engine.close()

    return engine, batch.status


class BoundedWorker(faust.Worker):
    """A Faust worker whose stop is bounded in time.

    A graceful stop waits on the broker and Redis (final checkpoint, commits, leaving the
    group); with both gone it would wait forever (measured: still running 60 s after SIGTERM).
    The first SIGTERM/SIGINT arms a watchdog; if the process is still alive after
    ``shutdown_timeout_s`` it says so and exits with code 1. Nothing is lost: whatever was not
    checkpointed is read again from the offsets stored in Redis, as after a crash.
    """

    def __init__(self, *args: Any, shutdown_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shutdown_timeout_s = shutdown_timeout_s
        self._watchdog: threading.Timer | None = None

    def _on_sigterm(self) -> None:
        self._arm_watchdog()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._arm_watchdog()
        super()._on_sigint()

    def _arm_watchdog(self) -> None:
        if self._watchdog is not None:
            return
        timeout = self._shutdown_timeout_s

        def expire() -> None:
            log.error(
                "graceful stop did not finish in time; exiting (work not checkpointed is "
                "read again from the offsets in Redis)",
                extra={"shutdown_timeout_s": timeout},
            )
            logging.shutdown()
            os._exit(1)

        self._watchdog = threading.Timer(timeout, expire)
        self._watchdog.daemon = True
        self._watchdog.start()


def run_worker(settings: Settings, endpoints: Endpoints) -> None:
    """Create topics if needed, load the active batch model, and run until stopped."""
    ensure_topics_for(settings, endpoints.kafka)
    app, engine = create_app(settings, endpoints)
    try:
        problem = engine.load_model_now(active_version(settings, endpoints.redis))
    except Exception as exc:  # Redis down: start without it; the follower reads the pointer
        problem = f"active version not read: {exc!r}"
    if problem:
        log.error("active batch model not loaded at start", extra={"error": problem})
    worker = BoundedWorker(
        app,
        shutdown_timeout_s=settings.processing.shutdown_timeout_s,
        loglevel=settings.log.level,
        quiet=True,
        redirect_stdouts=False,
        logging_config=_logging(settings, endpoints),
    )
    freeze_startup_heap()
    worker.execute_from_commandline()


def _logging(settings: Settings, endpoints: Endpoints) -> dict[str, Any]:
    """The worker's logging: the configured level, every secret it knows masked."""
    return logging_config(
        settings.log.level, process_redactor(settings.secrets(), endpoints.secrets())
    )


def worker_environment(settings: Settings, endpoints: Endpoints) -> dict[str, str]:
    """Environment that makes a ``streamlearn worker`` process use exactly ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("REDIS_URL", None)
    data = settings.revealed_dump()
    # How these endpoints are reached wins over the settings' security.
    for group, connection in (("kafka", endpoints.kafka), ("redis", endpoints.redis)):
        data[group] |= {name: getattr(connection, name) for name in connection.setting_fields()}
    for group, values in data.items():
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                text = ",".join(value)
            elif isinstance(value, list | dict):
                text = orjson.dumps(value).decode()  # notify.webhooks: JSON in the environment
            else:
                text = str(value)
            env[env_name((group, name))] = text
    env["KAFKA_BOOTSTRAP_SERVERS"] = endpoints.kafka_bootstrap
    env["REDIS_URL"] = endpoints.redis.url
    return env
