"""`lookout console --web`: a web page showing live alerts, fed from the ZeroMQ stream.

One process: a thread runs the gap-filling `AlertClient` on the engine's stream and hands each
alert to the asyncio loop, which serves the page and pushes alerts to every logged-in browser
over a WebSocket (/ws) as JSON: the alert, its topic, and its snapshot as a data URL. A browser
that connects late first gets the most recent alerts (up to `history`).

Nothing but the login page is served without a session. Logging in: the login page opens a
WebSocket to /auth and sends the password; a good one gets a one-time ticket (30 s) that
GET /session turns into an HttpOnly, SameSite=Strict session cookie. Every request must name
this console in its Host header (DNS rebinding), and WebSocket handshakes must come from a page
of this console (Origin), so another web page the operator has open can neither log in nor
read alerts. Off loopback the console serves only over TLS unless told otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import http.cookies
import ipaddress
import json
import logging
import math
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from engine.alerts.client import AlertClient, Received
from engine.alerts.security import SocketSetup
from engine.console.auth import LoginLimiter, Sessions, allowed_host, verify_password
from engine.errors import ConfigError

__all__ = ["WebAccess", "WebConsole", "is_loopback", "tls_context"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page.html"
LOGIN_PAGE = HERE / "login.html"
COOKIE = "lookout_session"
LOGIN_TIMEOUT_S = 30.0
SESSION_CHECK_S = 5.0  # an expired or logged-out session's WebSocket is closed within this
MAX_PASSWORD = 1024
SECURITY_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
    ),
]


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or name to bind) reaches only this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context from a certificate chain and its key (PEM files).

    Raises:
        ConfigError: a file is missing or they do not belong together.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"--tls-cert {cert} / --tls-key {key}: cannot load: {exc}") from None
    return ctx


@dataclass(frozen=True)
class WebAccess:
    """Who may use the web console and how it is reached.

    Attributes:
        password_hash: from `lookout console hash-password` (scrypt).
        tls: serve HTTPS/WSS with this context (None: plain HTTP).
        allow_hosts: more names the browser may use to reach it (its DNS name, say).
        session_ttl_s: a login lasts this long.
        insecure_http: serve plain HTTP off loopback anyway (passwords and alerts in clear).
    """

    password_hash: str
    tls: ssl.SSLContext | None = None
    allow_hosts: tuple[str, ...] = ()
    session_ttl_s: float = 12 * 3600.0
    insecure_http: bool = False


class WebConsole:
    """Serves the login, the page, and relays alerts to logged-in browsers.

    The constructor binds nothing and starts nothing: `start` serves from a thread of its own
    (`lookout-console`, the HTTP and WebSocket event loop) and relays alerts from another
    (`lookout-console-relay`); `close` stops both.

    Args:
        endpoint, replay, topics, secure: as for `AlertClient`.
        host, port: where to serve HTTP and the WebSocket (port 0: any free one).
        history: alerts kept for browsers that connect later.
        access: the password hash, TLS and the names it answers to.

    Raises:
        ConfigError: asked to serve off loopback without TLS (and without `insecure_http`).
    """

    def __init__(
        self,
        endpoint: str,
        replay: str | None = None,
        topics: Sequence[str] = (),
        secure: SocketSetup | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        history: int = 200,
        *,
        access: WebAccess,
    ) -> None:
        if not is_loopback(host) and access.tls is None:
            if not access.insecure_http:
                raise ConfigError(
                    f"--host {host} is reachable from other machines: serve over TLS "
                    "(--tls-cert and --tls-key), or bind to 127.0.0.1"
                )
            log.warning(
                "SERVING THE WEB CONSOLE WITHOUT TLS ON %s: the password, session "
                "cookies and every alert cross the network in clear",
                host,
            )
        self.endpoint, self.replay, self.topics, self.secure = endpoint, replay, topics, secure
        self.host, self.port = host, port
        self.access = access
        self._scheme = "https" if access.tls is not None else "http"
        self._names = _host_names(host, access.allow_hosts)
        self._sessions = Sessions(ttl_s=access.session_ttl_s)
        self._limiter = LoginLimiter()
        self._login_lock = asyncio.Lock()  # (bound to the serving loop when first used)
        self._history: collections.deque[str] = collections.deque(maxlen=history)
        self._clients: set[ServerConnection] = set()
        self._page = PAGE.read_bytes()
        self._login_page = LOGIN_PAGE.read_bytes()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        """Serve from a thread of its own; returns once the port is bound (`port` is then the
        one bound: a port of 0 asked for any free one). Once; not after `close`.

        Raises:
            OSError: the address cannot be served on (nothing is left running).
            TimeoutError: not serving after `timeout_s`.
        """
        if self._thread is not None or self._stop.is_set():
            return
        self._thread = threading.Thread(target=self._serve, name="lookout-console", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.close()
            raise TimeoutError(f"the web console was not serving after {timeout_s} s")
        if self._failed is not None:
            self.close()
            raise self._failed

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the console stops serving (`close`, or a failure); True if it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def failure(self) -> BaseException | None:
        """Why it stopped serving on its own, or None."""
        return self._failed

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop serving and relaying; joins both threads for at most `timeout_s`. Idempotent,
        safe before `start` and from any thread."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # an address in use, or a bug: start() raises it
            if self._ready.is_set():
                log.exception("the web console stopped")
            self._failed = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        relay = threading.Thread(target=self._relay, name="lookout-console-relay", daemon=True)
        async with serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._http,
            ssl=self.access.tls,
            max_size=64 * 1024,
            server_header=None,
        ) as server:
            self.port = _bound_port(server)
            log.info(
                "web console on %s://%s:%d/ (alerts from %s; answers to %s)",
                self._scheme,
                self.host,
                self.port,
                self.endpoint,
                ", ".join(sorted(self._names)),
            )
            relay.start()
            self._ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.1)
        relay.join(2)

    # --- HTTP -----------------------------------------------------------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        default_port = 443 if self.access.tls is not None else 80
        if not allowed_host(request.headers.get("Host"), self._names, self.port, default_port):
            log.warning(
                "refused a request for host %r (not this console's)",
                str(request.headers.get("Host"))[:100],
            )
            return _text(connection, HTTPStatus.MISDIRECTED_REQUEST, "unknown host\n")
        path = request.path.partition("?")[0]
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        token = _cookie(request.headers)
        if path in ("/ws", "/auth") and upgrade:
            if not self._origin_ok(request.headers):
                log.warning(
                    "refused a WebSocket from origin %r", str(request.headers.get("Origin"))[:100]
                )
                return _text(connection, HTTPStatus.FORBIDDEN, "origin not allowed\n")
            if path == "/ws" and not self._sessions.valid(token):
                return _text(connection, HTTPStatus.FORBIDDEN, "log in first\n")
            return None  # the WebSocket handshake goes on
        if path == "/login":
            return _html(self._login_page)
        if path == "/session":
            return self._redeem(request.path)
        if path == "/whoami":
            if self._sessions.valid(token):
                return _text(connection, HTTPStatus.OK, "logged in\n")
            return _text(connection, HTTPStatus.UNAUTHORIZED, "log in first\n")
        if path == "/logout":
            self._sessions.end(token)
            return _redirect("/login", self._cookie_header("", 0))
        if path in ("/", "/index.html"):
            if not self._sessions.valid(token):
                return _redirect("/login")
            return _html(self._page)
        return _text(connection, HTTPStatus.NOT_FOUND, "not found\n")

    def _origin_ok(self, headers: Headers) -> bool:
        origin, host = headers.get("Origin"), headers.get("Host")
        if not origin or not host:  # a missing Origin is no page of ours either
            return False
        return origin.lower() == f"{self._scheme}://{host.lower()}"

    def _redeem(self, target: str) -> Response:
        query = target.partition("?")[2]
        ticket = next(
            (v for k, _, v in (p.partition("=") for p in query.split("&")) if k == "ticket"), ""
        )
        token = self._sessions.redeem(ticket) if ticket else None
        if token is None:
            return _redirect("/login")
        return _redirect("/", self._cookie_header(token, int(self.access.session_ttl_s)))

    def _cookie_header(self, token: str, max_age: int) -> tuple[str, str]:
        secure = "; Secure" if self.access.tls is not None else ""
        value = f"{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        return ("Set-Cookie", value)

    # --- WebSockets -----------------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path.partition("?")[0] == "/auth":
            await self._login(ws)
            return
        token = _cookie(ws.request.headers) if ws.request is not None else None
        for message in list(self._history):
            await ws.send(message)
        self._clients.add(ws)
        try:
            while True:
                try:
                    await asyncio.wait_for(ws.wait_closed(), SESSION_CHECK_S)
                    return
                except TimeoutError:
                    if not self._sessions.valid(token):
                        await ws.close(1008, "session ended")
                        return
        finally:
            self._clients.discard(ws)

    async def _login(self, ws: ServerConnection) -> None:
        client = str(ws.remote_address[0]) if ws.remote_address else "?"
        try:
            raw = await asyncio.wait_for(ws.recv(), LOGIN_TIMEOUT_S)
        except Exception:  # closed, timed out
            return
        # one try at a time: a failure is counted before the next try is let through, so many
        # tries sent at once (each waits while the hash is checked) cannot pass the limit
        ok = False
        async with self._login_lock:
            wait = self._limiter.wait_s(client)
            if wait <= 0:
                password = _password_of(raw)
                ok = password is not None and await asyncio.to_thread(
                    verify_password, password, self.access.password_hash
                )
                if not ok:
                    self._limiter.failed(client)
        if wait > 0:
            await _answer(ws, False, f"too many failed logins: try again in {math.ceil(wait)} s")
            return
        if not ok:
            log.warning("failed web console login from %s", client)
            await _answer(ws, False, "wrong password")
            return
        log.info("web console login from %s", client)
        await _answer(ws, True, ticket=self._sessions.new_ticket())

    # --- alerts ---------------------------------------------------------------------------------

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

        loop.call_soon_threadsafe(send)


def _host_names(host: str, extra: Sequence[str]) -> frozenset[str]:
    """The names a Host header may carry: the bound address, loopback names when bound there,
    this machine's names when bound to all interfaces, and `extra`."""
    names = {h.lower() for h in extra}
    bare = host.strip("[]").lower()
    if bare in ("", "0.0.0.0", "::"):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    elif ":" in bare:
        names.add(f"[{bare}]")
    else:
        names.add(bare)
    if is_loopback(host) or bare in ("", "0.0.0.0", "::"):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    return frozenset(n if ":" not in n or n.startswith("[") else f"[{n}]" for n in names)


