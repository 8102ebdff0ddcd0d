"""``streamlearn dlq tail`` and ``streamlearn dlq replay``: dead letters, read and sent back.

``tail`` prints letters readably, filtered by kind and text. ``replay`` takes the original of
each selected letter (from the letter, or from its source topic when it was too large to copy),
applies the fixes asked for (field and feature renames, field values), checks it against the
workers' contract and, with ``--execute``, produces it to its input topic with the record key
and partition the workers expect. Without ``--execute`` it only says what it would do.

Never twice: a letter is marked in Redis (HSETNX) before its original is produced again, and a
marked letter is never produced again. Behind that, the workers' ``outcome_id`` deduplication
keeps a replayed outcome from being learned twice even if it were sent twice.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka.consumer.fetcher import ConsumerRecord

from app.composition import redis_connection, replay_ledger
from config import Settings
from models.coordination import ReplayLedger
from streams.client.endpoint import Endpoint, partitions_of
from streams.client.records import outcome_record, request_record
from streams.contracts import ContractError, ContractSpec
from streams.partitioning import partition_for
from streams.reader import TopicReader

#: Which input topic a ``--source`` names, and how its originals are checked.
SOURCES = ("outcomes", "requests")


class DeadLetterCommandError(RuntimeError):
    """A ``dlq`` command cannot run (missing configuration, unknown topic)."""


@dataclass(frozen=True)
class Letter:
    """A dead letter as read back: where it is, and its fields."""

    topic: str
    partition: int
    offset: int
    body: dict[str, Any]

    @property
    def id(self) -> str:
        """``topic:partition:offset`` of the letter itself (the replay mark's name)."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def kind(self) -> str:
        """The kind of rule the original broke."""
        return str(self.body.get("kind", "?"))

    @property
    def reason(self) -> str:
        """Why it was refused."""
        return str(self.body.get("reason", ""))

    def original(self) -> tuple[bytes | None, bytes | None] | None:
        """``(key, value)`` of the original when the letter holds them, else None."""
        if not self.body.get("original_copied", False):
            return None
        body = self.body
        return _unb64(body.get("original_key_b64")), _unb64(body.get("original_value_b64"))

    def matches(self, kinds: Sequence[str], pattern: re.Pattern[str] | None) -> bool:
        """Whether the letter is of one of ``kinds`` (any if empty) and its reason or original
        text matches ``pattern`` (any if None)."""
        if kinds and self.kind not in kinds:
            return False
        if pattern is None:
            return True
        text = f"{self.reason}\n{self.body.get('original_value_text') or ''}"
        return pattern.search(text) is not None


def parse_letter(topic: str, partition: int, offset: int, value: bytes | None) -> Letter:
    """A letter from its record (an unreadable one keeps its bytes in ``reason``)."""
    try:
        body = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        body = {"kind": "?", "reason": f"(unreadable letter) {(value or b'')[:200]!r}"}
    return Letter(topic, partition, offset, body)


def format_letter(letter: Letter, width: int = 120) -> str:
    """One readable line: when, kind, source position, reason, and the original's start."""
    failed_at = letter.body.get("failed_at")
    when = (
        datetime.fromtimestamp(failed_at / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(failed_at, int)
        else "?"
    )
    source = (
        f"{letter.body.get('source_topic')}/{letter.body.get('source_partition')}"
        f"@{letter.body.get('source_offset')}"
    )
    text = letter.body.get("original_value_text")
    if text is None:
        size = letter.body.get("original_size")
        text = f"({size} bytes, not text)" if size is not None else "(no value)"
    shown = text if len(text) <= width else text[:width] + "..."
    return f"{when} {letter.kind:<12} {source:<28} {letter.reason} | {shown}"


@dataclass(frozen=True)
class Fixes:
    """What to change in an original before it is sent again: renamed fields (top level) and
    features, and fields set to a JSON value."""

    renames: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, renames: Iterable[str], values: Iterable[str]) -> Fixes:
        """From ``OLD=NEW`` and ``FIELD=JSON`` strings (the command line's form)."""
        renamed = dict(_pair(item, "--rename") for item in renames)
        valued = {}
        for item in values:
            name, raw = _pair(item, "--set")
            try:
                valued[name] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                valued[name] = raw  # a bare word is a string
        return cls(renamed, valued)

    def apply(self, message: dict[str, Any]) -> dict[str, Any]:
        """The fixed copy of ``message``."""
        fixed = {self.renames.get(name, name): value for name, value in message.items()}
        features = fixed.get("features")
        if isinstance(features, dict):
            fixed["features"] = {self.renames.get(n, n): v for n, v in features.items()}
        fixed.update(self.values)
        return fixed


@dataclass
class Verdict:
    """What replay does (or would do) with one letter."""

    letter: Letter
    action: str  # replay | replayed | invalid | skipped | done_before
    detail: str
    key: bytes | None = None
    value: bytes | None = None


@dataclass
class ReplayReport:
    """Counts per action, and the verdicts in letter order."""

    verdicts: list[Verdict] = field(default_factory=list)

    def count(self, action: str) -> int:
        """How many letters got ``action``."""
        return sum(1 for verdict in self.verdicts if verdict.action == action)


def judge(
    letter: Letter,
    original: tuple[bytes | None, bytes | None] | None,
    fixes: Fixes,
    check: Callable[[Mapping[str, Any], ContractSpec], tuple[bytes, bytes]],
    spec: ContractSpec,
) -> Verdict:
    """Whether a letter's (fixed) original would now be accepted, and as which record."""
    if letter.kind == "duplicate":
        return Verdict(letter, "skipped", "a duplicate: its outcome_id was learned already")
    if original is None:
        return Verdict(letter, "invalid", "the original is no longer in its source topic")
    _, value = original
    try:
        message = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        return Verdict(letter, "invalid", f"the original is not JSON ({exc}); nothing to fix")
    if not isinstance(message, dict):
        return Verdict(letter, "invalid", "the original is not a JSON object; nothing to fix")
    fixed = fixes.apply(message)
    try:
        key, record = check(fixed, spec)
    except ContractError as exc:
        return Verdict(letter, "invalid", f"still refused: {exc.reason}")
    return Verdict(letter, "replay", record.decode(errors="replace"), key, record)


def tail(
    settings: Settings,
    source: str,
    last: int,
    kinds: Sequence[str],
    grep: str | None,
    follow: bool,
    as_json: bool,
) -> int:
    """Print the last ``last`` matching letters of ``source``'s dead-letter topic, then (with
    ``follow``) new ones until Ctrl-C."""
    endpoint = _endpoint(settings)
    topic = _dead_letter_topic(endpoint, source)
    pattern = _pattern(grep)
    with TopicReader(endpoint.kafka, topic) as reader:
        ends = reader.high_watermarks()
        if kinds or pattern is not None:
            reader.seek()  # a filter may keep only old letters: read them all
        else:  # the last ``last`` of each partition are enough to pick the newest overall
            reader.seek({p: max(0, end - max(last, 0)) for p, end in ends.items()})
        letters = [
            letter
            for letter in _letters(reader.read_to_end(ends), topic)
            if letter.matches(kinds, pattern)
        ]
        letters.sort(key=lambda letter: letter.body.get("failed_at") or 0)
        for letter in letters[-last:] if last > 0 else []:
            _show(letter, as_json)
        while follow:
            for letter in _letters(reader.poll(timeout_ms=500), topic):
                if letter.matches(kinds, pattern):
                    _show(letter, as_json)
    return 0


def _letters(records: Iterable[ConsumerRecord], topic: str) -> Iterator[Letter]:
    for record in records:
        yield parse_letter(topic, record.partition, record.offset, record.value)


def replay(
    settings: Settings,
    source: str,
    kinds: Sequence[str],
    grep: str | None,
    letters: Sequence[str],
    fixes: Fixes,
    execute: bool,
    say: Callable[[str], None] = print,
) -> ReplayReport:
    """Judge every selected letter of ``source``'s dead-letter topic and, with ``execute``,
    produce the accepted ones to ``source`` (each at most once, ever)."""
    endpoint = _endpoint(settings)
    redis = redis_connection(settings)
    if redis is None:
        raise DeadLetterCommandError(
            "replay remembers what it sent in Redis: set REDIS_URL (also for a dry run, which "
            "shows what was replayed before)"
        )
    topic = _dead_letter_topic(endpoint, source)
    target = endpoint.topics.outcomes if source == "outcomes" else endpoint.topics.requests
    check = outcome_record if source == "outcomes" else request_record
    pattern = _pattern(grep)
    wanted = set(letters)
    report = ReplayReport()
    with TopicReader(endpoint.kafka, topic) as reader:
        reader.seek()
        selected = [
            letter
            for letter in _letters(reader.read_to_end(), topic)
            if letter.matches(kinds, pattern) and (not wanted or letter.id in wanted)
        ]
    with replay_ledger(settings, redis) as ledger, contextlib.ExitStack() as stack:
        done = ledger.replayed([letter.id for letter in selected])
        originals: TopicReader | None = None  # opened for the first letter without its copy
        for letter in selected:
            if letter.id in done:
                report.verdicts.append(Verdict(letter, "done_before", done[letter.id]))
                continue
            original = letter.original()
            if original is None:
                if originals is None:
                    originals = stack.enter_context(TopicReader(endpoint.kafka, target))
                original = _from_source(originals, letter)
            report.verdicts.append(judge(letter, original, fixes, check, endpoint.spec))
        if execute:
            _produce(endpoint, target, report, ledger)
    for verdict in report.verdicts:
        say(_verdict_line(verdict, execute))
    say(_summary(report, execute, topic, target))
    return report


def _produce(endpoint: Endpoint, target: str, report: ReplayReport, ledger: ReplayLedger) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(**endpoint.kafka.client_options(), acks="all")
    try:
        partitions = partitions_of(target, producer.partitions_for(target))
        by = f"dlq replay on {socket.gethostname()}"
        for verdict in report.verdicts:
            if verdict.action != "replay":
                continue
            assert verdict.key is not None and verdict.value is not None
            mark = orjson.dumps({"at": int(time.time() * 1000), "by": by}).decode()
            if not ledger.claim(verdict.letter.id, mark):  # another replay got there first
                verdict.action, verdict.detail = "done_before", "replayed by another run"
                continue
            partition = partition_for(verdict.key, partitions)
            sent = producer.send(target, key=verdict.key, value=verdict.value, partition=partition)
            metadata = sent.get(timeout=30)
            verdict.action = "replayed"
            verdict.detail = f"{target}/{metadata.partition}@{metadata.offset}"
    finally:
        producer.close()


def _from_source(
    originals: TopicReader, letter: Letter
) -> tuple[bytes | None, bytes | None] | None:
    """The original record from its source topic (a letter too large to copy it)."""
    partition, offset = letter.body.get("source_partition"), letter.body.get("source_offset")
    if not isinstance(partition, int) or not isinstance(offset, int):
        return None
    for record in originals.records_at(partition, offset, max_records=1):
        if record.offset == offset:
            return record.key, record.value
    return None


def _verdict_line(verdict: Verdict, execute: bool) -> str:
    letter = verdict.letter
    action = "would replay" if verdict.action == "replay" and not execute else verdict.action
    detail = verdict.detail if len(verdict.detail) <= 160 else verdict.detail[:160] + "..."
    return f"{letter.id} [{letter.kind}] {action}: {detail}"


def _summary(report: ReplayReport, execute: bool, topic: str, target: str) -> str:
    counts = (
        f"{report.count('replayed')} replayed"
        if execute
        else f"{report.count('replay')} would be replayed"
    )
    line = (
        f"{len(report.verdicts)} letters of {topic} selected: {counts} to {target}, "
        f"{report.count('invalid')} still invalid, {report.count('skipped')} skipped, "
        f"{report.count('done_before')} replayed before"
    )
    if not execute and report.count("replay"):
        line += " (dry run: add --execute to send)"
    return line


def _endpoint(settings: Settings) -> Endpoint:
    if not settings.kafka.bootstrap_servers:
        raise DeadLetterCommandError("dead letters are on Kafka: set KAFKA_BOOTSTRAP_SERVERS")
    return Endpoint.from_settings(settings)


def _dead_letter_topic(endpoint: Endpoint, source: str) -> str:
    if source not in SOURCES:
        raise DeadLetterCommandError(f"--source must be one of {SOURCES}, got {source!r}")
    topics = endpoint.topics
    return topics.outcomes_dead_letter if source == "outcomes" else topics.requests_dead_letter


def _pattern(grep: str | None) -> re.Pattern[str] | None:
    if grep is None:
        return None
    try:
        return re.compile(grep)
    except re.error as exc:
        raise DeadLetterCommandError(f"--grep is not a regular expression: {exc}") from None


def _show(letter: Letter, as_json: bool) -> None:
    if as_json:
        print(orjson.dumps({"letter": letter.id, **letter.body}).decode(), flush=True)
    else:
        print(format_letter(letter), flush=True)


def _pair(item: str, option: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise DeadLetterCommandError(f"{option} takes NAME=VALUE, got {item!r}")
    return name, value


def _unb64(text: Any) -> bytes | None:
    return None if text is None else base64.b64decode(text)
