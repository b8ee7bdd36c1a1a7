#!/usr/bin/env python3
"""Print a Cashier Lightning wallet's payments as they settle.

Usage:
    python3 payments.py <key> [server_url] [--since EVENT_ID] [--count N]

<key> is the wallet's invoice key, admin key or wallet id: any of them names the wallet.
An invoice key is enough and the safest to hand out: a socket only listens.
server_url defaults to http://localhost:8000 (http:// -> ws://, https:// -> wss://; a path
prefix such as https://example.com/cashier is kept).

Options:
    --since EVENT_ID  start by replaying every payment after this event id
    --count N         exit (status 0) after N payments

Needs Python 3.9+ and: pip install websockets
"""

import argparse
import asyncio
import json
import signal
import sys
from urllib.parse import quote, urlsplit, urlunsplit

import websockets

# The server closes a socket on an unknown key with 1008 (policy violation).
UNKNOWN_KEY = 1008
MAX_DELAY = 30  # seconds between attempts, at most


def socket_base(server_url, key):
    """ws(s)://host[:port][/prefix]/api/v1/ws/<key>, from the server's http(s) URL."""
    if "://" not in server_url:
        server_url = "http://" + server_url
    parts = urlsplit(server_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"not a server URL: {server_url}")
    path = parts.path.rstrip("/") + "/api/v1/ws/" + quote(key, safe="")
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def masked(url, key):
    """The URL for printing: keys are secrets, so only their start is shown."""
    return url.replace(quote(key, safe=""), key[:6] + "...", 1) if len(key) > 8 else url


def sats(message):
    """The amount in whole sats, always positive (the direction is in the event)."""
    if isinstance(message.get("amount"), (int, float)):
        return abs(int(message["amount"]))
    payment = message.get("payment") or {}
    return abs(int(payment.get("amount", 0))) // 1000  # msat


def direction(message):
    event = message.get("event")
    if event in ("payment_received", "payment_sent"):
        return event == "payment_received"
    amount = message.get("amount", (message.get("payment") or {}).get("amount", 0))
    return amount >= 0


def describe(message):
    """One line for a payment frame."""
    payment = message.get("payment") or {}
    label = "PAYMENT RECEIVED" if direction(message) else "PAYMENT SENT"
    memo = message.get("memo", payment.get("memo")) or ""
    payment_hash = message.get("payment_hash") or payment.get("payment_hash") or "?"
    status = message.get("status") or payment.get("status") or "success"
    memo = json.dumps(memo, ensure_ascii=False)
    line = f"{label}: {sats(message)} sats | memo: {memo} | hash: {payment_hash}"
    if status != "success":
        line += f" | status: {status}"
    if "wallet_balance" in message:
        line += f" | balance: {message['wallet_balance']} sats"
    if "event_id" in message:
        line += f" | event {message['event_id']}"
    return line


class Watcher:
    """One wallet's socket: what it has shown, and where to resume."""

    def __init__(self, key, server_url, since, count):
        self.key = key
        self.base = socket_base(server_url, key)
        self.last_event = since
        self.count = count
        self.seen = 0

    def url(self):
        if self.last_event is None:
            return self.base
        return f"{self.base}?since={self.last_event}"

    def handle(self, raw):
        """Prints one frame; returns True when --count payments have been shown."""
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict) or message.get("type") != "payment":
            # Pushes (GET /api/v1/ws/<id>/<data>) arrive as they were sent.
            print(f"Message: {raw}", flush=True)
            return False
        event_id = message.get("event_id")
        if isinstance(event_id, int):
            # Delivery is at least once: a payment already shown is skipped.
            if self.last_event is not None and event_id <= self.last_event:
                return False
            self.last_event = event_id
        print(describe(message), flush=True)
        self.seen += 1
        return self.count is not None and self.seen >= self.count

    async def run(self):
        """Listens until --count is reached; reconnects with back-off, resuming with ?since=."""
        delay = 1
        while True:
            url = self.url()
            connected = False
            code = None  # the server's close code
            try:
                async with websockets.connect(url) as ws:
                    connected = True
                    print(f"Connected to {masked(url, self.key)}", flush=True)
                    delay = 1
                    async for raw in ws:
                        if self.handle(raw):
                            return 0
                    code = close_code(ws)
            except websockets.exceptions.ConnectionClosed as error:
                code = close_code(error)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake) as error:
                print(f"Cannot connect to {masked(url, self.key)} ({error}); "
                      f"retrying in {delay}s", flush=True)
            if code == UNKNOWN_KEY:
                print("The server knows no wallet by this key.", file=sys.stderr, flush=True)
                return 1
            if connected:
                print(f"Connection closed (code {code}); reconnecting in {delay}s", flush=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)


def close_code(closed):
    """The close code the server sent (None if it sent none), from a closed connection or a
    ConnectionClosed error, in websockets 10 to today."""
    received = getattr(closed, "rcvd", None) or getattr(closed, "close_rcvd", None)
    if received is not None:
        return received.code
    code = getattr(closed, "close_code", None)
    return code if code is not None else getattr(closed, "code", None)


def main():
    parser = argparse.ArgumentParser(
        description="Print a Cashier Lightning wallet's payments as they settle.")
    parser.add_argument("key", help="the wallet's invoice key, admin key or id")
    parser.add_argument("server_url", nargs="?", default="http://localhost:8000",
                        help="the Cashier server (default: %(default)s)")
    parser.add_argument("--since", type=int, metavar="EVENT_ID",
                        help="replay every payment after this event id first")
    parser.add_argument("--count", type=int, metavar="N", help="exit after N payments")
    args = parser.parse_args()
    try:
        watcher = Watcher(args.key, args.server_url, args.since, args.count)
    except ValueError as error:
        parser.error(str(error))
    try:
        return asyncio.run(until_stopped(watcher))
    except KeyboardInterrupt:  # where signal handlers cannot be set (Windows)
        print("Stopped.", flush=True)
        return 0


async def until_stopped(watcher):
    """Runs the watcher; Ctrl-C or SIGTERM closes the socket properly and exits with 0."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, task.cancel)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        return await watcher.run()
    except asyncio.CancelledError:
        # Leaving `async with websockets.connect(...)` has sent the close frame.
        print("Stopped.", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
