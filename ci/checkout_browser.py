"""Drives headless Chromium through Gazua's checkout window (see ci/checkout-browser.sh).

Chromium is spoken to over --remote-debugging-pipe (the DevTools protocol as NUL-separated JSON
on file descriptors 3 and 4), so nothing beyond the standard library is needed. Clicks are real
mouse events at the button's box, with the page's JavaScript disabled: the page must work as a
plain form. Prints PASS/FAIL lines; exits 1 on any failure.
"""

import argparse
import base64
import http.server
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

FAILED = []


def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if not ok:
        FAILED.append(what)


class Receiver(http.server.ThreadingHTTPServer):
    """The merchant's successUrl/failUrl: records each landing (path and query)."""

    def __init__(self):
        self.landings = queue.Queue()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path in ("/success", "/fail"):
                    outer.landings.put((url.path, dict(urllib.parse.parse_qsl(url.query))))
                body = b"<!doctype html><title>merchant</title><p>landed</p>"
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def base(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def next_landing(self, seconds=15):
        try:
            return self.landings.get(timeout=seconds)
        except queue.Empty:
            return None, {}


class Chromium:
    """One headless Chromium, one page, DevTools protocol over a pipe."""

    def __init__(self, profile_dir):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():
            # The protocol's fixed descriptors: 3 (commands in), 4 (answers out).
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--remote-debugging-pipe", "--user-data-dir=" + profile_dir,
                "--window-size=480,640", "about:blank",
            ],
            preexec_fn=fds,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call(
            "Target.attachToTarget", targetId=page["targetId"], flatten=True
        )["sessionId"]
        self.call("Page.enable", session=True)
        # Lifecycle events carry the loader id, so a wait can tell this navigation's load from a
        # late load event of the page before it (the receiver's landing page, say).
        self.call("Page.setLifecycleEventsEnabled", session=True, enabled=True)
        # The page must work without script: the buttons are a plain form.
        self.call("Emulation.setScriptExecutionDisabled", session=True, value=True)

    def read_message(self, deadline):
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.from_child, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, session=False, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 20
        while True:
            reply = self.read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method, seconds=15, **params):
        """The first event `method` whose params contain `params`; others stay queued."""
        deadline = time.monotonic() + seconds
        while True:
            for i, event in enumerate(self.events):
                got = event.get("params", {})
                if event.get("method") == method and all(got.get(k) == v for k, v in params.items()):
                    return self.events.pop(i)
            self.events.append(self.read_message(deadline))

    def open(self, url):
        self.events.clear()
        return self.call("Page.navigate", session=True, url=url)["loaderId"]

    def open_and_wait(self, url):
        loader = self.open(url)
        self.wait_event("Page.lifecycleEvent", name="load", loaderId=loader)

    def click(self, selector, seconds=15):
        """A real mouse click at the middle of the element's box.

        The document is looked up afresh until the element is there: a node id from a document
        that was replaced in between is refused by chromium, and that is not a failure of the page.
        """
        deadline = time.monotonic() + seconds
        while True:
            try:
                root = self.call("DOM.getDocument", session=True)["root"]["nodeId"]
                node = self.call("DOM.querySelector", session=True, nodeId=root, selector=selector)
                if node.get("nodeId"):
                    break
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("no element %s on the page" % selector)
            time.sleep(0.05)
        quad = self.call("DOM.getBoxModel", session=True, nodeId=node["nodeId"])["model"]["content"]
        x, y = (quad[0] + quad[4]) / 2, (quad[1] + quad[5]) / 2
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y,
                      button="left", clickCount=1)

    def text(self):
        root = self.call("DOM.getDocument", session=True)["root"]["nodeId"]
        return self.call("DOM.getOuterHTML", session=True, nodeId=root)["outerHTML"]

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        with open(path, "wb") as out:
            out.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def create(gazua, receiver, order_id, order_name):
    body = json.dumps({
        "method": "CARD", "amount": 15000, "orderId": order_id, "orderName": order_name,
        "successUrl": receiver.base() + "/success", "failUrl": receiver.base() + "/fail",
    }).encode()
    request = urllib.request.Request(gazua + "/v1/payments", data=body,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        payment = json.load(answer)
    return payment["paymentKey"], payment["checkout"]["url"]


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--gazua", required=True)
    args.add_argument("--profile-dir", default=None)
    args.add_argument("--screenshot", required=True)
    args = args.parse_args()

    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    browser = Chromium(args.profile_dir or tempfile.mkdtemp())
    try:
        # pay: the page, its screenshot, then a click on "pay".
        key, url = create(args.gazua, receiver, "browser-pay-1", "Gazua 티셔츠 외 2건")
        check(url.startswith(args.gazua + "/v1/payments/"), "checkout.url is on gazua: " + url)
        browser.open_and_wait(url)
        html = browser.text()
        check("15,000원" in html and "Gazua 티셔츠 외 2건" in html, "page shows amount and order name")
        browser.screenshot(args.screenshot)
        print("screenshot: " + args.screenshot, flush=True)
        browser.click("#pay")
        path, query = receiver.next_landing()
        check(path == "/success", "pay lands on successUrl (got %s)" % path)
        check(query.get("paymentKey") == key and query.get("orderId") == "browser-pay-1"
              and query.get("amount") == "15000",
              "successUrl query has paymentKey, orderId, amount: %s" % query)

        # decline: the key's tag declines the card.
        _, url = create(args.gazua, receiver, "browser-decline-1",
                        "티셔츠 [gazua: outcome=declined]")
        browser.open_and_wait(url)
        browser.click("#pay")
        path, query = receiver.next_landing()
        check(path == "/fail" and query.get("code") == "REJECT_CARD_COMPANY"
              and query.get("orderId") == "browser-decline-1" and query.get("message"),
              "declined lands on failUrl with REJECT_CARD_COMPANY: %s %s" % (path, query))

        # cancel.
        _, url = create(args.gazua, receiver, "browser-cancel-1", "티셔츠")
        browser.open_and_wait(url)
        browser.click("#cancel")
        path, query = receiver.next_landing()
        check(path == "/fail" and query.get("code") == "PAY_PROCESS_CANCELED",
              "cancel lands on failUrl with PAY_PROCESS_CANCELED: %s %s" % (path, query))

        # auto=1: no click at all, after the decided latency.
        key, url = create(args.gazua, receiver, "browser-auto-1",
                          "티셔츠 [gazua: latency=200ms]")
        started = time.monotonic()
        browser.open(url + "&auto=1")
        path, query = receiver.next_landing()
        took = time.monotonic() - started
        check(path == "/success" and query.get("paymentKey") == key,
              "auto=1 lands on successUrl without a click: %s %s" % (path, query))
        check(took >= 0.2, "auto=1 waited the decided 200ms (%.3fs)" % took)
    finally:
        browser.close()
        receiver.shutdown()
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
