"""`lookout keys new NAME`: a CURVE key pair for the engine or a console.

NAME.key is the public key: give the engine's to its consoles (`lookout subscribe
--server-key`), and put each console's in the engine's `allowed_clients` folder. NAME.key_secret
stays where it was made (mode 0600): the engine's goes in `curve.server_secret_key`, a
console's in `lookout subscribe --key`.

To revoke a console, delete its NAME.key from `allowed_clients` and reload the engine (SIGHUP,
`systemctl reload`): its connections are dropped and it receives nothing more; keys added to the
folder are allowed at the same reload.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.alerts.security import new_keypair
from engine.errors import EngineError

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the subcommand."""
    p = sub.add_parser(
        "keys",
        help="make CURVE key pairs for the alert stream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="verb", required=True)
    new = verbs.add_parser("new", help="write NAME.key and NAME.key_secret")
    new.add_argument("name", help="engine or console name (letters, digits, '-', '_')")
    new.add_argument("--dir", type=Path, default=Path("keys"), help="folder (default ./keys)")
    new.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the pair, refusing to overwrite an existing one."""
    if not args.name.replace("-", "").replace("_", "").isalnum():
        raise EngineError(f"name: expected letters, digits, '-' and '_', got {args.name!r}")
    secret = args.dir / f"{args.name}.key_secret"
    if secret.exists():
        raise EngineError(f"{secret} exists; not overwriting a key pair")
    public, secret = new_keypair(args.dir, args.name)
    print(f"public key: {public}  (share it)")
    print(f"secret key: {secret}  (keep it here; mode 0600)")
    return 0
