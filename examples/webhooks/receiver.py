#!/usr/bin/env python3
"""A webhook receiver for Cashier: checks each delivery's signature and timestamp, drops
duplicates by event id, and prints each event.

Usage:
    CASHIER_WEBHOOK_SECRET=whsec_... python3 receiver.py [--port 8080] [--host 127.0.0.1]

Register it with the server first (the secret is printed once):
    cashier webhook add http://127.0.0.1:8080/ --webhook-allow-private

Python 3.8+, standard library only.
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock

TOLERANCE = 300  # seconds: an older (or far future) timestamp is a replay, or a bad clock
MAX_BODY = 1 << 20
REMEMBER = 10_000  # event ids kept for dropping duplicates


def verify(secret, header, body, now=None):
    """None if `header` ("t=<unix>,v1=<hex>") signs `body` with `secret`, else the reason."""
    now = int(time.time()) if now is None else now
    fields = [part.strip().split("=", 1) for part in (header or "").split(",")]
    stamps = [v for k, v in (f for f in fields if len(f) == 2) if k == "t"]
    macs = [v for k, v in (f for f in fields if len(f) == 2) if k == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not macs:
        return "malformed signature header"
    t = int(stamps[0])
    if abs(now - t) > TOLERANCE:
        return "stale timestamp"
    signed = stamps[0].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, mac) for mac in macs):
        return "bad signature"
    return None


class Seen:
    """The event ids already handled (the newest REMEMBER of them)."""

    def __init__(self):
        self.ids = OrderedDict()
        self.lock = Lock()

    def first_time(self, event_id):
        with self.lock:
            if event_id in self.ids:
                return False
            self.ids[event_id] = True
            if len(self.ids) > REMEMBER:
                self.ids.popitem(last=False)
            return True


def handler(secret, seen):
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self.reply(413, "too large")
            body = self.rfile.read(length)
            refused = verify(secret, self.headers.get("Cashier-Signature"), body)
            if refused:
                print(f"refused: {refused}", flush=True)
                return self.reply(400 if refused == "stale timestamp" else 401, refused)
            event = json.loads(body)
            # The header and the body carry the same id; the body is what was signed.
            event_id = event.get("event_id")
            if not seen.first_time(event_id):
                print(f"duplicate event {event_id}, ignored", flush=True)
                return self.reply(200, "duplicate")
            invoice = event.get("invoice") or {}
            print(
                f"event {event_id} {event.get('type')} invoice={invoice.get('payment_id')} "
                f"status={invoice.get('status')} txid={event.get('txid')}",
                flush=True,
            )
            # Answer quickly; slow work belongs in a queue of your own.
            self.reply(200, "ok")

        def reply(self, status, text):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass  # the events are printed above

    return Receiver


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    secret = os.environ.get("CASHIER_WEBHOOK_SECRET")
    if not secret:
        sys.exit("set CASHIER_WEBHOOK_SECRET to the secret `cashier webhook add` printed")
    server = ThreadingHTTPServer((args.host, args.port), handler(secret, Seen()))
    host, port = server.server_address[:2]
    print(f"Listening on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
