"""The runtime: the only package that starts threads and knows every stage."""

from engine.runtime.runner import Runner, RunReport

__all__ = ["RunReport", "Runner"]
