"""``streamlearn notify`` against a local HTTP receiver: every notice reaches each webhook whose
filter wants it exactly once, across SIGKILLs of the notifier, retries included."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from app.embedded import free_port
from app.worker import worker_environment
from streams.failpoints import ENV as FAILPOINTS


class Receiver:
    """A webhook endpoint that records every POST; ``/flaky`` answers 500 to its first two."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, dict]] = []
        self.flaky_left = 2
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    if self.path == "/flaky" and receiver.flaky_left > 0:
                        receiver.flaky_left -= 1
                        self.send_response(500)
                        self.end_headers()
                        return
                    receiver.posts.append(
                        (self.path, self.headers["Idempotency-Key"], orjson.loads(body))
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self, path: str) -> list[str]:
        with self.lock:
            return [key for p, key, _ in self.posts if p == path]


def _alert(alert_id: str, event: str, severity: str, kind: str = "concept") -> dict:
    return {
        "alert_id": alert_id,
        "event": event,
        "kind": kind,
        "source": "batch" if kind == "concept" else None,
        "key": "global",
        "severity": severity,
        "detector": "ADWIN",
        "statistic": 0.41,
        "threshold": 0.3,
        "window": 500.0,
        "action": "retrain_scheduled",
        "at_outcome": 1200,
        "model_version": "v1",
        "ts": 1795312788800,
        "details": {},
    }


def _update(update_id: str, event: str) -> dict:
    return {
        "update_id": update_id,
        "event": event,
        "version": "v2",
        "by": "retrainer",
        "reason": "gate passed",
        "at": 1795312788900,
    }


def test_each_notice_reaches_each_webhook_once_across_kills(deploy, tmp_path):
    receiver = Receiver()
    deployment = deploy(
        notify={
            "webhooks": [
                {
                    "name": "slack",
                    "url": receiver.url + "/slack",
                    "format": "slack",
                    "min_severity": "warning",
                },
                {"name": "all", "url": receiver.url + "/all", "format": "json"},
                {
                    "name": "flaky",
                    "url": receiver.url + "/flaky",
                    "kinds": ["model"],
                    "events": ["failed", "staged"],
                },
            ],
            "metrics_port": 0,
            "poll_interval_s": 0.1,
        }
    )
    names = deployment.names
    alerts = [
        _alert("a1", "alert", "warning"),
        _alert("a2", "alert", "critical", kind="data"),
        _alert("a1", "alert", "warning"),  # the outbox published it twice: sent once
        _alert("a3", "recovery", "info"),
        _alert("a4", "alert", "warning", kind="label"),
    ]
    updates = [_update("u1", "activated"), _update("u2", "staged"), _update("u3", "failed")]
    producer = deployment.producer()
    for alert in alerts:
        producer.send_raw(names.drift_alerts, b"global", orjson.dumps(alert))
    for update in updates:
        producer.send_raw(names.model_updates, None, orjson.dumps(update))
    producer.send_raw(names.model_updates, None, b"not json")  # skipped, not a wedge
    producer.flush()

    env = worker_environment(deployment.settings, deployment.endpoints)
    # Killed before its first POST, then after delivering a notice but before committing it.
    env[FAILPOINTS] = f"notify-before-post@{tmp_path / 'k1'},notify-before-commit@{tmp_path / 'k2'}"
    kills = 0
    expected = {
        "/slack": {"a1", "a2", "a4", "u2", "u3"},
        "/all": {"a1", "a2", "a3", "a4", "u1", "u2", "u3"},
        "/flaky": {"u2", "u3"},
    }
    deadline = time.monotonic() + 90
    notifier = None
    try:
        while True:
            if notifier is None or notifier.poll() is not None:
                if notifier is not None:
                    assert notifier.returncode == -9, notifier.returncode
                    kills += 1
                notifier = subprocess.Popen(
                    [sys.executable, "-m", "app.cli", "notify"],
                    env=env,
                    stdout=open(tmp_path / f"notify-{kills}.log", "wb"),  # noqa: SIM115
                    stderr=subprocess.STDOUT,
                )
            if all(set(receiver.ids(path)) == ids for path, ids in expected.items()):
                break
            assert time.monotonic() < deadline, (receiver.posts, kills)
            time.sleep(0.2)
        time.sleep(1.0)  # any (wrong) repeat would arrive now
    finally:
        if notifier is not None:
            notifier.terminate()
            notifier.wait(timeout=30)
    assert kills == 2
    for path, ids in expected.items():
        got = receiver.ids(path)
        assert sorted(got) == sorted(ids), (path, got)  # each once: no loss, no repeat
    slack = next(body for p, key, body in receiver.posts if p == "/slack" and key == "a2")
    assert slack["text"].startswith(":red_circle: Drift alert: data on key global")
    generic = {key: body for p, key, body in receiver.posts if p == "/all"}
    assert generic["a3"]["event"] == "recovery" and generic["a3"]["severity"] == "info"
    assert generic["u2"]["title"].startswith("Model v2 is staged, awaiting approval")
    assert generic["u3"]["severity"] == "critical" and generic["u3"]["message"]["update_id"] == "u3"
    assert receiver.flaky_left == 0  # two 500s, retried with backoff
