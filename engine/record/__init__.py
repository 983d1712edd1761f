"""Recording: annotated video of what the engine saw and flagged, clips around incidents, and
the one H.264 writer both (and the simulator) use."""

from engine.record.annotated_video import AnnotatedVideo, annotate

__all__ = ["AnnotatedVideo", "annotate"]
