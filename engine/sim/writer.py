"""Writing a rendered scenario: video, telemetry, ground truth, and optional training frames.

- fixed cameras: `<sensor>.mp4` (H.264);
- drones: `<sensor>.ts` (MPEG-TS, H.264 plus a MISB ST 0601 KLV data stream, one packet per
  frame at the frame's timestamp) and `<sensor>.srt` (DJI-style sidecar);
- `truth.json`: per-frame camera parameters, telemetry and objects; the true event intervals;
- with `frames`: `images/NNNNNN.jpg` and `labels/NNNNNN.txt` in YOLO format (class cx cy w h,
  normalised), for training detectors.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt

from engine.record.h264 import H264Writer
from engine.sim.actors import DETECTOR_CLASSES
from engine.sim.render import FrameTruth
from engine.telemetry import dji_srt, misb0601

__all__ = ["ScenarioWriter", "write_yolo_sample"]

TS_CLOCK = 90_000  # MPEG-TS timestamps tick at 90 kHz


class ScenarioWriter:
    """Receives frames one by one and writes every output of a rendered scenario.

    Args:
        out_dir: folder to write into (created).
        sensor_id: base name of the video and telemetry files.
        drone: write MPEG-TS with KLV and an SRT sidecar (else MP4).
        size: (width, height).
        fps: frames per second.
        start_utc: wall clock of the first frame.
        platform: drone model name for telemetry.
        frames_every: also write every Nth frame as a YOLO-labelled image (0: none).
        min_visibility: objects less visible than this get no YOLO label.
    """

    def __init__(
        self,
        out_dir: Path,
        sensor_id: str,
        drone: bool,
        size: tuple[int, int],
        fps: float,
        start_utc: datetime,
        platform: str = "",
        frames_every: int = 0,
        min_visibility: float = 0.25,
    ) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.drone = drone
        self.fps = fps
        self.start_utc = start_utc
        self.platform = platform
        self.frames_every = frames_every
        self.min_visibility = min_visibility
        self.video_path = out_dir / f"{sensor_id}.{'ts' if drone else 'mp4'}"
        self.srt_path = out_dir / f"{sensor_id}.srt" if drone else None
        self._video = H264Writer(
            self.video_path,
            fps,
            size,
            "mpegts" if drone else "mp4",
            {"preset": "veryfast", "crf": "21", "g": str(round(fps))},
            Fraction(1, TS_CLOCK) if drone else None,
        )
        self._container = self._video.container  # the KLV data stream shares it
        self._klv = self._container.add_data_stream("klv") if drone else None
        self._srt: list[str] = []
        self._frames: list[dict[str, Any]] = []
        if frames_every:
            (out_dir / "images").mkdir(exist_ok=True)
            (out_dir / "labels").mkdir(exist_ok=True)

    def add(
        self,
        index: int,
        t: float,
        image: npt.NDArray[np.uint8],
        camera: dict[str, Any],
        telemetry: dict[str, float],
        objects: list[FrameTruth],
    ) -> None:
        """Encode one frame and record its truth."""
        pts = round(t * TS_CLOCK) if self.drone else index
        self._video.write(image, pts)
        utc = self.start_utc + timedelta(seconds=t)
        if self.drone:
            self._telemetry(index, t, pts, utc, telemetry)
        self._frames.append(
            {
                "index": index,
                "pts_s": round(t, 6),
                "utc": utc.isoformat().replace("+00:00", "Z"),
                "camera": camera,
                "telemetry": {k: round(v, 9) for k, v in telemetry.items()},
                "objects": [o.to_dict() for o in objects],
            }
        )
        if self.frames_every and index % self.frames_every == 0:
            self._training_frame(index, image, objects)

    def _telemetry(
        self, index: int, t: float, pts: int, utc: datetime, tel: dict[str, float]
    ) -> None:
        values = {k: v for k, v in tel.items() if k in misb0601.TAGS}
        klv = misb0601.encode(int(utc.timestamp() * 1_000_000), values, self.platform)
        packet = av.Packet(klv)
        assert self._klv is not None
        packet.stream = self._klv
        packet.pts = packet.dts = pts
        packet.time_base = self._video.time_base
        self._container.mux(packet)
        rec = dji_srt.SrtRecord(
            index + 1,
            t,
            t + 1.0 / self.fps,
            index + 1,
            utc,
            {
                "latitude": tel["sensor_lat_deg"],
                "longitude": tel["sensor_lon_deg"],
                "rel_alt": tel["height_above_ground_m"],
                "abs_alt": tel["sensor_alt_m"],
                "gb_yaw": (tel["platform_heading_deg"] + tel.get("sensor_rel_azimuth_deg", 0.0))
                % 360,
                "gb_pitch": tel.get("sensor_rel_elevation_deg", 0.0),
                "gb_roll": tel.get("sensor_rel_roll_deg", 0.0),
                "heading": tel["platform_heading_deg"],
            },
        )
        self._srt.append(dji_srt.format_record(rec))

    def _training_frame(
        self, index: int, image: npt.NDArray[np.uint8], objects: list[FrameTruth]
    ) -> None:
        name = f"{index:06d}"
        cv2.imwrite(
            str(self.out_dir / "images" / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92]
        )
        h, w = image.shape[:2]
        lines = []
        for o in objects:
            x1, y1, x2, y2 = o.box_xyxy
            if o.visibility < self.min_visibility or (x2 - x1) < 3 or (y2 - y1) < 3:
                continue
            cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
            lines.append(f"{DETECTOR_CLASSES.index(o.cls)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
        (self.out_dir / "labels" / f"{name}.txt").write_text(
            "\n".join(lines) + ("\n" if lines else "")
        )

    def close(self, header: dict[str, Any], events: list[dict[str, Any]]) -> Path:
        """Flush the video, write telemetry and truth; returns the truth file."""
        self._video.close()
        if self.srt_path is not None:
            self.srt_path.write_text("".join(self._srt), encoding="utf-8")
        truth = {
            **header,
            "classes": list(DETECTOR_CLASSES),
            "video": self.video_path.name,
            "srt": self.srt_path.name if self.srt_path else None,
            "events": events,
            "frames": self._frames,
        }
        path = self.out_dir / "truth.json"
        path.write_text(json.dumps(truth, separators=(",", ":")), encoding="utf-8")
        return path


def write_yolo_sample(
    root: Path,
    name: str,
    image: npt.NDArray[np.uint8],
    objects: list[FrameTruth],
    classes: tuple[str, ...],
    min_visibility: float = 0.25,
    min_px: float = 3.0,
) -> int:
    """Write `images/NAME.jpg` and `labels/NAME.txt` (YOLO: class cx cy w h, normalised).

    Objects of classes not in `classes`, less visible than `min_visibility` or smaller than
    `min_px` get no label. Returns the number of labels written.
    """
    cv2.imwrite(str(root / "images" / f"{name}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    h, w = image.shape[:2]
    lines = []
    for o in objects:
        x1, y1, x2, y2 = o.box_xyxy
        if o.cls not in classes or o.visibility < min_visibility:
            continue
        if (x2 - x1) < min_px or (y2 - y1) < min_px:
            continue
        cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        lines.append(f"{classes.index(o.cls)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
    (root / "labels" / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return len(lines)
