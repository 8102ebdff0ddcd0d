"""The dashboard's HTTP side: the page, its static files and the JSON it polls.

* ``/``: the page (``page.html``); it polls ``/api/dashboard`` every sample interval and
  redraws in place, so it updates live without a reload;
* ``/api/dashboard?key=K``: the latest view (series of key ``K``, default ``all``);
* ``/static/...``: uPlot (vendored, MIT; see ``static/uPlot.LICENSE``);
* ``/health``: 200 while the sampler has read the deployment within three intervals.

With ``dashboard.token`` set, ``/api/dashboard`` (the only path that shows data) needs it, as
``?token=`` (the page passes on its own ``?token=``) or ``Authorization: Bearer``; compared in
constant time. The page and uPlot hold no data and are served to anyone.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import orjson

from app.web import authorized

log = logging.getLogger(__name__)

STATIC = {
    "/static/uPlot.iife.min.js": ("uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/static/uPlot.min.css": ("uPlot.min.css", "text/css; charset=utf-8"),
}

#: Builds the JSON view for a key (None: the sampler has nothing yet).
View = Callable[[str], dict[str, Any]]


def _asset(name: str) -> bytes:
    return resources.files("app.dashboard").joinpath(name).read_bytes()


class DashboardServer:
    """Serves the dashboard from a daemon thread until :meth:`close`."""

    def __init__(
        self, host: str, port: int, view: View, healthy: Callable[[], bool], token: str | None
    ) -> None:
        page = _asset("page.html")
        assets = {path: (_asset(f"static/{name}"), kind) for path, (name, kind) in STATIC.items()}

        class Handler(BaseHTTPRequestHandler):
            """One request: route, check the token, answer."""

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/health":
                    ok = healthy()
                    self._send(200 if ok else 503, orjson.dumps({"ok": ok}), "application/json")
                    return
                if url.path in ("/", "/index.html"):
                    self._send(200, page, "text/html; charset=utf-8")
                elif url.path in assets:
                    body, kind = assets[url.path]
                    self._send(200, body, kind, cache=True)
                elif url.path == "/api/dashboard":
                    header = self.headers.get("Authorization") or (
                        f"Bearer {query['token']}" if "token" in query else None
                    )
                    if not authorized(header, token):
                        body = b'{"error": "the dashboard needs ?token=<dashboard.token>"}'
                        self._send(401, body, "application/json")
                        return
                    document = view(query.get("key", "all"))
                    self._send(200, orjson.dumps(document), "application/json")
                else:
                    self._send(404, b'{"error": "not found"}', "application/json")

            def _send(self, status: int, body: bytes, kind: str, cache: bool = False) -> None:
                self.send_response(HTTPStatus(status))
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("dashboard http: " + format, *args)

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OSError(
                f"dashboard.port {port} on {host}: {exc.strerror or exc} (pick another port)"
            ) from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dashboard-http", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
