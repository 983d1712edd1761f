"""Credentials out of every message: URLs with user:password, and secret query parameters.

One function, used for every log record (the CLI installs `RedactingFilter` on its handlers),
error message, health event, alert and journal row. It assumes the worst of a password: any
printable character but whitespace, `@ / : ? # %` included. The userinfo of a URL is therefore
everything between `scheme://` and the *last* `@` of the URL that a host follows; when in doubt
more is hidden, never less. A query (or `name=value`) parameter whose name looks like a secret
(token, key, secret, pass, pwd, auth, sig, session, credential, ...: `access_token`, `api_key`,
`X-Amz-Signature` ...) keeps its name and loses its value, as do `Bearer`/`Basic` credentials.

>>> redact("cannot open rtsp://admin:hunter2@10.0.0.5:554/stream1?token=abc&ch=1")
'cannot open rtsp://***@10.0.0.5:554/stream1?token=***&ch=1'
>>> redact("rtsp://admin:p@ss/w:rd@cam.local/live?X-Amz-Signature=f00&q=1")
'rtsp://***@cam.local/live?X-Amz-Signature=***&q=1'
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["SECRET_WORDS", "RedactingFilter", "redact", "redact_value", "strip_userinfo"]

MASK = "***"
# A parameter whose name contains one of these (any case) holds a secret.
SECRET_WORDS = (
    "token",
    "key",
    "secret",
    "pass",
    "pwd",
    "auth",
    "sig",
    "session",
    "credential",
    "cred",
    "jwt",
    "bearer",
    "cookie",
    "otp",
    "private",
)

# A URL runs from its scheme to the next whitespace: a password may hold any other character.
# The scheme's length is bounded: unbounded, every letter of a long word would start a scan to
# its end (quadratic: a 64 KiB line took minutes); a longer one is matched by its last part.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}://\S*")
# What may follow the userinfo's '@': a host name, IPv4 or [IPv6], an optional port, then the
# end of the host part (anything that cannot be in a host).
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9._~%-]+)(?::[0-9]*)?(?=[^A-Za-z0-9._~%:@-]|$)")
_WORDS = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)
# A parameter's name: the run of name characters after a separator (or at the start), taken
# whole (possessive: no backtracking), then its value. Which names hold secrets is decided on
# the run afterwards, so each character is looked at a bounded number of times: a pattern
# with the words inside the run backtracked over every start of a long run (quadratic, minutes
# for 16 KiB of '(' in a log line).
_NAME = re.compile(r"(?:^|(?<=[?&;#\s,({\[\"']))[^=&;?#\s,\"']*+")
_VALUE = re.compile(r"[^&;#\s,\"']+")
_SCHEME_CREDENTIAL = re.compile(r"\b(?P<scheme>Bearer|Basic|Digest)\s+[A-Za-z0-9._~+/=-]{6,}")


def _userinfo_end(url: str, start: int) -> int:
    """Index of the '@' that ends the userinfo of `url` (its authority begins at `start`), or
    -1 when it has none: the last '@' a host follows, else the last '@' of all."""
    at = url.rfind("@", start)
    last = at
    while at >= start:
        if _HOST.match(url, at + 1):
            return at
        at = url.rfind("@", start, at)
    return last


def _redact_url(match: re.Match[str]) -> str:
    url = match.group(0)
    start = url.index("://") + 3
    end = _userinfo_end(url, start)
    if end < 0:
        return url
    return url[:start] + MASK + url[end:]


def redact(text: str) -> str:
    """`text` with URL credentials and secret parameter values replaced by ***.

    Args:
        text: any message: a log line, an error, a reason, a repr of a config value.

    Returns:
        The same text, with the userinfo of every `scheme://user:password@host` URL, the value
        of every parameter named like a secret and `Bearer`/`Basic` credentials masked.
    """
    if not text:
        return text
    text = _URL.sub(_redact_url, text)
    text = _redact_params(text)
    return _SCHEME_CREDENTIAL.sub(lambda m: m.group("scheme") + " " + MASK, text)


def redact_value(value: Any) -> Any:
    """`value` with every string in it (dict values and keys, list items) redacted; other
    values as they are. For JSON-ready data such as a health event's attributes."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def _redact_params(text: str) -> str:
    """`text` with the value of every `name=value` whose name holds a secret word masked."""
    out: list[str] = []
    done = pos = 0  # text[:done] is in `out`; the next name starts at or after `pos`
    while (name := _NAME.search(text, pos)) is not None:
        end = name.end()
        if end >= len(text):
            break
        secret = text[end] == "=" and _WORDS.search(name.group(0)) is not None
        value = _VALUE.match(text, end + 1) if secret else None  # (read only when masked)
        if value is None:
            # a later start inside this run sees a part of it: no other name (nor value) there
            pos = end + 1 if end > name.start() else name.start() + 1
            continue
        out += (text[done : end + 1], MASK)
        done = pos = value.end()
    out.append(text[done:])
    return "".join(out)


def strip_userinfo(url: str) -> str:
    """`url` without its userinfo at all (`rtsp://u:p@host/x` -> `rtsp://host/x`): what names
    may be derived from."""
    m = _URL.match(url)
    if m is None:
        return url
    start = url.index("://") + 3
    end = _userinfo_end(url, start)
    return url if end < 0 else url[:start] + url[end + 1 :]


class RedactingFilter(logging.Filter):
    """A handler filter that redacts every record: message, arguments and traceback.

    Install it on handlers (not loggers: a logger's filters skip records of its children):

        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactingFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log what there is, redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
