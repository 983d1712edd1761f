"""An object detector running an ONNX model with onnxruntime.

One verb: `detect(frames) -> list[Detections]`. Frames are letterboxed into a preallocated batch
tensor, run in one call where the model's batch axis is dynamic (else one call per frame), decoded
by the model's family, filtered by class-aware NMS and mapped back to source pixels.

Example:
    >>> det = OnnxDetector(DetectorConfig(model=Path("yolo11n.onnx")))  # doctest: +SKIP
    >>> dets = det.detect([frame])[0]
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.config import DetectorConfig
from engine.detect.decoders import (
    Candidates,
    decode_ultralytics,
    decode_ultralytics_end2end,
    decode_yolox,
    yolox_grid,
)
from engine.detect.model_info import ModelInfo, inspect_model
from engine.detect.nms import nms
from engine.detect.session import make_call, open_session
from engine.errors import ModelError
from engine.preprocess import LetterboxParams, letterbox_fused, rect_input_shape, unletterbox_boxes
from engine.types import Detections, Frame

__all__ = ["OnnxDetector"]

log = logging.getLogger(__name__)


class OnnxDetector:
    """Runs an ONNX detector on batches of frames.

    Args:
        cfg: the detector's configuration (model path, thresholds, overrides).

    Raises:
        ModelError: the file is missing, corrupt, or has an unsupported layout.

    Attributes:
        info: what the model is (family, input size, class names, ...).
    """

    def __init__(self, cfg: DetectorConfig) -> None:
        self.cfg = cfg
        self._session, self.provider = open_session(cfg)
        self.info: ModelInfo = inspect_model(self._session, cfg)
        self._call = make_call(self._session, self.provider, cfg)
        self._buffers: dict[tuple[int, int, int], npt.NDArray[np.floating[Any]]] = {}
        self._lock = threading.Lock()  # the batch buffers are reused: one run at a time
        self._grid = yolox_grid(*self.info.input_hw) if self.info.family == "yolox" else None
        log.info(
            "model %s: %s, input %dx%d %s/%s, %d classes",
            cfg.model.name,
            self.info.family,
            self.info.input_hw[1],
            self.info.input_hw[0],
            self.info.layout.channel_order,
            "255" if self.info.layout.scale_to_unit else "raw",
            len(self.info.class_names),
        )
        self._warm_up(cfg.warmup_runs)

    def _warm_up(self, runs: int) -> None:
        """Run the model on blank batches (the largest batch it will see) before real frames:
        TensorRT builds or loads its engine and CUDA allocates here, not on the first frame."""
        if runs <= 0:
            return
        batch = self.cfg.batch_max if self.info.batch_dynamic else 1
        blank = np.zeros((batch, 3, *self.info.input_hw), self.info.input_dtype)
        t0 = time.perf_counter()
        for _ in range(runs):
            self._infer(blank)
        log.info(
            "detector %s warmed up: %d run(s) of batch %d in %.0f ms",
            self.cfg.model.name,
            runs,
            batch,
            1000 * (time.perf_counter() - t0),
        )

    def _infer(self, batch: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
        try:
            return self._call.run(batch)
        except Exception as exc:  # onnxruntime's errors are untyped
            raise ModelError(f"{self.cfg.model.name}: inference failed: {exc}") from exc

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names, index = class id."""
        return self.info.class_names

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """Detections for each frame, boxes in that frame's pixels."""
        return self.detect_images([f.image for f in frames])

    def detect_images(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detections for each BGR uint8 [h, w, 3] image, boxes in that image's pixels."""
        if not images:
            return []
        # never more than batch_max per call: TensorRT's optimisation profile ends there
        step = max(1, self.cfg.batch_max) if self.info.batch_dynamic else 1
        out: list[Detections] = []
        for start in range(0, len(images), step):
            out.extend(self._run(images[start : start + step]))
        return out

    def input_shape(self, images: Sequence[npt.NDArray[np.uint8]]) -> tuple[int, int]:
        """(h, w) of the input for these frames: the model's, or for models with dynamic spatial
        axes the smallest stride-aligned rectangle that holds each of them at the model's size."""
        if not self.info.spatial_dynamic:
            return self.info.input_hw
        size = max(self.info.input_hw)
        shapes = [
            rect_input_shape(im.shape[0], im.shape[1], size, self.info.stride) for im in images
        ]
        return max(s[0] for s in shapes), max(s[1] for s in shapes)

    def _buffer(self, batch: int, h: int, w: int) -> npt.NDArray[np.floating[Any]]:
        buf = self._buffers.get((batch, h, w))
        if buf is None:
            if len(self._buffers) > 16:  # frame sizes changed a lot: keep memory bounded
                self._buffers.clear()
            buf = np.empty((batch, 3, h, w), self.info.input_dtype)
            self._buffers[(batch, h, w)] = buf
        return buf

    def _run(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        with self._lock:
            buf = self._buffer(len(images), *self.input_shape(images))
            params = [letterbox_fused(im, buf[i], self.info.layout) for i, im in enumerate(images)]
            raw = self._infer(buf)
        return [self._postprocess(raw[i], p) for i, p in enumerate(params)]

    def _decode(self, pred: npt.NDArray[np.floating[Any]]) -> Candidates:
        conf = self.cfg.conf
        if self.info.family == "ultralytics":
            return decode_ultralytics(pred, conf)
        if self.info.family == "ultralytics_end2end":
            return decode_ultralytics_end2end(pred, conf)
        assert self._grid is not None
        return decode_yolox(pred, self._grid[0], self._grid[1], conf)

    def _postprocess(self, pred: npt.NDArray[np.floating[Any]], p: LetterboxParams) -> Detections:
        xyxy, score, class_id = self._decode(pred)
        keep: npt.NDArray[np.int64] | slice
        if self.info.family == "ultralytics_end2end":
            keep = slice(0, self.cfg.max_det)  # NMS already ran inside the model
        else:
            classes = None if self.cfg.agnostic_nms else class_id
            keep = nms(xyxy, score, classes, self.cfg.iou, self.cfg.max_det)
        xyxy, score, class_id = xyxy[keep], score[keep], class_id[keep]
        unletterbox_boxes(xyxy, p)
        return Detections(
            np.ascontiguousarray(xyxy, np.float32),
            np.ascontiguousarray(score, np.float32),
            np.ascontiguousarray(class_id, np.int32),
            self.info.class_names,
        )
