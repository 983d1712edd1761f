"""Lookout: a streaming sensor-fusion engine for camera and drone analytics."""

__version__ = "0.1.0"
