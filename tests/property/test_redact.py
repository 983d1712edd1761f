"""Redaction against generated credential URLs: whatever a password holds (`@ / : ? # %`
included) and whatever text surrounds the URL, the password never survives and the host does."""

from __future__ import annotations

import json
import logging
import string

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from engine.alerts.wire import alert_body
from engine.redact import RedactingFilter, redact, strip_userinfo
from engine.types import Alert, HealthEvent

# Printable, no whitespace (whitespace ends a URL in text), and never '*' (the mask itself).
PASSWORD_CHARS = "".join(c for c in string.printable if not c.isspace() and c != "*")
# Text around the URL: ends at whitespace on both sides, as URLs in messages do.
AROUND = st.text(alphabet=string.ascii_letters + string.digits + " .,;:()[]'\"=", max_size=30)
HOSTS = st.one_of(
    st.from_regex(r"\A[a-z][a-z0-9-]{2,12}(\.[a-z][a-z0-9-]{2,8}){0,2}\Z"),
    st.tuples(*[st.integers(1, 254)] * 4).map(lambda t: ".".join(map(str, t))),
    st.just("[fd00::17]"),
)
PATHS = st.from_regex(r"\A(/[A-Za-z0-9._-]{1,10}){0,3}\Z")
SECRET_NAMES = st.sampled_from(
    [
        "access_token",
        "apikey",
        "api_key",
        "token",
        "auth",
        "sig",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "password",
        "PWD",
        "sessionid",
        "client_secret",
        "Key",
        "passphrase",
    ]
)


def _strong(secret: str) -> bool:
    """Long and varied enough that finding it by chance in the rest of the text is not a
    false alarm (a one-letter password occurs in any host name)."""
    return len(secret) >= 6 and len(set(secret)) >= 3


@settings(max_examples=400, deadline=None)
@given(
    user=st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=12),
    password=st.text(alphabet=PASSWORD_CHARS, min_size=6, max_size=30).filter(_strong),
    host=HOSTS,
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=PATHS,
    scheme=st.sampled_from(["rtsp", "rtsps", "http", "https", "udp", "srt"]),
    before=AROUND,
    after=AROUND,
)
@example("admin", "hunter2@x", "127.0.0.1", 9, "", "rtsp", "cannot open", ": refused")
@example("admin", "p@ss/w0rd:x?y#z%40", "cam.local", 554, "/live", "rtsp", "lost", "")
@example("admin", "@@//::", "cam", None, "/a", "rtsp", "", "")
def test_a_password_never_survives_and_the_host_does(
    user: str,
    password: str,
    host: str,
    port: int | None,
    path: str,
    scheme: str,
    before: str,
    after: str,
) -> None:
    authority = host + (f":{port}" if port is not None else "")
    url = f"{scheme}://{user}:{password}@{authority}{path}"
    text = f"{before} {url} {after}"
    # a correct redaction leaves no copy of it elsewhere (in the scheme, user, host or text)
    assume(password not in text.replace(f"{user}:{password}@", "***@"))
    out = redact(text)
    assert password not in out
    assert authority in out
    assert password not in strip_userinfo(url) and authority in strip_userinfo(url)


@settings(max_examples=200, deadline=None)
@given(
    name=SECRET_NAMES,
    value=st.text(
        alphabet=string.ascii_letters + string.digits + "-_.~%+/=", min_size=8, max_size=40
    ).filter(_strong),
    host=HOSTS,
    other=st.from_regex(r"\A[a-z]{1,6}=[a-z0-9]{1,6}\Z"),
)
def test_a_query_parameter_named_like_a_secret_loses_its_value(
    name: str, value: str, host: str, other: str
) -> None:
    url = f"https://{host}/video?{other}&{name}={value}&{other}"
    text = f"GET {url} failed"
    assume(value not in text.replace(f"{name}={value}", f"{name}=***"))
    out = redact(text)
    assert value not in out
    assert f"{name}=***" in out and host in out and other in out


def test_plain_urls_and_text_stay_as_they_are() -> None:
    for text in (
        "rtsp://10.0.0.5:554/stream1?ch=1&subtype=0",
        "frames from cam.local/live",
        "udp://127.0.0.1:5600?pkt_size=1316",
        "mail ops@example.com",
    ):
        assert redact(text) == text


def test_bearer_and_basic_credentials_are_masked() -> None:
    out = redact("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc and Basic YWRtaW46aHVudGVy")
    assert "eyJhbGci" not in out and "YWRtaW46" not in out


def test_the_log_filter_redacts_messages_arguments_and_tracebacks() -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "lost %s", ("rtsp://a:s3cret@h/",), None
    )
    try:
        raise ValueError("cannot open rtsp://a:s3cret@h/ ?token=t0ken")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "s3cret" not in text and "t0ken" not in text and "rtsp://***@h/" in text


def test_a_long_hostile_line_is_redacted_in_linear_time() -> None:
    """Every log record goes through `redact`, on the thread that logs it (the web console's
    event loop, for a request line a client sent). Before, the parameter pattern backtracked
    over every start of a long run and the URL pattern over every letter of a long word:
    64 KiB of '(' took minutes of CPU, 256 KiB of letters several. The bound below is ~100x
    what a loaded machine needs now and far below what those took."""
    import time

    hostile = [
        "(" * 65536,
        "x" * 262144,
        "(tok=" * 20000,
        "a=(token=b" * 10000,
        "rtsp://a@" * 10000,
    ]
    started = time.process_time()
    for text in hostile:
        redact(text)
    assert time.process_time() - started < 5.0
    assert redact("(" * 1000 + "token=s3cretvalue") == "(" * 1000 + "token=***"
    assert redact("x" * 100 + "://admin:s3cret@cam/") == "x" * 100 + "://***@cam/"


@settings(max_examples=100, deadline=None)
@given(
    password=st.text(alphabet=PASSWORD_CHARS, min_size=6, max_size=30).filter(_strong),
    host=HOSTS,
)
def test_a_health_event_on_the_wire_carries_no_credential(password: str, host: str) -> None:
    """Whoever made a health event (a source, a sink, a hook), its reason and attributes reach
    alerts, the journal and alert files only through `alert_body`, which redacts them."""
    url = f"rtsp://admin:{password}@{host}:554/live"
    assume(password not in f"cannot open rtsp://***@{host}:554/live: refused")
    event = HealthEvent(
        "source.offline",
        "cam1",
        0,
        f"cannot open {url}: refused",
        {"url": url, "tries": [{"last": url}], "n": 3},
    )
    alert = Alert(event, "health.site.cam1.", 1, "epoch", "2026-12-01T00:00:00Z", "site")
    data = json.loads(alert_body(alert))["data"]
    carried = data["reason"] + json.dumps(data["attributes"])
    assert password not in carried and host in carried
    assert data["attributes"]["n"] == 3
