"""An S3-compatible server for tests: moto's, on a loopback port, in a thread of the session.

Real S3 protocol over HTTP (boto3 signs, sends and parses every request as against AWS), so the
S3 adapter and the workers that load models through it run unmodified; buckets live in memory
and vanish with the session.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

#: Credentials the server accepts (any are); set for this process and its children, unless
#: the environment already has some.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "streamlearn-test",
    "AWS_SECRET_ACCESS_KEY": "streamlearn-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    """Where the server listens."""

    endpoint_url: str

    def new_bucket(self) -> str:
        """A fresh, empty bucket; returns its name."""
        name = f"models-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint_url).create_bucket(Bucket=name)
        return name


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """Start moto's S3 server on a free loopback port; stopped on exit."""
    from moto.server import ThreadedMotoServer

    for name, value in TEST_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
