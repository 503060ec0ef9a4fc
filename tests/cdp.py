"""A small Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (standard library
only): starts Debian's headless ``chromium``, opens a page, evaluates script, clicks with
real mouse events, records every network request, console message, uncaught exception and
dialog, and takes screenshots.  Used by the browser tests of the HTML report."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from typing import Any, Optional

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]


def find_chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page (a fresh profile in a temporary directory)."""

    def __init__(self, exe: str, width: int = 1280, height: int = 800) -> None:
        self.profile = tempfile.mkdtemp(prefix="caffemem-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        # the child gets them as fds 3 and 4 (what --remote-debugging-pipe reads and writes);
        # moved clear of those numbers first so that the two dup2() cannot clobber each other
        high_r, high_w = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 5), fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 5)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        to_chrome_r, from_chrome_w = high_r, high_w

        def child_fds() -> None:
            os.dup2(to_chrome_r, 3, inheritable=True)
            os.dup2(from_chrome_w, 4, inheritable=True)

        cmd = [exe, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"]
        with open(os.path.join(self.profile, "stderr.txt"), "wb") as err:
            self.proc = subprocess.Popen(cmd, pass_fds=(3, 4), preexec_fn=child_fds,
                                         stdout=subprocess.DEVNULL, stderr=err)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.page(f"{domain}.enable")
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    # -- protocol -------------------------------------------------------------------------
    def _send(self, msg: dict) -> None:
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self._w, data)
            data = data[n:]

    def _read(self, timeout: float) -> Optional[dict]:
        end = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._r], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise CDPError("chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: Optional[str] = None, timeout: float = 30, **params) -> dict:
        self._id += 1
        mid = self._id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self._send(msg)
        end = time.monotonic() + timeout
        while True:
            got = self._read(max(0.0, end - time.monotonic()))
            if got is None:
                raise CDPError(f"{method}: no answer in {timeout} s")
            if got.get("id") == mid:
                if "error" in got:
                    raise CDPError(f"{method}: {got['error']}")
                return got.get("result", {})
            self._event(got)

    def _event(self, ev: dict) -> None:
        self.events.append(ev)
        if ev.get("method") == "Page.javascriptDialogOpening":
            self._id += 1
            self._send({"id": self._id, "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": False}, "sessionId": self.session})

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            got = self._read(end - time.monotonic())
            if got is None:
                break
            if "id" not in got:
                self._event(got)

    # -- helpers --------------------------------------------------------------------------
    def eval(self, expression: str) -> Any:
        r = self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise CDPError(f"{expression[:80]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def open(self, url: str, timeout: float = 20) -> float:
        """Navigate and wait for ``window.__caffememReady``; seconds from navigation."""
        self.events.clear()
        start = time.monotonic()
        self.page("Page.navigate", url=url)
        while time.monotonic() - start < timeout:
            if self.eval("window.__caffememReady === true"):
                return time.monotonic() - start
            self.pump(0.01)
        raise CDPError(f"{url}: not ready in {timeout} s ({self.eval('window.__caffememError || null')})")

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element (scrolled into view first)."""
        box = self.eval(f"""(function(){{var e=document.querySelector({json.dumps(selector)});
            if(!e) return null; e.scrollIntoView({{block:'center',inline:'center'}});
            var r=e.getBoundingClientRect(); return [r.left+r.width/2, r.top+r.height/2];}})()""")
        if box is None:
            raise CDPError(f"no element {selector}")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def key(self, key: str, code: str = "", text: str = "") -> None:
        for kind in ("keyDown", "keyUp"):
            params = {"type": kind, "key": key, "code": code or key}
            if text and kind == "keyDown":
                params["text"] = text
            if key == "Enter":
                params["windowsVirtualKeyCode"] = 13
            self.page("Input.dispatchKeyEvent", **params)

    def screenshot(self, path: str, full: bool = False) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full:
            params["captureBeyondViewport"] = True
        data = self.page("Page.captureScreenshot", **params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, log errors, dialogs."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}")
            elif m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('exception', {}).get('description') or p['exceptionDetails'].get('text')}")
            elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Page.javascriptDialogOpening":
                out.append(f"dialog: {p.get('type')} {p.get('message')}")
        return out

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        if not os.environ.get("CAFFEMEM_KEEP_PROFILE"):
            shutil.rmtree(self.profile, ignore_errors=True)
