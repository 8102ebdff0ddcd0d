"""The ``streamlearn`` command line: worker, demo, train, status.

Every command has ``--help``; a failure prints one line (``streamlearn: error: ...``) and exits
non-zero.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from app.logs import Redactor, configure_logging, process_redactor
from config import Settings, SettingsError, load_settings

log = logging.getLogger("streamlearn")

EXIT_FAILURE = 1
EXIT_USAGE = 2


class CommandError(RuntimeError):
    """A command cannot do what was asked; the message is shown as one line."""


class Terminated(BaseException):
    """SIGTERM arrived before a command installed its own handler: stop cleanly, exit 0."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamlearn",
        description="Streaming online learning for trading signals (Kafka + River + XGBoost).",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="YAML settings file (else $STREAMLEARN_CONFIG)"
    )
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (default from settings: WARNING)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    worker = commands.add_parser(
        "worker",
        help="run the engine (learner + scorer) against the configured Kafka and Redis",
        description="Run one worker. With neither KAFKA_BOOTSTRAP_SERVERS nor REDIS_URL set it "
        "starts an embedded broker and Redis and logs their addresses; with only one of them "
        "set it refuses to start (learned state in a throwaway Redis would be lost on restart) "
        "unless --embedded asks for the missing one.",
    )
    worker.add_argument(
        "--embedded",
        action="store_true",
        help="start an embedded broker and/or Redis for whichever is not configured",
    )

    demo = commands.add_parser(
        "demo",
        help="embedded broker + Redis, a trained batch model, live market stream, summary",
        description="End-to-end demo on embedded infrastructure; ends by itself with a summary.",
    )
    demo.add_argument("--seconds", type=float, default=60.0, help="live stream length (default 60)")
    demo.add_argument(
        "--rate", type=int, default=1500, help="outcomes and requests per second each"
    )
    demo.add_argument("--seed", type=int, default=7, help="market simulator seed")
    demo.add_argument(
        "--history", type=int, default=20_000, help="outcomes to train the batch model"
    )
    demo.add_argument(
        "--screenshot",
        type=Path,
        default=Path(tempfile.gettempdir()) / "streamlearn-demo-dashboard.png",
        help="where the dashboard's screenshot goes at the end (needs Chromium; default "
        "%(default)s)",
    )

    train = commands.add_parser(
        "train",
        help="train an XGBoost batch model, store it, and make it the active version",
        description="Train on closed trades from a CSV/Parquet file or the trade-outcomes topic.",
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-file", metavar="PATH", help="CSV or Parquet: ts, label, features..."
    )
    source.add_argument("--from-topic", action="store_true", help="read the trade-outcomes topic")
    train.add_argument("--max-rows", type=int, default=None, help="use only the newest N outcomes")
    train.add_argument(
        "--no-activate", action="store_true", help="store the version without activating it"
    )

    models = commands.add_parser(
        "models",
        help="batch-model registry: list, show, compare, promote, rollback, rebuild",
        description="Operate the batch-model registry (needs REDIS_URL; announces changes on "
        "model-updates when KAFKA_BOOTSTRAP_SERVERS is set).",
    )
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="stored versions, active (*) and staged (s)",
        description="List stored versions with their holdout numbers.",
    )
    listing.add_argument("--json", action="store_true", help="print JSON (docs/operations.md)")
    show = actions.add_parser(
        "show",
        help="a version: family, window, metrics, trading metrics, gate, explanation",
        description="Print what a version is and how it scored (--json: its full metadata).",
    )
    show.add_argument("version")
    show.add_argument(
        "--json",
        action="store_true",
        help="one object: version, role, metadata (docs/operations.md)",
    )
    compare = actions.add_parser(
        "compare",
        help="two versions side by side",
        description=(
            "Metrics, trading metrics, importance, data window and parameters of two "
            "versions side by side; * marks what differs."
        ),
    )
    compare.add_argument("first", metavar="A")
    compare.add_argument("second", metavar="B")
    compare.add_argument("--json", action="store_true", help="print the rows as JSON")
    promote = actions.add_parser(
        "promote",
        help="activate a version (default: the staged one)",
        description="Make a version active; every worker scores with it within seconds.",
    )
    promote.add_argument("version", nargs="?")
    promote.add_argument("--reason", default="manual promotion")
    promote.add_argument(
        "--force", action="store_true", help="promote even a version the gate rejected"
    )
    rollback = actions.add_parser(
        "rollback",
        help="re-activate an earlier version (default: the previous one)",
        description="Roll back to a version that was active before.",
    )
    rollback.add_argument("version", nargs="?")
    rollback.add_argument("--reason", default="manual rollback")
    rebuild = actions.add_parser(
        "rebuild",
        help="restore the registry in Redis from the model store's journal",
        description=(
            "After Redis lost the registry keys: replay the journal (registry/ on the model "
            "store) into Redis. Refused when Redis holds changes the journal lacks."
        ),
    )
    rebuild.add_argument(
        "--force",
        action="store_true",
        help="overwrite the live registry even if it holds changes the journal lacks",
    )

    retrain = commands.add_parser(
        "retrain",
        help="enqueue a retrain request for the retrainer",
        description="Publish a request on retrain-requests; the retrainer acts on it.",
    )
    retrain.add_argument("--reason", default="manual request")
    retrain.add_argument("--window-outcomes", type=int, help="train on the newest N outcomes")
    retrain.add_argument("--window-days", type=float, help="train on the last D days")
    retrain.add_argument("--force", action="store_true", help="ignore the retrainer's cooldown")

    retrainer = commands.add_parser(
        "retrainer",
        help="serve retrain requests: train, gate against the active model, promote",
        description="Run the retrainer process (one active at a time; others wait). Needs "
        "both KAFKA_BOOTSTRAP_SERVERS and REDIS_URL, or neither (embedded), or --embedded.",
    )
    retrainer.add_argument(
        "--embedded",
        action="store_true",
        help="start an embedded broker and/or Redis for whichever is not configured",
    )

    notify = commands.add_parser(
        "notify",
        help="send drift alerts, recoveries and model updates to webhooks (Slack, JSON)",
        description="Deliver drift-alerts and model-updates to notify.webhooks, each notice "
        "once per webhook across restarts (offsets and delivered ids in Redis). Needs both "
        "KAFKA_BOOTSTRAP_SERVERS and REDIS_URL, or neither (embedded), or --embedded.",
    )
    notify.add_argument(
        "--embedded",
        action="store_true",
        help="start an embedded broker and/or Redis for whichever is not configured",
    )

    dashboard = commands.add_parser(
        "dashboard",
        help="a live web page of a running deployment (accuracy, drift, versions, lag, latency)",
        description="Serve a page that redraws every dashboard.interval_s from Redis and the "
        "topics: per-key accuracy and log loss of online / batch / blend, drift alerts and "
        "model updates on the same time axis, versions, lag and signal latency. Reads only; "
        "needs KAFKA_BOOTSTRAP_SERVERS and REDIS_URL (docs/operations.md).",
    )
    dashboard.add_argument("--host", help="bind address (default dashboard.host)")
    dashboard.add_argument("--port", type=int, help="port (default dashboard.port; 0: any)")

    alerts = commands.add_parser(
        "alerts",
        help="drift alerts: tail the drift-alerts topic",
        description="Read the drift-alerts topic (needs KAFKA_BOOTSTRAP_SERVERS).",
    )
    alert_actions = alerts.add_subparsers(dest="action", metavar="ACTION", required=True)
    tail = alert_actions.add_parser(
        "tail",
        help="the last alerts, then new ones as they come (Ctrl-C ends)",
        description="Print recent drift alerts and recoveries in a readable form.",
    )
    tail.add_argument("-n", "--last", type=int, default=20, help="how many recent ones first")
    tail.add_argument("--no-follow", action="store_true", help="print and exit")
    tail.add_argument("--json", action="store_true", help="raw JSON lines")

    dlq = commands.add_parser(
        "dlq",
        help="dead letters: tail them, replay fixed ones to their input topic",
        description="Read the dead-letter topics and send fixed originals back (needs "
        "KAFKA_BOOTSTRAP_SERVERS; replay also REDIS_URL, where it marks what it sent).",
    )
    dlq_actions = dlq.add_subparsers(dest="action", metavar="ACTION", required=True)
    dlq_tail = dlq_actions.add_parser(
        "tail",
        help="the last letters, then new ones as they come (Ctrl-C ends)",
        description="Print dead letters readably: when, kind, source position, reason, and "
        "the start of the original.",
    )
    dlq_replay = dlq_actions.add_parser(
        "replay",
        help="re-validate selected letters' originals and produce them again (dry run first)",
        description="Take each selected letter's original, apply --rename / --set, check it "
        "against the workers' contract, and with --execute produce it to its input topic "
        "(record key and partition as the workers expect). A letter is never replayed twice; "
        "duplicates are never replayed. Without --execute nothing is sent.",
    )
    for action in (dlq_tail, dlq_replay):
        action.add_argument(
            "--source",
            choices=["outcomes", "requests"],
            default="outcomes",
            help="whose dead letters: trade-outcomes (default) or signal-requests",
        )
        action.add_argument(
            "--kind", action="append", default=[], help="only this kind (repeatable)"
        )
        action.add_argument(
            "--grep", metavar="REGEX", help="only letters whose reason or original text matches"
        )
    dlq_tail.add_argument("-n", "--last", type=int, default=20, help="how many recent ones first")
    dlq_tail.add_argument("--no-follow", action="store_true", help="print and exit")
    dlq_tail.add_argument("--json", action="store_true", help="raw JSON lines")
    dlq_replay.add_argument(
        "--letter",
        action="append",
        default=[],
        metavar="TOPIC:PARTITION:OFFSET",
        help="only this letter (as tail --json and replay print it; repeatable)",
    )
    dlq_replay.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename a field or a feature in the original (repeatable)",
    )
    dlq_replay.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="set a field of the original to a JSON value (repeatable)",
    )
    dlq_replay.add_argument(
        "--execute", action="store_true", help="send (default: a dry run that only reports)"
    )

    schemas = commands.add_parser(
        "schemas",
        help="write the JSON Schemas of this deployment's messages",
        description="Write one JSON Schema per message (docs/messages.md) into a directory, "
        "with this deployment's features (model.features, required and bounded) and model-key "
        "field: validate your producers and consumers against them.",
    )
    schemas.add_argument("--out", type=Path, required=True, help="target directory")

    drift = commands.add_parser(
        "drift",
        help="drift state per key: detectors, PSI per feature, last alerts",
        description="Report what the drift monitors see (needs REDIS_URL).",
    )
    drift_actions = drift.add_subparsers(dest="action", metavar="ACTION", required=True)
    drift_report = drift_actions.add_parser(
        "report",
        help="per key and feature: PSI, detector state, last alerts",
        description="Per model key: concept error levels, PSI per feature, label and "
        "prediction drift, and the last alerts.",
    )
    drift_report.add_argument("--json", action="store_true", help="print JSON")

    backtest = commands.add_parser(
        "backtest",
        help="replay past outcomes through the learner in process: accuracy, log loss, "
        "drift alerts and trading metrics per blend mode",
        description="Run the worker's learner and blend over a file of outcomes or the "
        "trade-outcomes topic, in process (in-memory state: nothing is read from or written to "
        "Redis), with the batch model active at each outcome's time per the registry journal on "
        "the model store. Compare blend modes, weights and decay on your own history before "
        "changing production.",
    )
    source = backtest.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-file",
        metavar="PATH",
        help="CSV or Parquet: ts, label, features...; optional key, outcome_id, realized_rr",
    )
    source.add_argument(
        "--from-topic", action="store_true", help="read the trade-outcomes topic (by record time)"
    )
    backtest.add_argument("--since", help="first time (ISO-8601 or epoch ms), inclusive")
    backtest.add_argument("--until", help="last time (ISO-8601 or epoch ms), exclusive")
    backtest.add_argument(
        "--mode",
        action="append",
        choices=[
            f"{mode}{start}"
            for mode in ("fixed", "optimized", "stacked")
            for start in ("", "+configured", "+fitted")
        ],
        metavar="MODE[+START]",
        help="blend mode to replay: fixed, optimized or stacked, +configured or +fitted to set "
        "blend.start (repeat to compare; default: the settings' blend.mode and blend.start)",
    )
    batch_source = backtest.add_mutually_exclusive_group()
    batch_source.add_argument(
        "--batch-version", metavar="VERSION", help="score with this stored version throughout"
    )
    batch_source.add_argument(
        "--no-batch", action="store_true", help="no batch model (the online model alone)"
    )
    backtest.add_argument(
        "--threshold",
        type=float,
        default=0.55,
        help="take a trade when the score is at least this (default 0.55)",
    )
    backtest.add_argument(
        "--segment-at",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also report outcomes before / after the N-th (repeatable)",
    )
    backtest.add_argument("--keys", type=int, default=10, help="keys shown (default 10)")
    backtest.add_argument("--json", metavar="PATH", help="also write the full report as JSON")

    status = commands.add_parser(
        "status",
        help="active batch version, keys, update counts and consumer lag",
        description="Inspect a running deployment (needs KAFKA_BOOTSTRAP_SERVERS and REDIS_URL).",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``streamlearn`` console script."""
    # First thing: a stop request during start-up is a clean exit, not a death by signal.
    # Commands that run services install their own handlers later (Faust's worker, etc.).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    args = _parser().parse_args(argv)
    redact = Redactor()  # masks passwords in URLs until the settings name the secrets
    try:
        settings = load_settings(args.config)
        if args.log_level:
            settings = settings.with_overrides(log={"level": args.log_level})
        redact = process_redactor(settings.secrets())
        configure_logging(settings.log.level, redact)
        handler = _COMMANDS[args.command]
        return handler(settings, args) or 0
    except KeyboardInterrupt:
        print("streamlearn: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("streamlearn: stopped", file=sys.stderr)
        return 0
    except SettingsError as exc:
        print(f"streamlearn: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # one line for the user; the traceback only at DEBUG
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            log.exception("command failed")
        print(f"streamlearn: error: {redact(_one_line(exc))}", file=sys.stderr)
        return EXIT_FAILURE


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message is the whole story (no exception type shown)."""
    from app.backtest import BacktestError
    from app.demo import DemoError
    from app.dlq import DeadLetterCommandError
    from app.drift_cli import DriftCommandError
    from app.embedded import EmbeddedStartError
    from app.models_cli import RegistryCommandError
    from app.notify import NotifyError
    from app.status import StatusError
    from models.batch import BatchModelError
    from models.extras import MissingExtraError
    from models.registry import RegistryError
    from models.store import ModelStoreError
    from models.training import TrainingDataError
    from models.triggers import ScheduleError
    from models.tuning import TuningError
    from streams.client import ClientError, ContractError
    from streams.reader import TopicReadError
    from streams.topics import TopicLayoutError

    return (
        CommandError,
        DeadLetterCommandError,
        ClientError,
        ContractError,
        BacktestError,
        DemoError,
        EmbeddedStartError,
        StatusError,
        BatchModelError,
        ModelStoreError,
        TrainingDataError,
        TopicReadError,
        TopicLayoutError,
        RegistryError,
        RegistryCommandError,
        DriftCommandError,
        ScheduleError,
        NotifyError,
        MissingExtraError,
        TuningError,
    )


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, _expected_errors()) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def require_explicit_embedding(settings: Settings, embedded: bool) -> None:
    """Refuse a half-configured deployment: one of broker / Redis given, the other not.

    Embedded services are for trying things on one machine; a worker that talks to a real
    broker but keeps its state in a throwaway embedded Redis would ack Kafka and lose every
    learned model on restart. Only ``--embedded`` (an explicit request) allows it.
    """
    kafka, redis_url = settings.kafka.bootstrap_servers, settings.redis.url
    if embedded or bool(kafka) == bool(redis_url):
        return
    given, missing = (
        ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")
        if kafka
        else (
            "REDIS_URL",
            "KAFKA_BOOTSTRAP_SERVERS",
        )
    )
    raise CommandError(
        f"{given} is set but {missing} is not: set {missing} too, or pass --embedded to start "
        f"an embedded one (its data is lost when the process stops)"
    )


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from app.embedded import infrastructure
    from app.worker import run_worker

    require_explicit_embedding(settings, args.embedded)
    with infrastructure(settings) as endpoints:
        if not (settings.kafka.bootstrap_servers and settings.redis.url):
            log.warning(
                "using embedded infrastructure",
                extra={"kafka": endpoints.kafka_bootstrap, "redis": endpoints.redis.display},
            )
        run_worker(settings, endpoints)
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from app.demo import DemoOptions, run_demo

    options = DemoOptions(
        seconds=args.seconds,
        rate=args.rate,
        seed=args.seed,
        history=args.history,
        screenshot=args.screenshot,
    )
    return run_demo(settings, options)


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from app.train import TrainOptions, run_train

    options = TrainOptions(
        from_file=args.from_file,
        from_topic=args.from_topic,
        max_rows=args.max_rows,
        activate=not args.no_activate,
    )
    return run_train(settings, options)


