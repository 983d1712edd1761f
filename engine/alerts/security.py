"""CURVE encryption and authentication for the alert stream and the replay endpoint.

The engine holds a key pair; each console has its own, and only consoles whose public key lies
in the allow-list folder may connect (ZeroMQ's ZAP handler checks them; others get nothing).
`lookout keys new NAME` writes NAME.key (public: give it out) and NAME.key_secret (keep it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from engine.config import CurveConfig
from engine.errors import PublishError

__all__ = ["CurveServer", "SocketSetup", "new_keypair", "secure_client"]

log = logging.getLogger(__name__)

SocketSetup = Callable[[zmq.Socket], None]


def new_keypair(folder: Path, name: str) -> tuple[Path, Path]:
    """Write NAME.key and NAME.key_secret into `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(folder), name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)


def _load(path: Path, want_secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise PublishError(f"key file not found: {path}")
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise PublishError(f"not a ZeroMQ key file: {path}: {exc}") from None
    if want_secret and not secret:
        raise PublishError(f"{path} holds no secret key (use the .key_secret file)")
    return public, secret


class CurveServer:
    """The engine's side: an authenticator thread and the server key pair for its sockets.

    The constructor loads the keys; `start` starts the authenticator (before any socket it
    secures is bound: without it, ZeroMQ lets every CURVE client in); `close` stops it.

    The allow-list is held here and asked on every handshake, so `reload` takes effect for the
    next connection; connections already established are the sockets' owner's to drop (the
    publisher rebinds its endpoints when a key was revoked).

    Raises:
        PublishError: a key file or the allow-list folder is missing or invalid.
    """

    def __init__(self, cfg: CurveConfig, context: zmq.Context) -> None:
        self.public, secret = _load(cfg.server_secret_key, want_secret=True)
        assert secret is not None
        self._secret = secret
        self._folder = cfg.allowed_clients
        self._allowed = _allowed_keys(self._folder)
        if not self._allowed:
            log.warning("no console keys in %s: no console can connect", self._folder)
        self._context = context
        self._auth: ThreadAuthenticator | None = None

    def start(self) -> None:
        """Start the authenticator thread (once; again after `close` it is a new one)."""
        if self._auth is not None:
            return
        auth = ThreadAuthenticator(self._context)
        auth.start()
        auth.configure_curve_callback(domain="*", credentials_provider=self)
        self._auth = auth
        log.info("alert stream encrypted; %d console keys allowed", len(self._allowed))

    @property
    def allowed(self) -> int:
        """How many console keys may connect now."""
        return len(self._allowed)

    def callback(self, domain: str, client_key: bytes) -> bool:
        """ZAP asks (authenticator thread): may this console's public key (Z85) connect?"""
        return client_key in self._allowed

    def reload(self) -> tuple[int, int]:
        """Re-read the allow-list folder; (keys added, keys revoked). Raises PublishError when
        the folder is gone (the previous list stays)."""
        new = _allowed_keys(self._folder)
        old, self._allowed = self._allowed, new  # one reference swap: ZAP sees old or new
        return len(new - old), len(old - new)

    def __call__(self, sock: zmq.Socket) -> None:
        """Make `sock` a CURVE server (call before bind)."""
        sock.curve_secretkey = self._secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def close(self) -> None:
        """Stop the authenticator thread (idempotent; nothing to do before `start`)."""
        auth, self._auth = self._auth, None
        if auth is not None:
            auth.stop()


def _allowed_keys(folder: Path) -> frozenset[bytes]:
    """The Z85 public keys of the NAME.key files in `folder`; an unreadable file is skipped
    with a warning naming it (never its content)."""
    if not folder.is_dir():
        raise PublishError(f"allowed_clients: folder not found: {folder}")
    keys = set()
    for path in sorted(folder.glob("*.key")):
        try:
            public, _ = zmq.auth.load_certificate(str(path))
        except (ValueError, OSError):
            log.warning("allowed_clients: %s is not a ZeroMQ public key file; skipped", path)
            continue
        if public:
            keys.add(bytes(public))
    return frozenset(keys)


def secure_client(server_key: Path, client_secret_key: Path) -> SocketSetup:
    """The console's side: a setup that makes a socket a CURVE client of that server."""
    server_public, _ = _load(server_key, want_secret=False)
    public, secret = _load(client_secret_key, want_secret=True)

    def setup(sock: zmq.Socket) -> None:
        sock.curve_serverkey = server_public
        sock.curve_publickey = public
        sock.curve_secretkey = secret

    return setup
