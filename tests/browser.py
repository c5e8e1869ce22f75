"""A real headless Chromium driven over the DevTools protocol, through a pipe
(`--remote-debugging-pipe`: NUL-terminated JSON on descriptors 3 and 4), so the tests need no
WebSocket client and no browser download: Debian's `chromium` is the browser."""
from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


class Browser:
    def __init__(self, profile: Path, timeout: float = 60.0):
        self.timeout = timeout
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def descriptors():          # in the child: its 3 reads our commands, its 4 carries the answers
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=descriptors, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf, self._id, self.session = b"", 0, None
        page = next(t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]

    def send(self, method: str, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _next(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buf:
            if not select.select([self._from_chrome], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise EOFError("chromium exited")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def open(self, url: str) -> None:
        """Load a page and wait until it has loaded."""
        self.send("Page.enable")
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + self.timeout
        while self.send("Runtime.evaluate", expression="document.readyState")["result"]["value"] != "complete":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load")
            time.sleep(0.05)

    def fonts_for(self, selector: str) -> dict[str, int]:
        """The fonts the browser really drew the element's own text with: family -> glyphs."""
        self.send("DOM.enable")
        self.send("CSS.enable")
        root = self.send("DOM.getDocument")["root"]["nodeId"]
        node = self.send("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        assert node, f"no element matches {selector!r}"
        fonts = self.send("CSS.getPlatformFontsForNode", nodeId=node)["fonts"]
        return {f["familyName"]: f["glyphCount"] for f in fonts}

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, EOFError, TimeoutError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- driving a page: scripts, keys, screenshots (the review app's tests) ---------------------------
def evaluate(browser: Browser, expression: str):
    """The value of a JavaScript expression in the page (a promise is awaited); its exception raised."""
    reply = browser.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
    if "exceptionDetails" in reply:
        raise RuntimeError(f"{expression!r} threw: {reply['exceptionDetails'].get('exception', reply['exceptionDetails'])}")
    return reply["result"].get("value")


def wait_for(browser: Browser, expression: str, timeout: float = 15.0):
    """Poll a JavaScript expression until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = evaluate(browser, expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still falsy after {timeout} s: {expression}")
        time.sleep(0.05)


# DevTools key events need the key, its physical code and the Windows virtual key code.
_KEYS = {"Enter": ("Enter", 13, "\r"), "Escape": ("Escape", 27, ""), "ArrowDown": ("ArrowDown", 40, ""),
         "ArrowUp": ("ArrowUp", 38, "")}


def press(browser: Browser, key: str, shift: bool = False) -> None:
    """A real key press, as the keyboard gives it: a letter, a digit (with Shift: the digit's key,
    its `code` DigitN), or Enter, Escape, ArrowDown, ArrowUp."""
    if key in _KEYS:
        code, vk, text = _KEYS[key]
    elif key.isdigit():
        code, vk, text = f"Digit{key}", ord(key), "" if shift else key
    else:
        code, vk, text = f"Key{key.upper()}", ord(key.upper()), key.upper() if shift else key
    event = dict(key=key if not (shift and key.isalpha()) else key.upper(), code=code, windowsVirtualKeyCode=vk,
                 nativeVirtualKeyCode=vk, modifiers=8 if shift else 0)
    browser.send("Input.dispatchKeyEvent", type="keyDown" if text else "rawKeyDown", text=text, **event)
    browser.send("Input.dispatchKeyEvent", type="keyUp", **event)


def type_text(browser: Browser, text: str) -> None:
    """Text typed into the focused box."""
    browser.send("Input.insertText", text=text)


def screenshot(browser: Browser, path: Path, width: int = 1280, height: int = 900) -> None:
    """A PNG of the page as a window of this size shows it."""
    import base64
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
    Path(path).write_bytes(base64.b64decode(browser.send("Page.captureScreenshot", format="png")["data"]))
