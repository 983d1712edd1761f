"""The runtime: the only package that starts threads and knows every stage."""

from engine.runtime.publisher import RunReport
from engine.runtime.runner import Runner

__all__ = ["RunReport", "Runner"]
