"""Track log: each frame's tracks of one source as a JSON line, beside its annotated video.

One line per frame: `{"source", "seq", "pts_s", "tracks": [{"id", "label", "score",
"box_xyxy"}]}`. It says what the operator saw boxed, in a form a script can score against
ground truth or replay (the demo writes one per source; `lookout demo` users diff two models).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO

from engine.errors import PublishError
from engine.types import Frame, Tracks

__all__ = ["TrackLog"]


class TrackLog:
    """Appends one source's tracks per frame to a JSONL file (thread-safe).

    Raises:
        PublishError: the file cannot be written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise PublishError(f"cannot write track log {path}: {exc.strerror}") from None

    def add(self, frame: Frame, tracks: Tracks) -> None:
        """Write the frame's tracks as one line."""
        rows = [
            {"id": int(tid), "label": label, "score": round(float(s), 3), "box_xyxy": box}
            for tid, label, s, box in zip(
                tracks.track_id.tolist(),
                tracks.labels(),
                tracks.score.tolist(),
                tracks.xyxy.round(1).tolist(),
                strict=True,
            )
        ]
        line = {"source": frame.source_id, "seq": frame.seq, "pts_s": frame.pts_s, "tracks": rows}
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.write(json.dumps(line) + "\n")
            except OSError as exc:
                raise PublishError(f"cannot write track log {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        """Flush and close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
