"""The replay endpoint: a ROUTER socket that answers "alerts after (epoch, seq)" from the journal.

Request (one frame after the routing id; REQ clients' empty delimiter is handled):

    {"op": "replay", "epoch": "<epoch or null>", "after": <seq>, "topics": ["<prefix>", ...],
     "limit": <1..5000>}

Reply: a header frame `{"ok": true, "count": n, "more": bool, "known_epoch": bool,
"head": {"epoch": ..., "seq": ...}}` then three frames per alert: topic, JSON, snapshot (empty
when none). `more` means "ask again after the last one". Anything malformed gets
`{"ok": false, "error": "..."}` and changes nothing; the server never dies of a request.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import zmq

from engine.alerts.journal import Journal

__all__ = ["MAX_LIMIT", "ReplayServer", "parse_request"]

log = logging.getLogger(__name__)

MAX_LIMIT = 5000
MAX_REQUEST_BYTES = 64 * 1024


class RequestError(ValueError):
    """A request that cannot be served; its message goes back to the client."""


def parse_request(raw: bytes) -> tuple[str | None, int, tuple[str, ...], int]:
    """(epoch, after, topic prefixes, limit) of a replay request, or RequestError saying why."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestError(f"request of {len(raw)} bytes; at most {MAX_REQUEST_BYTES}")
    try:
        req = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(f"request is not JSON: {exc}") from None
    if not isinstance(req, dict):
        raise RequestError(f"expected a JSON object, got {type(req).__name__}")
    if req.get("op") != "replay":
        raise RequestError(f"expected op 'replay', got {req.get('op')!r}")
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
    return epoch, after, tuple(topics), limit


class ReplayServer:
    """Serves replay requests from its own thread and its own journal connection.

    Args:
        endpoint: where to bind the ROUTER socket.
        journal_path: the journal the publisher writes.
        context: ZeroMQ context.
        secure: callback that makes a socket a CURVE server (None: plaintext).
    """

    def __init__(self, endpoint: str, journal_path: Path, context: zmq.Context,
                 secure: Any = None) -> None:  # fmt: skip
        self.endpoint = endpoint
        self.served = 0
        self.refused = 0
        self._journal_path = journal_path
        self._sock = context.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES * 2)
        if secure is not None:
            secure(self._sock)
        self._sock.bind(endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lookout-replay", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving (within ~0.2 s) and close the socket."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        journal = Journal(self._journal_path)
        try:
            while not self._stop.is_set():
                if not self._sock.poll(100):
                    continue
                frames = self._sock.recv_multipart()
                try:
                    reply = self._serve(journal, frames)
                except Exception:  # a bug must not take the endpoint down
                    log.exception("replay request failed")
                    reply = [_error("internal error")]
                envelope = frames[:2] if len(frames) > 2 and frames[1] == b"" else frames[:1]
                self._sock.send_multipart(envelope + reply)
        finally:
            journal.close()
            self._sock.close(0)

    def _serve(self, journal: Journal, frames: list[bytes]) -> list[bytes]:
        body = frames[2:] if len(frames) > 2 and frames[1] == b"" else frames[1:]
        if len(body) != 1:
            self.refused += 1
            return [_error(f"expected one request frame, got {len(body)}")]
        try:
            epoch, after, topics, limit = parse_request(body[0])
        except RequestError as exc:
            self.refused += 1
            return [_error(str(exc))]
        rows, known = journal.after(epoch, after, topics, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        head_epoch, head_seq = journal.head()
        header = {"ok": True, "count": len(rows), "more": more, "known_epoch": known,
                  "head": {"epoch": head_epoch, "seq": head_seq}}  # fmt: skip
        out = [json.dumps(header).encode()]
        for r in rows:
            out += [_topic_for(r.topics, topics).encode(), r.body, r.snapshot or b""]
        self.served += 1
        return out


def _topic_for(topics: tuple[str, ...], prefixes: tuple[str, ...]) -> str:
    """The alert's topic the client asked for (its first matching one)."""
    for t in topics:
        if not prefixes or any(t.startswith(p) for p in prefixes):
            return t
    return topics[0]


def _error(message: str) -> bytes:
    return json.dumps({"ok": False, "error": message}).encode()
