"""The chaos harness: private services that can be paused, killed and restarted, a hostile
corpus mixed into the streams, and the exact checks every scenario ends with.

Each scenario gets its own broker (tansu) and its own Redis (AOF on, ``appendfsync
everysec``, on a fixed port so a restart keeps the address) because it stops them; the
session's shared services are left alone.
"""

from __future__ import annotations

import math
import os
import random
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from river import compose, linear_model, optim, preprocessing

from app.embedded import (
    ChildProcess,
    EmbeddedInfrastructure,
    Endpoints,
    _redis_ready,
    free_port,
    redis_server_binary,
)
from app.train import train_and_store
from models.dedupe import id_hash
from models.market import MarketSimulator
from streams.reader import read_topic
from tests.integration.infra import Deployment, make_deployment

KEYS = tuple(f"K{i}" for i in range(6))


class ChaosRedis:
    """A redis-server with AOF (everysec) in a directory of its own, restartable in place."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._child: ChildProcess | None = None

    def start(self) -> None:
        command = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(self.dir),
        ]
        self._child = ChildProcess("redis", command, self.dir)
        self._child.start(lambda: _redis_ready(self.url))

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    def kill9_and_restart(self) -> None:
        """A host crash of Redis: SIGKILL (AOF may miss up to a second), then start again."""
        pid = self.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        self._child = None
        self.start()

    def stop(self) -> None:
        if self._child is not None:
            self._child.stop()


@dataclass
class Services:
    """The private broker and Redis of one scenario."""

    endpoints: Endpoints
    redis: ChaosRedis
    broker_pid: int


@contextmanager
def private_services(workdir: Path) -> Iterator[Services]:
    """A broker and an AOF Redis for one scenario, stopped afterwards."""
    chaos_redis = ChaosRedis(workdir)
    chaos_redis.start()
    infra = EmbeddedInfrastructure(kafka=None, redis_url=chaos_redis.url)
    try:
        endpoints = infra.start()
        yield Services(endpoints, chaos_redis, infra.pids[0])
    finally:
        for pid in [*infra.pids, chaos_redis.pid]:  # never leave a stopped process behind
            _continue(pid)
        infra.stop()
        chaos_redis.stop()


def _continue(pid: int | None) -> None:
    if pid:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def pause(pid: int, seconds: float) -> None:
    """SIGSTOP a process for ``seconds`` (a GC pause, a VM freeze, a stuck disk)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


# -- the data --------------------------------------------------------------------------------


def hostile_outcomes(base: dict) -> list[tuple[bytes | None, bytes | None]]:
    """Every way an outcome can be wrong: (record key, value) pairs, none of them learnable."""

    def variant(**changes: object) -> bytes:
        message = {**base, "features": dict(base["features"])}
        for name, value in changes.items():
            if name.startswith("f_"):
                message["features"][name[2:]] = value
            else:
                message[name] = value
        return orjson.dumps(message)

    key = base["key"].encode()
    first = next(iter(base["features"]))
    finite_huge = [1e200, -1e154, 3.5e38, 1.7976931348623157e308]
    corpus: list[tuple[bytes | None, bytes | None]] = [
        (key, variant(**{f"f_{first}": v})) for v in finite_huge
    ]
    number = orjson.dumps(base["features"][first])
    plain = variant()
    for spelling in (b"NaN", b"nan", b"Infinity", b"-Infinity", b"inf", b"1e999", b"-1e999"):
        corpus.append((key, plain.replace(number, spelling, 1)))
    corpus += [
        (key, variant(**{f"f_{first}": "NaN"})),
        (key, variant(**{f"f_{first}": None})),
        (key, variant(**{f"f_{first}": True})),
        (key, variant(ts=2**63)),
        (key, variant(ts=-1)),
        (key, variant(ts=1.5)),
        (key, plain.replace(b'"ts":', b'"ts":' + b"9" * 40 + b',"x":', 1)),
        (key, variant(label=2)),
        (key, variant(label="1")),
        (key, variant(features=[1, 2])),
        (key, b'{"a":' * 5000 + b"1" + b"}" * 5000),
        (key, b"[" * 5000 + b"]" * 5000),
        (key, b'{"outcome_id": "\xff\xfe\xfd"}'),
        (key, b"\xc3\x28 not utf-8"),
        (key, b"{" + b" " * 300_000 + b"}"),
        (key, b"x" * 900_000),
        (b"k" * 300_000, plain),
        (None, plain),
        (b"other-key", plain),
        (key, None),
        (key, b""),
        (key, variant(outcome_id="o" * 5000)),
    ]
    return corpus


