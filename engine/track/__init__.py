"""Multi-object tracking: identities that persist across the frames of one source."""

from engine.track.bytetrack import ByteTracker, iou_matrix

__all__ = ["ByteTracker", "iou_matrix"]
