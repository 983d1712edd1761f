"""Batching across streams: frames from several sources go through the detector in one call.

Source threads hand their frames to `detect` and wait; one inference thread takes up to
`max_batch` waiting images (waiting at most `max_wait_ms` for more once the first arrived), runs
them in one call (for models with a dynamic batch axis), and hands each source its detections.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from engine.detect import OnnxDetector
from engine.errors import ModelError
from engine.types import Detections

__all__ = ["InferenceBatcher"]


@dataclass
class _Request:
    images: list[npt.NDArray[np.uint8]]
    done: Future[list[Detections]] = field(default_factory=Future)


class InferenceBatcher:
    """One inference thread serving many source threads, from `start` until `close`.

    Args:
        detector: the shared detector.
        max_batch: images per call at most.
        max_wait_ms: how long a first image waits for company.
    """

    def __init__(self, detector: OnnxDetector, max_batch: int, max_wait_ms: float) -> None:
        self.detector = detector
        self.max_batch = max_batch if detector.info.batch_dynamic else 1
        self.max_wait_s = max_wait_ms / 1000
        self.calls = 0
        self.images = 0
        self._closed = False
        self._requests: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="lookout-inference", daemon=True)

    def start(self) -> None:
        """Start the inference thread (once)."""
        if self._thread.ident is None and not self._closed:
            self._thread.start()

    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detections for these images (blocks until their batch ran); errors re-raised here.

        Raises:
            ModelError: the batcher was closed (the run is ending).
        """
        if self._closed:
            raise ModelError("inference stopped: the engine is shutting down")
        if self._thread.ident is None:
            raise ModelError("inference not started (InferenceBatcher.start)")
        req = _Request(images)
        self._requests.put(req)
        while True:
            try:
                return req.done.result(timeout=1.0)
            except TimeoutError:
                if self._closed and not self._thread.is_alive():
                    raise ModelError("inference stopped: the engine is shutting down") from None

    def pending(self) -> int:
        """Requests waiting for the inference thread."""
        return self._requests.qsize()

    def close(self) -> None:
        """Stop the inference thread once the waiting requests are served (joined for at most
        10 s). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._requests.put(None)
        if self._thread.ident is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while True:
            first = self._requests.get()
            if first is None:
                return
            batch = [first]
            count = len(first.images)
            deadline = time.monotonic() + self.max_wait_s
            stop = False
            while count < self.max_batch:
                try:
                    nxt = self._requests.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                count += len(nxt.images)
            self._serve(batch)
            if stop:
                return

    def _serve(self, batch: list[_Request]) -> None:
        images = [im for r in batch for im in r.images]
        try:
            dets = self.detector.detect_images(images)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].done.set_exception(exc)
                return
            # one source's frame may be the culprit: each request alone, so only it fails
            for r in batch:
                self._serve([r])
            return
        self.calls += 1
        self.images += len(images)
        k = 0
        for r in batch:
            r.done.set_result(dets[k : k + len(r.images)])
            k += len(r.images)
