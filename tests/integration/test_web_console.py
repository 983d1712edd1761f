"""The web console in a real headless Chromium: after logging in through the page, an alert
published by the engine appears on the page within 1 s (Debian packages chromium and
chromium-driver; skipped where absent)."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import LOOKOUT, free_port

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    not (CHROMEDRIVER and CHROMIUM), reason="chromium and chromium-driver not installed"
)


def _browser() -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)


def test_an_engine_alert_appears_on_the_web_page_within_a_second(tmp_path: Path) -> None:
    import zmq
    from selenium.webdriver.common.by import By

    from engine.alerts import AlertStamper, ZmqPublisher
    from engine.config import ZmqOutputConfig
    from tests.support.alert_load import load_event

    endpoint, replay, port = (
        f"tcp://127.0.0.1:{free_port()}",
        f"tcp://127.0.0.1:{free_port()}",
        free_port(),
    )
    ctx = zmq.Context()
    stamper = AlertStamper("station")
    pub = ZmqPublisher(
        ZmqOutputConfig(
            endpoint=endpoint, replay_endpoint=replay, journal=tmp_path / "j.db", wait_subscribers=1
        ),
        ctx,
        stamper.epoch,
        "station",
    )
    pub.start()
    from engine.console.auth import hash_password

    password_file = tmp_path / "console.pass"
    password_file.write_text(hash_password("correct horse battery") + "\n")
    cmd = [
        *LOOKOUT,
        "console",
        "--web",
        endpoint,
        "--replay",
        replay,
        "--port",
        str(port),
        "--password-file",
        str(password_file),
    ]
    console = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    browser = _browser()
    try:
        deadline = time.monotonic() + 20
        while True:  # the console serves its page
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            except OSError:
                assert time.monotonic() < deadline and console.poll() is None, "no web console"
                time.sleep(0.2)
        assert b"<title>Lookout console: log in</title>" in page  # no session: the login
        browser.get(f"http://127.0.0.1:{port}/")  # type: ignore[attr-defined]
        browser.find_element(By.ID, "password").send_keys("correct horse battery")  # type: ignore[attr-defined]
        browser.find_element(By.ID, "submit").click()  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while [e.text for e in browser.find_elements(By.ID, "status")] != ["live"]:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the page's WebSocket never connected"
            time.sleep(0.05)
        assert pub.wait_for_subscribers()  # the console's relay subscribed
        time.sleep(0.3)
        alert = stamper.stamp(load_event(1))
        sent_ms = time.time() * 1000
        pub.send_many([alert])
        row_id = f"alert-{alert.epoch}-{alert.seq}"
        deadline = time.monotonic() + 5
        while not browser.find_elements(By.ID, row_id):  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the alert never appeared on the page"
            time.sleep(0.01)
        row = browser.find_element(By.ID, row_id)  # type: ignore[attr-defined]
        shown_ms = float(row.get_attribute("data-received-ms"))
        print(f"web console: shown {shown_ms - sent_ms:.0f} ms after publishing")
        assert shown_ms - sent_ms < 1000, f"shown {shown_ms - sent_ms:.0f} ms after publishing"
        assert "load start" in row.text and "1× person" in row.text
        assert browser.find_element(By.ID, "count").text == "1"  # type: ignore[attr-defined]
    finally:
        browser.quit()  # type: ignore[attr-defined]
        console.terminate()
        console.wait(10)
        pub.close()
        ctx.term()
    assert console.returncode == 0, console.stderr.read() if console.stderr else ""
