"""A headless Chromium driven over the DevTools protocol: open a page, read it, screenshot it.

Used by the demo (the dashboard screenshot) and the dashboard's browser test. The protocol
is spoken over aiohttp's WebSocket client (already installed with Faust): four commands
(navigate, evaluate, set the viewport, capture) did not justify Playwright's ~40 MB wheel
and its own browser download, and Debian's ``chromium`` package is the browser.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

#: Where a Chromium is looked for, in order (``STREAMLEARN_CHROMIUM`` first when set).
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(RuntimeError):
    """Chromium could not start, or a page did not do what was waited for."""


def chromium_binary() -> str | None:
    """The Chromium to drive: ``STREAMLEARN_CHROMIUM`` or the first of :data:`CANDIDATES` on
    the PATH; None when there is none."""
    configured = os.environ.get("STREAMLEARN_CHROMIUM")
    if configured:
        return shutil.which(configured)
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


class HeadlessChromium:
    """One headless Chromium with one page (a context manager).

    >>> HeadlessChromium("/nonexistent/chromium").binary
    '/nonexistent/chromium'
    """

    def __init__(
        self, binary: str, width: int = 1400, height: int = 1100, start_timeout_s: float = 30.0
    ) -> None:
        self.binary = binary
        self.width, self.height = width, height
        self._start_timeout_s = start_timeout_s
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> HeadlessChromium:
        self._profile = tempfile.TemporaryDirectory(prefix="streamlearn-chromium-")
        command = [
            self.binary,
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={self._profile.name}",
            f"--window-size={self.width},{self.height}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            "about:blank",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with it
        try:
            self._process = subprocess.Popen(  # its own group: its helpers stop with it
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._run(self._connect(Path(self._profile.name) / "DevToolsActivePort"))
            self._run(
                self._call(
                    "Emulation.setDeviceMetricsOverride",
                    width=self.width,
                    height=self.height,
                    deviceScaleFactor=1,
                    mobile=False,
                )
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, work: Any) -> Any:
        return self._loop.run_until_complete(work)

    async def _connect(self, port_file: Path) -> None:
        deadline = time.monotonic() + self._start_timeout_s
        while not port_file.exists() or not port_file.read_text().strip():
            if self._process is not None and self._process.poll() is not None:
                raise BrowserError(f"{self.binary} exited with code {self._process.returncode}")
            if time.monotonic() > deadline:
                raise BrowserError(f"{self.binary} did not open its DevTools port in time")
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise BrowserError("Chromium has no page to drive")
        self._socket = await self._session.ws_connect(
            pages[0]["webSocketDebuggerUrl"], max_msg_size=0
        )

    async def _call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._socket is not None
        call_id = next(self._ids)
        await self._socket.send_str(  # text frames: Chromium closes on a binary one
            orjson.dumps({"id": call_id, "method": method, "params": params}).decode()
        )
        while True:
            message = await asyncio.wait_for(self._socket.receive(), 60)
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raise BrowserError(f"DevTools connection closed during {method}")
            reply = orjson.loads(message.data)
            if reply.get("id") != call_id:
                continue  # an event, or the answer to an abandoned call
            if "error" in reply:
                raise BrowserError(f"{method}: {reply['error'].get('message')}")
            return reply.get("result", {})

    def open(self, url: str) -> None:
        """Navigate the page to ``url`` (returns once the navigation is under way)."""
        result = self._run(self._call("Page.navigate", url=url))
        if result.get("errorText"):
            raise BrowserError(f"{url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        result = self._run(
            self._call(
                "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
            )
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = (details.get("exception") or {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:60]!r} raised {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float, what: str) -> Any:
        """Evaluate ``expression`` until it is truthy; its value, or BrowserError naming
        ``what`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError:
                value = None  # the page is still loading
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"the page did not show {what} within {timeout_s:.0f} s")
            time.sleep(0.1)

    def screenshot(self, path: Path) -> Path:
        """A PNG of the viewport, written to ``path``."""
        result = self._run(self._call("Page.captureScreenshot", format="png"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))
        return path

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> None:
        """SIGTERM to Chromium's process group (its renderers and helpers), then SIGKILL."""
        for sent in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sent)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        process.poll()

    def close(self) -> None:
        """Close the connection, stop Chromium and remove its profile."""
        if self._socket is not None:
            self._run(self._socket.close())
            self._socket = None
        if self._session is not None:
            self._run(self._session.close())
            self._session = None
        if self._process is not None:
            self._stop(self._process)
            self._process = None
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None
        if not self._loop.is_closed():
            self._loop.close()