def _models(settings: Settings, args: argparse.Namespace) -> int:
    from app import models_cli

    if args.action == "list":
        return models_cli.list_versions(settings, as_json=args.json)
    if args.action == "show":
        return models_cli.show_version(settings, args.version, as_json=args.json)
    if args.action == "compare":
        return models_cli.compare_versions(settings, args.first, args.second, as_json=args.json)
    if args.action == "promote":
        return models_cli.promote(settings, args.version, args.reason, force=args.force)
    if args.action == "rollback":
        return models_cli.rollback(settings, args.version, args.reason)
    return models_cli.rebuild(settings, force=args.force)


def _retrain(settings: Settings, args: argparse.Namespace) -> int:
    from app.models_cli import request_retrain

    return request_retrain(
        settings, args.reason, args.window_outcomes, args.window_days, args.force
    )


def _retrainer(settings: Settings, args: argparse.Namespace) -> int:
    from app.embedded import infrastructure
    from app.retrainer import run_retrainer
    from streams.topics import ensure_topics_for

    require_explicit_embedding(settings, args.embedded)
    with infrastructure(settings) as endpoints:
        ensure_topics_for(settings, endpoints.kafka)
        return run_retrainer(settings, endpoints)


def _notify(settings: Settings, args: argparse.Namespace) -> int:
    from app.embedded import infrastructure
    from app.notify import run_notify
    from streams.topics import ensure_topics_for

    require_explicit_embedding(settings, args.embedded)
    with infrastructure(settings) as endpoints:
        ensure_topics_for(settings, endpoints.kafka)
        return run_notify(settings, endpoints)


