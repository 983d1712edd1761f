"""Model cards: what a supported detector is, where its weights come from, how to check a file.

A card is a YAML file beside the weights it describes (`models/NAME.yaml`): family, input size,
layout and scaling, class names, sha256, license, source, and how to export it again. `verify`
checks a model file against its card and the engine's own reading of it, then runs it once.

Example:
    >>> cards = load_cards(Path("models"))  # doctest: +SKIP
    >>> report = verify(Path("yolo11n_coco_320.onnx"), cards)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.config import DetectorConfig
from engine.detect.coco_names import COCO80, COCO_ALIASES
from engine.errors import ConfigError, ModelError
from engine.yamlconf import read_text

__all__ = [
    "CardInput",
    "ExportRecipe",
    "ModelCard",
    "VerifyReport",
    "find_card",
    "load_card",
    "load_cards",
    "sha256_of",
    "verify",
]


class CardInput(BaseModel):
    """The input a model expects."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    size: tuple[int, int] = Field(description="(height, width) the frame is letterboxed to.")
    batch: Literal["dynamic"] | int = Field(description="Batch axis: 'dynamic' or fixed size.")
    spatial: Literal["dynamic", "fixed"] = Field(description="Height and width axes.")
    channel_order: Literal["rgb", "bgr"]
    scale: Literal[1, 255] = Field(description="Pixels are divided by this (1: raw 0..255).")
    pad: Literal["center", "top_left"] = Field(description="Where the image sits when padded.")
    pad_value: int = Field(114, ge=0, le=255)


