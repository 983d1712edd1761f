"""A TCP proxy on 127.0.0.1 that can black-hole or cut what passes through it (a network fault).

    proxy = TcpProxy(upstream_port)      # clients connect to proxy.port
    proxy.blackhole()                    # connections are accepted; nothing passes either way
    proxy.cut()                          # every connection is closed (peers see a reset)
    proxy.restore()                      # bytes flow again, also on connections held meanwhile

While black-holed the proxy stops reading, as a partitioned network would: what was sent waits
in the kernel's buffers and arrives when it is restored, unless a side gave up and closed.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port`, one thread per connection.

    Args:
        upstream_port: where the real server listens.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listen = socket.create_server(("127.0.0.1", 0))
        self._listen.settimeout(0.05)
        self.port = int(self._listen.getsockname()[1])
        self.accepted = 0
        self._open = threading.Event()
        self._open.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._acceptor.start()

    @property
    def endpoint(self) -> str:
        """The proxy as a ZeroMQ endpoint."""
        return f"tcp://127.0.0.1:{self.port}"

    def blackhole(self) -> None:
        """Stop forwarding: new connections are accepted and held, nothing passes."""
        self._open.clear()

    def restore(self) -> None:
        """Forward again."""
        self._open.set()

    def cut(self) -> None:
        """Close every connection now (both sides)."""
        with self._lock:
            socks, self._socks = list(self._socks), set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        """Stop accepting, close every connection, join the threads."""
        self._stop.set()
        self._open.set()
        self._acceptor.join(5)
        self.cut()
        for t in self._threads:
            t.join(5)
        self._listen.close()

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.add(s)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listen.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._track(client)
            t = threading.Thread(target=self._pump, args=(client,), daemon=True)
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def _pump(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            while not self._stop.is_set():
                if not self._open.wait(0.05):
                    continue  # black-holed: read nothing, send nothing
                if upstream is None:  # connect upstream only once bytes may pass
                    upstream = socket.create_connection(("127.0.0.1", self.upstream_port), 5)
                    self._track(upstream)
                readable, _, _ = select.select([client, upstream], [], [], 0.05)
                for src in readable:
                    if not self._open.is_set():
                        break
                    data = src.recv(65536)
                    if not data:
                        return
                    (upstream if src is client else client).sendall(data)
        except (OSError, ValueError):  # cut, or the other side went away
            return
        finally:
            for s in (client, upstream):
                if s is not None:
                    s.close()
