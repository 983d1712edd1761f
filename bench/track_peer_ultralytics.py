"""Ultralytics' BYTETracker on the bench's detections, in an interpreter that has ultralytics.

    python bench/track_peer_ultralytics.py JOB.json OUT.json

Standalone (it runs where torch is, not Lookout): reads the sequences and the speed sequence
that `lookout bench track` wrote, writes each frame's (ids, boxes) and ms per update. Settings:
Ultralytics' own bytetrack.yaml defaults.
"""

from __future__ import annotations

import json
import sys
import time
from argparse import Namespace

import numpy as np


class Boxes:
    """The slice of ultralytics' Boxes that BYTETracker reads."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray) -> None:
        self.xyxy = xyxy.reshape(-1, 4).astype(np.float32)
        self.conf = conf.astype(np.float32)
        self.cls = np.zeros(len(conf), np.float32)
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        self.xywh = np.concatenate([self.xyxy[:, :2] + wh / 2, wh], 1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, idx: np.ndarray) -> Boxes:
        return Boxes(self.xyxy[idx], self.conf[idx])


def track(seq: list, fps: float) -> list:
    from ultralytics.trackers.byte_tracker import BYTETracker

    # track_buffer is in frames: one second, as the others
    args = Namespace(
        track_high_thresh=0.25,
        track_low_thresh=0.1,
        new_track_thresh=0.25,
        track_buffer=round(fps),
        match_thresh=0.8,
        fuse_score=True,
    )
    tracker = BYTETracker(args)
    out = []
    for boxes, scores in seq:
        r = tracker.update(Boxes(np.asarray(boxes, np.float32), np.asarray(scores, np.float32)))
        r = np.asarray(r).reshape(-1, 8) if len(r) else np.zeros((0, 8))
        out.append([r[:, 4].astype(int).tolist(), r[:, :4].tolist()])
    return out


def main() -> None:
    with open(sys.argv[1]) as fh:
        job = json.load(fh)
    seqs = [track(s["dets"], s["fps"]) for s in job["sequences"]]
    track(job["speed"][:20], 30.0)
    t0 = time.perf_counter()
    track(job["speed"], 30.0)
    ms = (time.perf_counter() - t0) / len(job["speed"]) * 1000
    with open(sys.argv[2], "w") as fh:
        json.dump({"sequences": seqs, "ms_per_update": ms}, fh)


if __name__ == "__main__":
    main()
