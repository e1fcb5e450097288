"""Shared fixtures: a CLI runner, copies of the fixture trees, and a content-tree builder."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

HERE = Path(__file__).parent
REPO = HERE.parent
FIXTURES = HERE / "fixtures"


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def minimal(tmp_path) -> Path:
    """A writable copy of tests/fixtures/minimal (a small, valid knowledge base)."""
    root = tmp_path / "kb"
    shutil.copytree(FIXTURES / "minimal", root, ignore=shutil.ignore_patterns(".kb"))
    return root


@pytest.fixture
def make_content(tmp_path):
    """Write ``{relative path: text}`` under a fresh root and return the root."""
    def make(files: dict[str, str]) -> Path:
        root = tmp_path / "made"
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return root
    return make


# -- headless Chromium, driven over the DevTools protocol (no WebDriver) -----------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars"]


def chromium_path() -> str | None:
    return next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome"))
                 if p), None)


class DevTools:
    """The smallest Chrome DevTools Protocol client: send a command, wait for its answer."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"].get("text"), expression[:200])
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 45.0):  # generous: CI shares 2 cores
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")

    def open(self, url: str, width: int = 1280, height: int = 900, mobile: bool = False) -> None:
        """Load ``url`` in a ``width`` x ``height`` viewport and wait until it has loaded."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=mobile)
        self.js("window.kbStalePage = true")  # so a reload of the same URL is not mistaken for done
        self.call("Page.navigate", url=url)
        self.wait_for(f"!window.kbStalePage && location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        import base64

        params = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            w, h = self.js("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": w, "height": min(h, 6000), "scale": 1}
        Path(path).write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))


class Chromium:
    """One headless Chromium in its own process group, with one page target driven by :class:`DevTools`."""

    def __init__(self, profile: Path):
        import urllib.request

        browser = chromium_path()
        self.proc = subprocess.Popen([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                      "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port_file = profile / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                assert self.proc.poll() is None and time.monotonic() < deadline, "chromium did not start"
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
            page = next(t for t in targets if t["type"] == "page")
            self.page = DevTools(page["webSocketDebuggerUrl"])
            self.page.call("Page.enable")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if getattr(self, "page", None) is not None:
            self.page.ws.close()
        os.killpg(self.proc.pid, signal.SIGTERM)  # the browser's helpers too (its own process group)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """One headless Chromium per test module (browser tests are the slowest: share it); skips without one."""
    if chromium_path() is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    pytest.importorskip("websocket", reason="websocket-client is a test dependency (pip install -e '.[test]')")
    browser = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield browser
    finally:
        browser.close()
