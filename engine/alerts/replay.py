"""The replay endpoint: a ROUTER socket that answers "alerts after (epoch, seq)" from the journal.

Request (one frame after the routing id; REQ clients' empty delimiter is handled):

    {"op": "replay", "epoch": "<epoch or null>", "after": <seq>, "topics": ["<prefix>", ...],
     "limit": <1..5000>, "id": "<optional request id, echoed>"}

Reply: a header frame `{"ok": true, "count": n, "more": bool, "known_epoch": bool,
"head": {"epoch": ..., "seq": ...}, "first": {"epoch": ..., "seq": ...}, "id": ...}` then three
frames per alert: topic, JSON, snapshot (empty when none). `more` means "ask again after the
last one"; with `more` false the page holds every alert on the asked topics up to `head` (read
in one snapshot of the journal), so a filtered console knows it has checked up to there.
`first` is the oldest alert kept: alerts before it are gone. `id` is there when the request had
one. Anything malformed gets `{"ok": false, "error": "..."}` and changes nothing; the server
never dies of a request. (`first` and `id` were added later; older clients ignore them.)

Bounded per peer: a reply holds at most `limit` alerts and about MAX_REPLY_BYTES; at most
REPLY_WINDOW replies wait for a peer (send high-water mark, ROUTER_MANDATORY, non-blocking
sends): a reply beyond that is dropped and counted, and the peer's requests are not served for
STALL_S (a peer that does not read costs neither memory nor work); a peer's requests that wait
while an older one of its own is served are replaced by its newest. A client that got no reply
asks again. The work runs on the endpoint's own thread, never on the publisher's.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from engine.alerts.backlog import Backlog
from engine.alerts.journal import Journal, JournalRow, ReplayPage

__all__ = [
    "MAX_LIMIT",
    "MAX_REPLY_BYTES",
    "REPLY_WINDOW",
    "ReplayRequest",
    "ReplayServer",
    "parse_request",
]

log = logging.getLogger(__name__)

MAX_LIMIT = 5000
MAX_REQUEST_BYTES = 64 * 1024
MAX_REPLY_BYTES = 4 * 1024 * 1024  # per reply, past its first alert
REPLY_WINDOW = 2  # replies queued for one peer before further ones are dropped
STALL_S = 1.0  # a peer whose reply was dropped is not served for this long
MAX_PENDING_READ = 1000  # requests read per turn before serving
MAX_STALLED_PEERS = 10_000


class RequestError(ValueError):
    """A request that cannot be served; its message goes back to the client."""


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """A parsed replay request."""

    epoch: str | None
    after: int
    topics: tuple[str, ...]
    limit: int
    id: str | int | None = None


def parse_request(raw: bytes) -> tuple[str | None, int, tuple[str, ...], int]:
    """(epoch, after, topic prefixes, limit) of a replay request, or RequestError saying why."""
    r = parse(raw)
    return r.epoch, r.after, r.topics, r.limit


def parse(raw: bytes) -> ReplayRequest:
    """The replay request in `raw`, or RequestError saying why it is not one."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestError(f"request of {len(raw)} bytes; at most {MAX_REQUEST_BYTES}")
    try:
        req = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(f"request is not JSON: {exc}") from None
    if not isinstance(req, dict):
        raise RequestError(f"expected a JSON object, got {type(req).__name__}")
    if req.get("op") != "replay":
        raise RequestError(f"expected op 'replay', got {req.get('op')!r}"[:200])
    epoch = req.get("epoch")
    if epoch is not None and (not isinstance(epoch, str) or len(epoch) > 64):
        raise RequestError("epoch: expected a string (at most 64 characters) or null")
    after = req.get("after", 0)
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**62:
        raise RequestError(f"after: expected an integer >= 0, got {after!r}"[:200])
    topics = req.get("topics", [])
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise RequestError("topics: expected a list of topic prefixes (strings)")
    if len(topics) > 100:
        raise RequestError(f"topics: at most 100 prefixes, got {len(topics)}")
    limit = req.get("limit", 1000)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise RequestError(f"limit: expected an integer in 1..{MAX_LIMIT}, got {limit!r}"[:200])
    rid = req.get("id")
    if rid is not None and (
        isinstance(rid, bool)
        or not isinstance(rid, str | int)
        or (isinstance(rid, str) and len(rid) > 64)
        or (isinstance(rid, int) and not 0 <= rid < 2**62)
    ):
        raise RequestError("id: expected a string (at most 64 characters) or an integer >= 0")
    # "" matches everything: the same as no filter, served without the index
    prefixes = () if "" in topics else tuple(dict.fromkeys(topics))
    return ReplayRequest(epoch, after, prefixes, limit, rid)


