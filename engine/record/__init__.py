"""Recording: annotated video of what the engine saw and flagged."""

from engine.record.annotated_video import AnnotatedVideo, annotate

__all__ = ["AnnotatedVideo", "annotate"]
