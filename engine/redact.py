"""Credentials out of every message: URLs with user:password, and secret query parameters.

>>> redact("cannot open rtsp://admin:hunter2@10.0.0.5:554/stream1?token=abc&ch=1")
'cannot open rtsp://***@10.0.0.5:554/stream1?token=***&ch=1'
"""

from __future__ import annotations

import re

__all__ = ["redact"]

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|pass|token|key|secret|auth|signature)=)[^&;\s]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with URL credentials and secret query values replaced by ***."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    return _SECRET_PARAM.sub(r"\g<key>***", text)
