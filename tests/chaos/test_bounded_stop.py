"""A stop is bounded in time even when the broker and Redis are gone (it used to hang)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.chaos.harness import chaos_deployment, private_services, produce
from tests.integration.infra import ENGINES

TIMEOUT_S = 5.0


@pytest.mark.parametrize("engine", ENGINES)
def test_sigterm_ends_the_worker_within_the_shutdown_timeout_without_its_services(tmp_path, engine):
    with private_services(tmp_path) as services:
        deployment = chaos_deployment(services, tmp_path, engine)
        deployment.settings = deployment.settings.with_overrides(
            processing={"shutdown_timeout_s": TIMEOUT_S}
        )
        produce(deployment, 1000, 20, seed=3)
        worker = deployment.worker(tmp_path).start()
        worker.wait_until_claimed()
    # The broker and Redis are gone now (the context stopped them); the worker is not.
    assert worker.alive()
    started = time.monotonic()
    worker.stopped = True
    assert worker.process is not None
    worker.process.send_signal(signal.SIGTERM)
    code = worker.process.wait(timeout=TIMEOUT_S + 30)
    took = time.monotonic() - started
    assert took < TIMEOUT_S + 10, took
    log = worker.log_path.read_text()
    if code != 0:  # it could not finish gracefully: it must say so, and exit 1, not hang
        assert code == 1 and "graceful stop did not finish in time" in log