def _dashboard(settings: Settings, args: argparse.Namespace) -> int:
    from app.composition import kafka_connection, redis_connection
    from app.dashboard.service import run_dashboard
    from app.embedded import Endpoints

    kafka, redis = kafka_connection(settings), redis_connection(settings)
    if kafka is None or redis is None:
        raise CommandError(
            "dashboard watches a running deployment: set KAFKA_BOOTSTRAP_SERVERS and REDIS_URL"
        )
    overrides = {"host": args.host, "port": args.port}
    settings = settings.with_overrides(
        dashboard={k: v for k, v in overrides.items() if v is not None}
    )
    return run_dashboard(settings, Endpoints(kafka, redis))


def _alerts(settings: Settings, args: argparse.Namespace) -> int:
    from app.drift_cli import tail_alerts

    return tail_alerts(settings, args.last, follow=not args.no_follow, as_json=args.json)


def _dlq(settings: Settings, args: argparse.Namespace) -> int:
    from app import dlq

    if args.action == "tail":
        return dlq.tail(
            settings,
            args.source,
            args.last,
            args.kind,
            args.grep,
            follow=not args.no_follow,
            as_json=args.json,
        )
    fixes = dlq.Fixes.parse(args.rename, args.set)
    dlq.replay(settings, args.source, args.kind, args.grep, args.letter, fixes, args.execute)
    return 0