def _cookie(headers: Headers) -> str | None:
    for header in headers.get_all("Cookie"):
        jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
        try:
            jar.load(header)
        except http.cookies.CookieError:
            continue
        if COOKIE in jar:
            return jar[COOKIE].value
    return None


def _password_of(raw: str | bytes) -> str | None:
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    password = msg.get("password") if isinstance(msg, dict) else None
    return password if isinstance(password, str) and len(password) <= MAX_PASSWORD else None


async def _answer(ws: ServerConnection, ok: bool, error: str = "", ticket: str = "") -> None:
    reply = {"ok": ok, "ticket": ticket} if ok else {"ok": ok, "error": error}
    try:
        await ws.send(json.dumps(reply))
        await ws.close()
    except Exception:  # the browser left
        pass


def _html(body: bytes) -> Response:
    headers = Headers([("Content-Type", "text/html; charset=utf-8"), *SECURITY_HEADERS])
    return Response(HTTPStatus.OK, "OK", headers, body)


def _text(connection: ServerConnection, status: HTTPStatus, text: str) -> Response:
    response = connection.respond(status, text)
    for name, value in SECURITY_HEADERS:
        response.headers[name] = value
    return response


def _redirect(location: str, *extra: tuple[str, str]) -> Response:
    headers = Headers([("Location", location), ("Content-Length", "0"), *SECURITY_HEADERS, *extra])
    return Response(HTTPStatus.SEE_OTHER, "See Other", headers, b"")


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
