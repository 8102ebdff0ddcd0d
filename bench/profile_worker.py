"""Where a worker's time goes: py-spy samples of a running worker, grouped by what the code does.

For each engine (Faust agents, aiokafka engine) and each job (learning outcomes, scoring requests),
a backlog is produced first, a ``streamlearn worker`` drains it, and py-spy samples the worker
for a few seconds mid-drain. Every sample is put in the first group (in the order of
``GROUPS``) whose code is on its stack, so the shares add up to 100%. Printed as a table, saved
as ``bench/results/profile_worker.json`` (with the hottest frames of each run).

    python -m bench.profile_worker [--seconds 5] [--engines agents batch] [--jobs learn score]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from app.composition import contract_spec
from bench.harness import (
    activate_batch_model,
    applied_total,
    create_topics,
    infrastructure,
    isolated_settings,
    markdown,
    save,
    start_worker,
    wait_until,
)
from models.market import MarketSimulator
from streams.producer import MessageProducer
from streams.reader import TopicReader

KEYS = [f"SYM{i:03d}" for i in range(100)]
BACKLOG = {"learn": 150_000, "score": 150_000}

# (group, markers): a sample belongs to the first group with a marker on its stack.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle (waiting for I/O)", ("EpollSelector.select", "select (selectors.py")),
    ("contract decoding", ("decode_outcome", "decode_request")),
    ("drift monitors", ("models/drift/",)),
    ("metrics", ("models/metrics.py",)),
    ("XGBoost", ("xgboost/",)),
    ("River model", ("river/",)),
    ("signal encoding", ("encode_signal",)),
    ("checkpoint (codec + Redis)", ("OnlineState.checkpoint", "models/codec.py", "redis/")),
    ("producing (aiokafka)", ("aiokafka/producer/",)),
    ("fetching (aiokafka)", ("aiokafka/consumer/", "aiokafka/conn.py", "aiokafka/client.py")),
    ("other streamlearn code", ("streams/", "models/")),
    ("Faust / mode machinery", ("faust/", "mode/")),
)
OTHER = "other (asyncio, interpreter)"


def group_of(stack: str) -> str:
    """The group a sampled stack belongs to."""
    for group, markers in GROUPS:
        if any(marker in stack for marker in markers):
            return group
    return OTHER


def summarize(raw: Path) -> dict:
    """Group shares and hottest leaf frames of a py-spy ``raw`` (collapsed stacks) file."""
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        groups[group_of(stack)] += samples
        leaves[stack.rsplit(";", 1)[-1]] += samples
    return {
        "samples": total,
        "groups": {g: groups[g] / total for g in [*(g for g, _ in GROUPS), OTHER]},
        "hottest_frames": [(frame, n / total) for frame, n in leaves.most_common(15)],
    }


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        sys.exit("py-spy is not installed: pip install -e '.[bench]'")
    return found


def profile(engine: str, job: str, endpoints, workdir: Path, seconds: int) -> dict:
    """Drain a backlog with one worker and sample it with py-spy; returns the summary."""
    settings = isolated_settings(
        workdir / f"store-{engine}-{job}",
        topics={"partitions": 4},
        model={"key_field": "key"},
        processing={"engine": engine},
    )
    names = create_topics(settings, endpoints)
    producer = MessageProducer(endpoints.kafka, names, contract_spec(settings))
    count = BACKLOG[job]
    if job == "score":
        activate_batch_model(settings, endpoints.redis)
        producer.send_outcomes(MarketSimulator(seed=7, keys=KEYS).outcomes(5_000))
        producer.send_requests(MarketSimulator(seed=9, keys=KEYS).requests(count))
    else:
        producer.send_outcomes(MarketSimulator(seed=7, keys=KEYS).outcomes(count))
    producer.close()

    reader = TopicReader(endpoints.kafka, names.signals)

    def done() -> int:
        if job == "learn":
            return applied_total(settings, endpoints)
        return sum(reader.high_watermarks().values())

    raw = workdir / f"{engine}-{job}.txt"
    worker = start_worker(settings, endpoints, workdir / f"worker-{engine}-{job}.log")
    try:
        wait_until(lambda: done() > 5_000, 180, f"{engine} {job} to start", 0.2)
        started, first = time.monotonic(), done()
        command = [_py_spy(), "record", "--pid", str(worker.process.pid)]
        command += ["--duration", str(seconds), "--rate", "200", "--nonblocking"]
        command += ["--format", "raw", "--output", str(raw)]
        subprocess.run(command, check=True, capture_output=True)
        rate = (done() - first) / (time.monotonic() - started)
    finally:
        reader.close()
        worker.stop()
    return {"engine": engine, "job": job, "rate_per_s": rate, **summarize(raw)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="sampling time per run")
    parser.add_argument("--engines", nargs="+", default=["faust", "aiokafka"])
    parser.add_argument("--jobs", nargs="+", default=["learn", "score"], choices=["learn", "score"])
    args = parser.parse_args()
    _py_spy()
    runs = []
    with infrastructure() as endpoints, tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines:
            for job in args.jobs:
                runs.append(profile(engine, job, endpoints, Path(tmp), args.seconds))
                print(f"profiled {engine} {job}", flush=True)
    columns = [("group", "where the samples are")] + [
        (f"{r['engine']}/{r['job']}", f"{r['engine']} {r['job']} ({r['rate_per_s']:,.0f}/s)")
        for r in runs
    ]
    rows = [
        {"group": group, **{f"{r['engine']}/{r['job']}": f"{r['groups'][group]:.0%}" for r in runs}}
        for group in [*(g for g, _ in GROUPS), OTHER]
    ]
    print(markdown(rows, columns))
    print(f"saved {save('profile_worker', {'seconds': args.seconds, 'runs': runs})}")


if __name__ == "__main__":
    main()