class ExportRecipe(BaseModel):
    """How `lookout models export` rebuilds the file with Ultralytics."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    weights: str = Field(description="Ultralytics weights file, e.g. yolo11n.pt.")
    imgsz: int = Field(ge=32, le=4096)
    dynamic: bool = False
    nms: bool = Field(False, description="End-to-end export with NMS inside the model.")
    batch: int = Field(1, ge=1, le=64)


class ModelCard(BaseModel):
    """One supported model."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    file: str = Field(description="File name of the weights.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(gt=0)
    family: Literal["ultralytics", "ultralytics_end2end", "yolox"]
    architecture: str
    input: CardInput
    classes: list[str] | Literal["coco80"]
    license: str
    source: str = Field(description="Where the weights come from.")
    export: ExportRecipe | None = None
    reproduce: str | None = Field(None, description="The command that rebuilds it from scratch.")
    reference_metrics: dict[str, Any] | None = None
    # the bundled model's training record
    data: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    heldout_metrics: dict[str, Any] | None = None
    heldout_set: str | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names, index = class id."""
        return COCO80 if self.classes == "coco80" else tuple(self.classes)


def load_card(path: Path) -> ModelCard:
    """Read and validate one card.

    Raises:
        ConfigError: unreadable YAML or a field that does not fit, with the file and field.
    """
    import yaml

    try:
        raw = yaml.safe_load(read_text(path))
        return ModelCard.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: not a model card: {errors}") from None


def load_cards(directory: Path) -> list[ModelCard]:
    """Every card (*.yaml with a `sha256` field) in `directory`, sorted by name."""
    cards = []
    for path in sorted(directory.glob("*.yaml")):
        if "sha256:" in read_text(path):
            cards.append(load_card(path))
    return sorted(cards, key=lambda c: c.name)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_card(path: Path, cards: list[ModelCard], digest: str | None = None) -> ModelCard | None:
    """The card of this file: by checksum, else by file name."""
    digest = digest or sha256_of(path)
    by_sha = [c for c in cards if c.sha256 == digest]
    if by_sha:
        return by_sha[0]
    by_name = [c for c in cards if c.file == path.name]
    return by_name[0] if by_name else None


@dataclass
class VerifyReport:
    """What `verify` found. `problems` empty means the file is fit to run."""

    path: Path
    sha256: str
    card: ModelCard | None
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


def _compare(card: ModelCard, info: Any) -> list[str]:
    """Differences between the card and how the engine reads the model."""
    found = {
        "family": info.family,
        "input.size": tuple(info.input_hw),
        "input.channel_order": info.layout.channel_order,
        "input.scale": 255 if info.layout.scale_to_unit else 1,
        "input.pad": info.layout.pad,
        "input.batch": "dynamic" if info.batch_dynamic else 1,
        "input.spatial": "dynamic" if info.spatial_dynamic else "fixed",
    }
    want = {
        "family": card.family,
        "input.size": tuple(card.input.size),
        "input.channel_order": card.input.channel_order,
        "input.scale": card.input.scale,
        "input.pad": card.input.pad,
        "input.batch": card.input.batch,
        "input.spatial": card.input.spatial,
    }
    out = []
    for key, value in want.items():
        if key != "classes" and found[key] != value:
            out.append(f"{key}: card says {value}, the model has {found[key]}")
    have = tuple(COCO_ALIASES.get(n, n) for n in info.class_names)  # VOC spellings are the same
    if have != card.class_names:
        if len(have) != len(card.class_names):
            out.append(f"classes: card lists {len(card.class_names)}, the model has {len(have)}")
        else:
            pairs = enumerate(zip(card.class_names, have, strict=True))
            diff = [f"{i}: {a!r} vs {b!r}" for i, (a, b) in pairs if a != b]
            out.append(f"classes differ (card vs model) at {', '.join(diff[:5])}")
    return out


def verify(path: Path, cards: list[ModelCard], card: ModelCard | None = None) -> VerifyReport:
    """Checksum, layout and a dry run of the model file `path`.

    The layout the engine reads from the file must equal the card's; a checksum that differs
    from the card's is a note (a re-export or retrained weights), not a failure. The dry run
    detects on a synthetic frame at batch 1 (and 2 where the batch is dynamic) and checks the
    boxes are finite and inside the frame.

    Raises:
        ModelError: the file is missing or onnxruntime cannot load it.
    """
    from engine.detect.onnx_detector import OnnxDetector

    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    digest = sha256_of(path)
    card = card or find_card(path, cards, digest)
    report = VerifyReport(path, digest, card)
    # read the file as the engine would with no hints, then compare with the card
    det = OnnxDetector(DetectorConfig(model=path, conf=0.001, warmup_runs=0))
    info = det.info
    report.checks.append(
        f"layout: {info.family}, input {info.input_hw[1]}x{info.input_hw[0]} "
        f"{info.layout.channel_order} /{255 if info.layout.scale_to_unit else 1} pad "
        f"{info.layout.pad}, batch {'dynamic' if info.batch_dynamic else 'fixed'}, "
        f"{len(info.class_names)} classes, provider {det.provider}"
    )
    if card is None:
        report.notes.append("no card matches this file (by checksum or name): layout read only")
    else:
        if digest == card.sha256:
            report.checks.append(f"sha256 matches card {card.name}")
        else:
            report.notes.append(
                f"sha256 {digest[:12]}… differs from card {card.name} ({card.sha256[:12]}…): "
                "other weights or a re-export"
            )
        report.problems.extend(_compare(card, info))
    report.checks.append(_dry_run(det))
    return report


def _dry_run(det: Any) -> str:
    """Detect on synthetic frames; raise ModelError if the output is not sane."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    batches = [1, 2] if det.info.batch_dynamic else [1]
    timings = []
    for b in batches:
        t0 = time.perf_counter()
        out = det.detect_images([image] * b)
        timings.append(f"batch {b}: {1000 * (time.perf_counter() - t0):.0f} ms")
        for d in out:
            if not np.isfinite(d.xyxy).all() or not np.isfinite(d.score).all():
                raise ModelError(f"{det.cfg.model.name}: dry run produced non-finite boxes")
            off = len(d) and (
                d.xyxy.min() < -1 or d.xyxy[:, [0, 2]].max() > 641 or d.xyxy[:, [1, 3]].max() > 361
            )
            if off:
                raise ModelError(f"{det.cfg.model.name}: dry run produced boxes off the frame")
    return f"dry run: {', '.join(timings)}"