@dataclass
class Stream:
    """What a scenario sends, and what a correct system must end with."""

    valid: list[dict]
    requests: list[dict]
    duplicates: int
    hostile: int
    per_key: dict[str, list[dict]] = field(default_factory=dict)


def produce(deployment: Deployment, n_outcomes: int, n_requests: int, seed: int) -> Stream:
    """Send valid outcomes with hostile records and producer retries (repeated outcome_ids)
    spread through them, and requests; returns what was sent."""
    rng = random.Random(seed)
    sim = MarketSimulator(seed=seed, keys=KEYS, change_points=[n_outcomes // 2])
    valid = sim.outcomes(n_outcomes)
    requests = sim.requests(n_requests)
    producer = deployment.producer()
    names = deployment.names
    hostile = 0
    duplicates = 0
    corpus = hostile_outcomes(valid[0])
    step = max(1, n_outcomes // (2 * len(corpus) + 1))
    for start in range(0, n_outcomes, step):
        chunk = valid[start : start + step]
        producer.send_outcomes(chunk)
        if rng.random() < 0.5 and chunk:  # a producer retry: the same outcome again
            again = rng.choice(chunk)
            producer.send_outcomes([again])
            duplicates += 1
        if corpus:
            record_key, value = corpus.pop(0)
            producer.send_raw(names.outcomes, record_key, value)
            hostile += 1
    per_request = max(1, n_requests // 10)
    for start in range(0, n_requests, per_request):
        producer.send_requests(requests[start : start + per_request])
        producer.send_raw(names.requests, b"K0", b'{"request_id": 1}')
    producer.flush()
    per_key: dict[str, list[dict]] = {}
    for outcome in valid:
        per_key.setdefault(outcome["key"], []).append(outcome)
    return Stream(valid, requests, duplicates, hostile, per_key)


# -- the checks ------------------------------------------------------------------------------


def river_reference(outcomes: list[dict]) -> compose.Pipeline:
    """River's ``StandardScaler | LogisticRegression`` trained in-process, in order."""
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.01))
    for outcome in outcomes:
        model.learn_one(outcome["features"], outcome["label"] == 1)
    return model


@dataclass
class Verdict:
    """One row of the chaos table."""

    scenario: str
    engine: str
    events: int
    outcomes: int
    lost: int
    duplicated: int
    max_weight_diff: float
    requests: int
    unanswered: int
    non_finite_scores: int
    worker_exits: int
    dead_letters: dict[str, int] = field(default_factory=dict)
    #: (partition, offset) of some valid outcomes missing from their key's id window.
    missing: list[tuple[int, int]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def assert_clean(self, stream: Stream) -> None:
        expected = {"contract": stream.hostile, "duplicate": stream.duplicates}
        expected = {k: v for k, v in expected.items() if v}
        assert self.dead_letters == expected, (expected, self)
        assert (self.lost, self.duplicated, self.max_weight_diff) == (0, 0, 0.0), self
        assert (self.unanswered, self.non_finite_scores, self.worker_exits) == (0, 0, 0), self


def verdict(
    scenario: str,
    engine: str,
    events: int,
    deployment: Deployment,
    stream: Stream,
    unexpected_exits: int,
) -> Verdict:
    """Compare the checkpointed models with River, and the signals with the requests."""
    models = deployment.key_models()
    lost = duplicated = 0
    max_diff = 0.0
    where = {}
    for record in read_topic(deployment.endpoints.kafka, deployment.names.outcomes):
        try:
            message = orjson.loads(record.value)
        except (orjson.JSONDecodeError, TypeError):
            continue
        if isinstance(message, dict) and isinstance(message.get("outcome_id"), str):
            where.setdefault(message["outcome_id"], (record.partition, record.offset))
    missing: list[tuple[int, int]] = []
    for key, outcomes in stream.per_key.items():
        model = models.get(key)
        updates = 0 if model is None else model.updates
        if model is not None and model.seen is not None and updates != len(outcomes):
            recent = outcomes[-model.seen.size :]
            missing += [
                where[o["outcome_id"]] for o in recent if id_hash(o["outcome_id"]) not in model.seen
            ]
        lost += max(0, len(outcomes) - updates)
        duplicated += max(0, updates - len(outcomes))
        reference = river_reference(outcomes)
        weights = reference["LogisticRegression"].weights
        intercept = reference["LogisticRegression"].intercept
        if model is None:
            max_diff = math.inf
            continue
        got = model.learner.weights
        diffs = [abs(got.get(name, math.nan) - w) for name, w in weights.items()]
        diffs.append(abs(model.learner.intercept - intercept))
        max_diff = max(max_diff, *(math.inf if math.isnan(d) else d for d in diffs))
    letters: dict[str, int] = {}
    seen_offsets: set[tuple[int, int]] = set()
    for letter in deployment.read(deployment.names.outcomes_dead_letter):
        where = (letter["source_partition"], letter["source_offset"])
        if where in seen_offsets:
            continue  # dead letters are at-least-once: a replay may write one twice
        seen_offsets.add(where)
        kind = (
            letter["reason"].split(":")[0]
            if letter["reason"].startswith(("duplicate", "non_finite", "internal"))
            else "contract"
        )
        letters[kind] = letters.get(kind, 0) + 1
    signals = deployment.read(deployment.names.signals)
    answered = {s["request_id"] for s in signals}
    wanted = {r["request_id"] for r in stream.requests}
    non_finite = sum(
        1 for s in signals if not (isinstance(s["score"], float) and math.isfinite(s["score"]))
    )
    return Verdict(
        scenario=scenario,
        engine=engine,
        events=events,
        outcomes=len(stream.valid),
        lost=lost,
        duplicated=duplicated,
        max_weight_diff=max_diff,
        requests=len(wanted),
        unanswered=len(wanted - answered),
        non_finite_scores=non_finite,
        worker_exits=unexpected_exits,
        dead_letters=letters,
        missing=sorted(missing)[:20],
    )


def chaos_deployment(services: Services, workdir: Path, engine: str) -> Deployment:
    """Settings for a chaos scenario: 4 partitions, keyed models, a trained batch model."""
    deployment = make_deployment(
        services.endpoints,
        workdir / "store",
        model={"key_field": "key"},
        topics={"partitions": 4},
        processing={"engine": engine, "learn_batch": 200},
        checkpoint={"every_outcomes": 300, "interval_ms": 100},
        drift={"enabled": False},
        kafka={"session_timeout_s": 6.0},
        # Wide enough to hold each key's whole stream in the short runs, so a loss is located.
        online={"dedupe_window": 4000},
    )
    deployment.create_topics()
    client = services.endpoints.redis.client()
    try:
        history = MarketSimulator(seed=99, keys=KEYS).frame(3000)
        train_and_store(deployment.settings, history, "chaos", client, verbose=False)
    finally:
        client.close()
    return deployment


def applied_total(deployment: Deployment) -> int:
    """Records applied in Redis over all partitions (0 while Redis does not answer: the
    state store raises ``ConnectionError``, an ``OSError``)."""
    try:
        return sum(offset + 1 for offset in deployment.applied_offsets().values())
    except OSError:
        return 0


def signal_count(deployment: Deployment) -> int:
    """Signals on the topic so far."""
    return len(deployment.read(deployment.names.signals))