class ReplayServer:
    """Serves replay requests from its own thread and its own journal connection.

    The constructor binds the endpoint; `start` starts the serving thread; `close` stops it.

    Args:
        endpoint: where to bind the ROUTER socket.
        journal_path: the journal the publisher writes.
        context: ZeroMQ context.
        secure: callback that makes a socket a CURVE server (None: plaintext).
        backlog: alerts the publisher sent while the journal refused them; served after the
            journal's own (None: the journal alone).
        max_reply_bytes: byte budget of one reply (past its first alert).

    Attributes:
        served: replies sent.
        dropped: replies not sent (the peer's window was full, or it had gone) and requests of
            stalled peers not served. superseded: requests replaced by a newer one of the
            same peer before they were served.
    """

    def __init__(
        self,
        endpoint: str,
        journal_path: Path,
        context: zmq.Context,
        secure: Any = None,
        backlog: Backlog | None = None,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        self.endpoint = endpoint
        self._backlog = backlog
        self._journal_down = False
        self.served = 0
        self.dropped = 0
        self.superseded = 0
        self.max_reply_bytes = max_reply_bytes
        self._journal_path = journal_path
        self._sock = context.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a full window raises, never blocks
        self._sock.setsockopt(zmq.SNDHWM, REPLY_WINDOW)
        self._sock.setsockopt(zmq.RCVHWM, 100)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES * 2)
        if secure is not None:
            secure(self._sock)
        self._sock.bind(endpoint)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Serve from a thread of its own (once; not after `close`)."""
        if self._thread is not None or self._closed:
            return
        self._thread = threading.Thread(target=self._run, name="lookout-replay", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving (within ~0.2 s; joined for at most 5 s) and close the socket.
        Idempotent, and safe before `start`."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is None:
            self._sock.close(0)  # never served: the socket is still this thread's
        else:
            self._thread.join(5)  # the thread closes the socket it served on

    def _open_journal(self) -> Journal | None:
        """The journal, or None (logged once per episode) while it cannot be opened."""
        try:
            journal = Journal(self._journal_path)
        except Exception as exc:  # sqlite3.Error, OSError, JournalDamaged: the endpoint lives on
            if not self._journal_down:
                log.error(
                    "replay: the journal %s cannot be opened (%s); serving what the publisher "
                    "holds, asking again with each request",
                    self._journal_path,
                    exc,
                )
            self._journal_down = True
            return None
        if self._journal_down:
            log.warning("replay: the journal %s is open again", self._journal_path)
        self._journal_down = False
        return journal

    def _run(self) -> None:
        journal = self._open_journal()
        pending: dict[bytes, list[bytes]] = {}  # per peer, its newest request; first come first
        stalled: dict[bytes, float] = {}  # peer -> monotonic time until which it is not served
        try:
            while not self._stop.is_set():
                if not pending and not self._sock.poll(100):
                    continue
                self._read(pending)
                if not pending:
                    continue
                peer = next(iter(pending))
                frames = pending.pop(peer)
                now = time.monotonic()
                if stalled.get(peer, 0.0) > now:
                    self.dropped += 1
                    continue
                if journal is None:
                    journal = self._open_journal()
                try:
                    reply = self._serve(journal, frames)
                except (sqlite3.Error, OSError) as exc:  # the file went bad under us
                    log.error("replay: reading the journal %s failed: %s", self._journal_path, exc)
                    if journal is not None:
                        journal.close()
                    journal = None  # opened again for the next request
                    reply = [_error(f"the journal cannot be read now: {exc}")]
                except Exception:  # a bug must not take the endpoint down
                    log.exception("replay request failed")
                    reply = [_error("internal error")]
                envelope = frames[:2] if len(frames) > 2 and frames[1] == b"" else frames[:1]
                if self._send(envelope + reply):
                    stalled.pop(peer, None)
                else:
                    if len(stalled) >= MAX_STALLED_PEERS:
                        stalled = {p: t for p, t in stalled.items() if t > now}
                    stalled[peer] = now + STALL_S
        finally:
            if journal is not None:
                journal.close()
            self._sock.close(0)

    def _read(self, pending: dict[bytes, list[bytes]]) -> None:
        """Take the requests waiting (up to MAX_PENDING_READ), the newest per peer."""
        for _ in range(MAX_PENDING_READ):
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if frames[0] in pending:
                self.superseded += 1
            pending[frames[0]] = frames  # a known peer keeps its place in the queue

    def _send(self, frames: list[bytes]) -> bool:
        """Send without blocking; False (counted) when the peer's window is full or it left."""
        try:
            self._sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            reason = "its window is full (it does not read)"
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            reason = "it has gone"
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 100 == 0:
            log.warning(
                "replay reply dropped: %s (%d dropped so far; clients ask again)",
                reason,
                self.dropped,
            )
        return False

    def _serve(self, journal: Journal | None, frames: list[bytes]) -> list[bytes]:
        body = frames[2:] if len(frames) > 2 and frames[1] == b"" else frames[1:]
        if len(body) != 1:
            return [_error(f"expected one request frame, got {len(body)}")]
        try:
            req = parse(body[0])
        except RequestError as exc:
            return [_error(str(exc))]
        # the backlog first: a row the publisher journals meanwhile is then in both (dropped
        # once below), never in neither
        held = self._backlog.rows() if self._backlog is not None else []
        if journal is not None:
            page = journal.page(req.epoch, req.after, req.topics, req.limit, self.max_reply_bytes)
        elif held and req.epoch == held[0].epoch and req.after >= held[0].seq - 1:
            page = _EMPTY  # what comes after the asked position is all in the backlog
        else:
            return [_error(f"the journal {self._journal_path.name} cannot be opened now")]
        rows, more, known, head = page.rows, page.more, page.known, page.head
        if held:
            newest = (held[-1].epoch, held[-1].seq)
            if not known and req.epoch == newest[0]:
                # this run's epoch is not in the journal yet (its first good write registers
                # it): the journal's rows are all earlier runs', before the asked position
                rows, more, known = [], False, True
            if head[0] != newest[0] or head[1] < newest[1]:
                head = newest  # not when the journal took the backlog and more since
            if not more:
                rows, more = _with_backlog(rows, held, req, self.max_reply_bytes)
        header: dict[str, Any] = {
            "ok": True,
            "count": len(rows),
            "more": more,
            "known_epoch": known,
            "head": {"epoch": head[0], "seq": head[1]},
            "first": {"epoch": page.first[0], "seq": page.first[1]},
        }
        if req.id is not None:
            header["id"] = req.id
        out = [json.dumps(header).encode()]
        for r in rows:
            out += [_topic_for(r.topics, req.topics).encode(), r.body, r.snapshot or b""]
        self.served += 1
        return out


