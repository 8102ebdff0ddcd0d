"""Failpoints: test-only crash injection at named places (like etcd/TiKV failpoints).

``STREAMLEARN_FAILPOINTS=name@/path/marker[,name2@/path2]`` makes the process SIGKILL itself the
first time it reaches ``failpoint(name)``; the marker file records that it fired, so the
restarted process runs on. Unset (always, outside tests) it costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "STREAMLEARN_FAILPOINTS"


def failpoint(name: str) -> None:
    """Die here with SIGKILL if the environment asks for it (once per marker file)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    for item in spec.split(","):
        point, _, marker = item.partition("@")
        if point == name and marker and not Path(marker).exists():
            Path(marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
