"""`lookout console --web`: a web page showing live alerts, fed from the ZeroMQ stream.

One process: a thread runs the gap-filling `AlertClient` on the engine's stream and hands each
alert to the asyncio loop, which serves the page (GET /) and pushes alerts to every browser over
a WebSocket (/ws) as JSON: the alert, its topic, and its snapshot as a data URL. A browser that
connects late first gets the most recent alerts (up to `history`).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import threading
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from engine.alerts.client import AlertClient, Received
from engine.alerts.security import SocketSetup

__all__ = ["WebConsole"]

log = logging.getLogger(__name__)

PAGE = Path(__file__).resolve().parent / "page.html"


class WebConsole:
    """Serves the page and relays alerts to browsers.

    Args:
        endpoint, replay, topics, secure: as for `AlertClient`.
        host, port: where to serve HTTP and the WebSocket (port 0: any free one).
        history: alerts kept for browsers that connect later.
    """

    def __init__(self, endpoint: str, replay: str | None = None, topics: Sequence[str] = (),
                 secure: SocketSetup | None = None, host: str = "127.0.0.1", port: int = 8080,
                 history: int = 200) -> None:  # fmt: skip
        self.endpoint, self.replay, self.topics, self.secure = endpoint, replay, topics, secure
        self.host, self.port = host, port
        self.relayed = 0
        self._history: collections.deque[str] = collections.deque(maxlen=history)
        self._clients: set[ServerConnection] = set()
        self._page = PAGE.read_bytes()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        """Serve until `stop` (blocks)."""
        asyncio.run(self._main())

    def stop(self) -> None:
        """Stop serving; safe from any thread."""
        self._stop.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        relay = threading.Thread(target=self._relay, name="lookout-console-relay", daemon=True)
        async with serve(self._handler, self.host, self.port,
                         process_request=self._http) as server:  # fmt: skip
            self.port = _bound_port(server)
            log.info("web console on http://%s:%d/ (alerts from %s)", self.host, self.port,
                     self.endpoint)  # fmt: skip
            relay.start()
            self.ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.1)
        relay.join(2)

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/ws":
            return None  # the WebSocket handshake goes on
        if request.path in ("/", "/index.html"):
            headers = Headers([("Content-Type", "text/html; charset=utf-8"),
                               ("Cache-Control", "no-store")])  # fmt: skip
            return Response(HTTPStatus.OK, "OK", headers, self._page)
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")

    async def _handler(self, ws: ServerConnection) -> None:
        for message in list(self._history):
            await ws.send(message)
        self._clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            self._clients.discard(ws)

    def _relay(self) -> None:
        client = AlertClient(self.endpoint, self.replay, self.topics, secure=self.secure)
        try:
            while not self._stop.is_set():
                got = client.recv(0.2)
                if got is not None:
                    self._push(_to_browser(got))
        finally:
            client.close()

    def _push(self, message: str) -> None:
        loop = self._loop
        assert loop is not None

        def send() -> None:
            self._history.append(message)
            broadcast(self._clients, message)
            self.relayed += 1

        loop.call_soon_threadsafe(send)


def _to_browser(got: Received) -> str:
    snapshot = None
    if got.snapshot:
        snapshot = "data:image/jpeg;base64," + base64.b64encode(got.snapshot).decode()
    payload: dict[str, Any] = {"topic": got.topic, "alert": got.alert, "snapshot": snapshot}
    return json.dumps(payload)


def _bound_port(server: Server) -> int:
    for sock in server.sockets:
        return int(sock.getsockname()[1])
    raise RuntimeError("the web console is not listening")