def _schemas(settings: Settings, args: argparse.Namespace) -> int:
    from streams.schemas import deployment_schemas, write

    written = write(
        args.out,
        deployment_schemas(
            settings.model.features, settings.model.key_field, settings.limits.max_abs_feature
        ),
    )
    print(f"wrote {len(written)} schemas to {args.out}")
    return 0


def _drift(settings: Settings, args: argparse.Namespace) -> int:
    from app.drift_cli import report

    return report(settings, as_json=args.json)


def _backtest(settings: Settings, args: argparse.Namespace) -> int:
    from app.backtest import BacktestOptions, parse_time, run_backtest

    if not 0.0 <= args.threshold <= 1.0:
        raise CommandError(f"--threshold must be in [0, 1], got {args.threshold}")
    options = BacktestOptions(
        from_file=args.from_file,
        from_topic=args.from_topic,
        since_ms=None if args.since is None else parse_time(args.since),
        until_ms=None if args.until is None else parse_time(args.until),
        modes=tuple(dict.fromkeys(args.mode or ())),
        batch_version=args.batch_version,
        no_batch=args.no_batch,
        threshold=args.threshold,
        segments=tuple(args.segment_at),
        keys_shown=args.keys,
        json_path=args.json,
    )
    return run_backtest(settings, options)


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from app.status import run_status

    return run_status(settings, as_json=args.json)


_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "worker": _worker,
    "demo": _demo,
    "train": _train,
    "status": _status,
    "models": _models,
    "retrain": _retrain,
    "retrainer": _retrainer,
    "notify": _notify,
    "dashboard": _dashboard,
    "alerts": _alerts,
    "drift": _drift,
    "dlq": _dlq,
    "schemas": _schemas,
    "backtest": _backtest,
}


if __name__ == "__main__":
    sys.exit(main())
