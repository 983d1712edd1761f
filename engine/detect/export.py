"""`lookout models export NAME`: rebuild a card's ONNX file with Ultralytics, or say what to do.

Ultralytics (and torch) are an optional extra that the engine never needs; this is the only
place that imports them. Weights are taken from a local file when there is one; Ultralytics
downloads them only when the network is there. Offline, the error says exactly what to do.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import tempfile
from pathlib import Path

from engine.detect.cards import ModelCard
from engine.errors import ModelError

__all__ = ["export_model", "network_reachable"]

WEIGHTS_HOST = ("github.com", 443)  # where Ultralytics fetches released weights from


def network_reachable(timeout_s: float = 3.0) -> bool:
    """Whether Ultralytics could fetch weights: YOLO_OFFLINE unset and its host answers."""
    if os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection(WEIGHTS_HOST, timeout=timeout_s):
            return True
    except OSError:
        return False


def _command(card: ModelCard) -> str:
    e = card.export
    assert e is not None
    extra = (" dynamic=True" if e.dynamic else "") + (" nms=True" if e.nms else "")
    return f"yolo export model={e.weights} format=onnx imgsz={e.imgsz}{extra}"


def export_model(card: ModelCard, out_dir: Path, weights: Path | None = None) -> Path:
    """Export `card` to `out_dir/card.file`; returns the path.

    Raises:
        ModelError: the card has no export recipe, Ultralytics is not installed, or the weights
            are neither local nor downloadable; the message says what to do instead.
    """
    if card.export is None:
        how = f"it is rebuilt with `{card.reproduce}`" if card.reproduce else card.source
        raise ModelError(f"{card.name}: no Ultralytics export recipe: {how}")
    recipe = card.export
    if importlib.util.find_spec("ultralytics") is None:
        raise ModelError(
            f"{card.name}: exporting needs Ultralytics, which is not installed here. Install the "
            "optional extra in its own environment (it brings torch): `make ultralytics-env`, "
            f"then `.venv-train/bin/lookout models export {card.name}`; or on any machine with "
            f"Ultralytics run `{_command(card)}` and copy the .onnx file into {out_dir}/"
        )
    source = weights or Path(recipe.weights)
    if not source.is_file() and not network_reachable():
        raise ModelError(
            f"{card.name}: the weights {recipe.weights} are not here and the network is "
            f"unreachable. Copy {recipe.weights} (Ultralytics releases) here and run "
            f"`lookout models export {card.name} --weights {recipe.weights}`, or on a connected "
            f"machine run `{_command(card)}` and copy the .onnx file into {out_dir}/; then "
            f"`lookout models verify {out_dir / card.file}`"
        )
    os.environ.setdefault("YOLO_OFFLINE", "1" if source.is_file() else "0")
    from ultralytics import YOLO

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Ultralytics writes the export beside the weights: work on a copy in a scratch folder
        local = Path(tmp) / Path(recipe.weights).name
        if source.is_file():
            shutil.copy(source, local)
        model = YOLO(str(local) if source.is_file() else recipe.weights)
        try:
            produced = model.export(
                format="onnx",
                imgsz=recipe.imgsz,
                dynamic=recipe.dynamic,
                nms=recipe.nms,
                batch=recipe.batch,
                simplify=True,
                device="cpu",
            )
        except Exception as exc:  # ultralytics raises many kinds of errors
            raise ModelError(f"{card.name}: Ultralytics export failed: {exc}") from exc
        target = out_dir / card.file
        shutil.move(str(produced), target)
    return target