_EMPTY = ReplayPage([], False, False, (None, 0), (None, 0), 0)


def _with_backlog(
    rows: list[JournalRow], held: list[JournalRow], req: ReplayRequest, max_bytes: int
) -> tuple[list[JournalRow], bool]:
    """The journal's complete page followed by the backlog's rows after it (those the journal
    does not have yet), within the request's limit and byte budget; (rows, more)."""
    epoch: str | None = rows[-1].epoch if rows else req.epoch
    seq = rows[-1].seq if rows else req.after
    have = {(r.epoch, r.seq) for r in rows}
    spent = sum(len(r.body) + len(r.snapshot or b"") for r in rows)
    tail = Backlog.select(held, epoch, seq, req.topics)
    tail = [r for r in tail if (r.epoch, r.seq) not in have]
    out = list(rows)
    for r in tail:
        size = len(r.body) + len(r.snapshot or b"")
        if len(out) >= req.limit or (out and spent + size > max_bytes):
            return out, True
        out.append(r)
        spent += size
    return out, False


def _topic_for(topics: tuple[str, ...], prefixes: tuple[str, ...]) -> str:
    """The alert's topic the client asked for (its first matching one)."""
    for t in topics:
        if not prefixes or any(t.startswith(p) for p in prefixes):
            return t
    return topics[0]


def _error(message: str) -> bytes:
    return json.dumps({"ok": False, "error": message}).encode()
