"""Consoles for people: a web page that shows the alert stream live."""

from engine.console.web import WebConsole

__all__ = ["WebConsole"]
