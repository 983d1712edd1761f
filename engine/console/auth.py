"""Who may see the web console: one password (stored as a scrypt hash), session tokens, rate
limits on login, and the Host and Origin checks that keep other web pages out.

The operator makes the hash with `lookout console hash-password` and gives the console the file
(`--password-file`); the password itself never sits on a command line or in a file. A login
yields a random session token, kept by the browser in an HttpOnly, SameSite=Strict cookie and
by the console only as its SHA-256 (compared in constant time), expiring after a fixed time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ConfigError

__all__ = [
    "LoginLimiter",
    "Sessions",
    "allowed_host",
    "hash_password",
    "load_password_hash",
    "verify_password",
]

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~16 MiB and tens of ms per try: slow to guess
_PREFIX = "scrypt"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash` of `password`, with a fresh random salt.

    >>> verify_password("correct horse", hash_password("correct horse"))
    True
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"{_PREFIX}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.strip().split("$")
    if len(parts) != 6 or parts[0] != _PREFIX:
        raise ValueError("expected scrypt$N$r$p$salt$hash (from `lookout console hash-password`)")
    n, r, p = (int(v) for v in parts[1:4])
    if not (2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise ValueError("scrypt parameters out of range")
    salt, digest = _unb64(parts[4]), _unb64(parts[5])
    if len(salt) < 8 or len(digest) < 16:
        raise ValueError("salt or hash too short")
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (constant-time comparison)."""
    n, r, p, salt, digest = _parse(stored)
    got = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(digest), maxmem=256 * 1024**2
    )
    return hmac.compare_digest(got, digest)


def load_password_hash(path: Path) -> str:
    """The hash in `path` (its first line).

    Raises:
        ConfigError: the file is missing, unreadable or holds no valid hash (the message never
            repeats the file's content).
    """
    try:
        text = path.read_text(encoding="utf-8")[:4096]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--password-file {path}: cannot read it: {exc}") from None
    line = text.strip().splitlines()[0] if text.strip() else ""
    try:
        _parse(line)
    except ValueError as exc:
        raise ConfigError(f"--password-file {path}: not a password hash: {exc}") from None
    return line


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass
class Sessions:
    """Session tokens and one-time login tickets, each with an expiry (monotonic clock).

    Args:
        ttl_s: how long a session lasts after login.
        most: sessions kept at once (the oldest goes first).
    """

    ttl_s: float = 12 * 3600.0
    most: int = 100
    ticket_ttl_s: float = 30.0
    _sessions: dict[bytes, float] = field(default_factory=dict)
    _tickets: dict[bytes, float] = field(default_factory=dict)

    def new_ticket(self) -> str:
        """A one-time ticket (after a good password) that `redeem` turns into a session."""
        self._expire()
        ticket = secrets.token_urlsafe(32)
        self._tickets[_digest(ticket)] = time.monotonic() + self.ticket_ttl_s
        while len(self._tickets) > self.most:
            self._tickets.pop(next(iter(self._tickets)))
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """A new session token for a valid ticket (used up), else None."""
        self._expire()
        if self._tickets.pop(_digest(ticket), None) is None:
            return None
        token = secrets.token_urlsafe(32)
        self._sessions[_digest(token)] = time.monotonic() + self.ttl_s
        while len(self._sessions) > self.most:
            self._sessions.pop(next(iter(self._sessions)))
        return token

    def valid(self, token: str | None) -> bool:
        """Whether `token` is a live session (looked up by its hash: the lookup's timing tells
        nothing about the token)."""
        if not token:
            return False
        self._expire()
        expiry = self._sessions.get(_digest(token))
        return expiry is not None and expiry > time.monotonic()

    def end(self, token: str | None) -> None:
        """Log a session out."""
        if token:
            self._sessions.pop(_digest(token), None)

    def _expire(self) -> None:
        now = time.monotonic()
        for table in (self._sessions, self._tickets):
            for key in [k for k, t in table.items() if t <= now]:
                del table[key]


@dataclass
class LoginLimiter:
    """Failed logins allowed per client address and in all, per `window_s`.

    Args:
        per_client: failures per address before it must wait.
        overall: failures from all addresses together before everyone must wait.
    """

    per_client: int = 5
    overall: int = 30
    window_s: float = 60.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    def wait_s(self, client: str) -> float:
        """Seconds `client` must wait before trying again (0: may try now)."""
        now = time.monotonic()
        self._trim(now)
        waits = [0.0]
        mine = self._failures.get(client)
        if mine is not None and len(mine) >= self.per_client:
            waits.append(mine[0] + self.window_s - now)
        if len(self._all) >= self.overall:
            waits.append(self._all[0] + self.window_s - now)
        return max(waits)

    def failed(self, client: str) -> None:
        """Count a failed login of `client`."""
        now = time.monotonic()
        self._failures.setdefault(client, deque()).append(now)
        self._all.append(now)
        if len(self._failures) > 10_000:  # bounded, whatever the number of addresses
            self._failures.pop(next(iter(self._failures)))

    def _trim(self, now: float) -> None:
        horizon = now - self.window_s
        while self._all and self._all[0] <= horizon:
            self._all.popleft()
        for client in [c for c, q in self._failures.items() if not q or q[-1] <= horizon]:
            del self._failures[client]
        for q in self._failures.values():
            while q and q[0] <= horizon:
                q.popleft()


def allowed_host(header: str | None, names: frozenset[str], port: int, default_port: int) -> bool:
    """Whether a request's Host header names this console: one of `names` (lower case) and its
    port (or none, when it serves on the scheme's default port). Refusing other names stops DNS
    rebinding: a page on evil.example that re-points its name to 127.0.0.1."""
    if not header:
        return False
    host = header.strip().lower()
    if host.startswith("["):  # [v6]:port
        name, _, rest = host.partition("]")
        name += "]"
        given = rest[1:] if rest.startswith(":") else None
        if rest and not rest.startswith(":"):
            return False
    else:
        name, sep, given_port = host.rpartition(":")
        if not sep:
            name, given = host, None
        else:
            given = given_port
    port_ok = given.isdigit() and int(given) == port if given is not None else port == default_port
    return port_ok and name in names
