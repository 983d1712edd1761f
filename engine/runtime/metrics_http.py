"""The Prometheus endpoint: `GET /metrics` over HTTP(S), on its own thread.

On loopback plain HTTP is fine; elsewhere the endpoint should be behind TLS (and, with
`client_ca`, only scrapers holding a client certificate get in): a warning says so otherwise.
The numbers carry source ids, never URLs or credentials.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from engine.config import MetricsConfig
from engine.errors import EngineError
from engine.runtime.metrics import RuntimeMetrics

__all__ = ["MetricsServer"]

log = logging.getLogger(__name__)


class MetricsServer:
    """Serves a runner's metrics from `start` until `close`.

    Args:
        cfg: where to listen, and TLS.
        metrics: the runner's metrics.
    """

    def __init__(self, cfg: MetricsConfig, metrics: RuntimeMetrics) -> None:
        self.cfg = cfg
        self._metrics = metrics
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.url: str | None = None  # once serving

    def start(self) -> None:
        """Bind and serve (its own thread) until `close`.

        Raises:
            EngineError: the address cannot be bound (in use, not this host's).
        """
        if self._server is not None or self._closed:
            return
        cfg = self.cfg
        host, _, port = cfg.listen.rpartition(":")
        tls: dict[str, Any] = {}
        if cfg.tls_cert is not None:
            tls = {"certfile": str(cfg.tls_cert), "keyfile": str(cfg.tls_key)}
        if cfg.client_ca is not None:
            tls.update(client_cafile=str(cfg.client_ca), client_auth_required=True)
        try:
            server, thread = start_http_server(int(port), host, self._metrics.registry, **tls)
        except (OSError, ValueError) as exc:
            raise EngineError(f"metrics: cannot serve on {cfg.listen}: {exc}") from None
        self._server, self._thread = server, thread
        scheme = "https" if cfg.tls_cert else "http"
        self.url = f"{scheme}://{host}:{server.server_port}/metrics"
        if not tls and not _loopback(host):
            log.warning(
                "metrics on %s without TLS: anyone who reaches it can read them; "
                "set metrics.tls_cert/tls_key (and client_ca)",
                self.url,
            )
        log.info("metrics on %s", self.url)

    def close(self) -> None:
        """Stop serving and join the server thread (for at most 5 s). Idempotent; safe before
        `start`."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
