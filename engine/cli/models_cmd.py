"""`lookout models list | verify FILE | export NAME`: model cards and the files they describe."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from engine.errors import ModelError
from engine.resources import model_cards_dir

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the subcommand."""
    p = sub.add_parser("models", help="list, verify and export the supported detector models")
    p.add_argument(
        "--cards",
        type=Path,
        default=None,
        help="folder of model cards (*.yaml; default: the cards shipped with Lookout)",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    ls = verbs.add_parser("list", help="every card, and where its weights are found")
    ls.add_argument(
        "--dir",
        type=Path,
        action="append",
        default=[],
        help="also look for weights here (repeat; also $LOOKOUT_MODEL_PATH, ':'-separated)",
    )
    ls.set_defaults(func=_list)
    v = verbs.add_parser("verify", help="checksum, layout against the card, and a dry run")
    v.add_argument("file", type=Path)
    v.add_argument("--card", help="check against this card (default: found by checksum or name)")
    v.set_defaults(func=_verify)
    e = verbs.add_parser("export", help="rebuild a card's ONNX file with Ultralytics")
    e.add_argument("name", help="card name (see `lookout models list`)")
    e.add_argument("--weights", type=Path, help="local Ultralytics weights (.pt)")
    e.add_argument("--out", type=Path, default=Path("models"), help="where the .onnx goes")
    e.set_defaults(func=_export)


def _cards_dir(args: argparse.Namespace) -> Path:
    return Path(args.cards) if args.cards is not None else model_cards_dir()


def _search_dirs(args: argparse.Namespace) -> list[Path]:
    extra = [Path(d) for d in os.environ.get("LOOKOUT_MODEL_PATH", "").split(os.pathsep) if d]
    return [_cards_dir(args), *args.dir, *extra]


def _card(args: argparse.Namespace, name: str) -> Any:
    from engine.detect.cards import load_cards

    cards = {c.name: c for c in load_cards(_cards_dir(args))}
    if name not in cards:
        raise ModelError(f"no model card named {name!r}; known: {', '.join(sorted(cards))}")
    return cards[name]


def _list(args: argparse.Namespace) -> int:
    from engine.detect.cards import load_cards

    rows = []
    for card in load_cards(_cards_dir(args)):
        found = next((d / card.file for d in _search_dirs(args) if (d / card.file).is_file()), None)
        size = f"{card.input.size[1]}x{card.input.size[0]}"
        batch = "dyn" if card.input.batch == "dynamic" else str(card.input.batch)
        classes = "coco80" if card.classes == "coco80" else f"{len(card.classes)} classes"
        rows.append(
            (
                card.name,
                card.family,
                size,
                batch,
                classes,
                card.license.split(" ")[0],
                str(found) if found else "not here",
            )
        )
    head = ("name", "family", "input", "batch", "classes", "license", "weights")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _verify(args: argparse.Namespace) -> int:
    from engine.detect.cards import load_cards, verify

    cards = load_cards(_cards_dir(args))
    card = _card(args, args.card) if args.card else None
    report = verify(args.file, cards, card)
    name = report.card.name if report.card else "no card"
    print(f"{args.file} ({name}) sha256 {report.sha256}")
    for line in report.checks:
        print(f"  ok    {line}")
    for line in report.notes:
        print(f"  note  {line}")
    for line in report.problems:
        print(f"  FAIL  {line}")
    print("verified" if report.ok else f"{len(report.problems)} problem(s)")
    return 0 if report.ok else 1


def _export(args: argparse.Namespace) -> int:
    from engine.detect.cards import sha256_of
    from engine.detect.export import export_model

    card = _card(args, args.name)
    path = export_model(card, args.out, args.weights)
    print(f"exported {path} (sha256 {sha256_of(path)}); check it: lookout models verify {path}")
    return 0
