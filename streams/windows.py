"""Reading a training window of trade outcomes from the topic: the newest N, or the last D days.

Both work on any Kafka-compatible broker without ListOffsets or ``offsets_for_times`` (which the
embedded broker answers wrongly): partition ends come from the fetch high watermark, and the
first offset of a time window is found by binary search over fetched records' ``ts``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from models.training import TrainingDataError
from streams.contracts import ContractError, ContractSpec, TradeOutcome, decode_outcome
from streams.kafka_connection import KafkaConnection
from streams.reader import TopicReader

log = logging.getLogger(__name__)

#: Records read before a binary-search result, to tolerate slightly out-of-order ``ts``.
DISORDER_MARGIN = 1000
DAY_MS = 86_400_000


def read_window(
    kafka: KafkaConnection,
    topic: str,
    spec: ContractSpec,
    last_outcomes: int | None = None,
    last_days: float | None = None,
    now_ms: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Valid outcomes of the window as a table, oldest first (invalid records are skipped)."""
    cutoff = None
    if last_days is not None:
        if now_ms is None:
            raise ValueError("now_ms is needed for a window in days")
        cutoff = now_ms - int(last_days * DAY_MS)
    with TopicReader(kafka, topic) as reader:
        ends = reader.high_watermarks()
        floor = {p: 0 for p in ends}
        if cutoff is not None:
            floor = {p: _first_offset_at(reader, spec, p, cutoff, end) for p, end in ends.items()}
        extra = 0  # records read beyond N per partition, to make up for invalid ones
        while True:
            starts = dict(floor)
            if last_outcomes is not None:
                starts = {p: max(floor[p], end - last_outcomes - extra) for p, end in ends.items()}
            reader.seek(starts)
            outcomes = _decode(reader, spec, cutoff, ends, progress)
            short = last_outcomes is not None and len(outcomes) < last_outcomes
            if not short or all(starts[p] <= floor[p] for p in ends):
                break
            extra = max(2 * extra, last_outcomes - len(outcomes) + 100)
    if not outcomes:
        raise TrainingDataError(f"topic {topic!r} holds no valid outcomes in the window")
    outcomes.sort(key=lambda o: o.ts)
    if last_outcomes is not None:
        outcomes = outcomes[-last_outcomes:]
    return outcomes_table(outcomes, spec.features)


def _decode(
    reader: TopicReader,
    spec: ContractSpec,
    cutoff: int | None,
    ends: dict[int, int],
    progress: Callable[[int], None] | None,
) -> list[TradeOutcome]:
    outcomes: list[TradeOutcome] = []
    for i, record in enumerate(reader.read_to_end(ends), start=1):
        try:
            outcome = decode_outcome(record.value, record.key, spec)
        except ContractError:
            continue
        if cutoff is None or outcome.ts >= cutoff:
            outcomes.append(outcome)
        if progress and i % 100_000 == 0:
            progress(i)
    return outcomes


def outcomes_table(outcomes: Sequence[TradeOutcome], features: Sequence[str]) -> pd.DataFrame:
    """Decoded outcomes as a table: ts, key, model_key, label, realized_rr, one column per
    feature."""
    matrix = np.array([list(o.features.values()) for o in outcomes], dtype=np.float64)
    frame = pd.DataFrame(matrix.reshape(len(outcomes), len(features)), columns=list(features))
    frame.insert(0, "realized_rr", [o.realized_rr for o in outcomes])
    frame.insert(0, "label", np.array([o.label for o in outcomes], dtype=np.int64))
    frame.insert(0, "model_key", [o.model_key for o in outcomes])
    frame.insert(0, "key", [o.key for o in outcomes])
    frame.insert(0, "ts", np.array([o.ts for o in outcomes], dtype=np.int64))
    return frame


def _first_offset_at(
    reader: TopicReader, spec: ContractSpec, partition: int, cutoff_ms: int, end: int
) -> int:
    """First offset with outcome ``ts`` >= cutoff (``ts`` mostly rising), minus a margin.

    When a probe finds no decodable outcome, the search goes left: reading too much is safe
    (rows are filtered by ``ts``), reading too little would lose trades.
    """
    low, high = 0, end
    while low < high:
        middle = (low + high) // 2
        ts = _first_ts(reader, spec, partition, middle)
        if ts is None or ts >= cutoff_ms:
            high = middle
        else:
            low = middle + 1
    return max(0, low - DISORDER_MARGIN)


def _first_ts(reader: TopicReader, spec: ContractSpec, partition: int, offset: int) -> int | None:
    for record in reader.records_at(partition, offset):
        try:
            return decode_outcome(record.value, record.key, spec).ts
        except ContractError:
            continue
    return None
