#!/usr/bin/env python3
"""Watch a Cashier invoice over its WebSocket and print every event.

Usage:
    python websocket_client_example.py <invoice_uuid> [host]

host defaults to localhost:8000. Local hosts (localhost, 127.0.0.1, or any host with a port)
use ws://, others wss://; a full ws:// or wss:// prefix is used as given.

Needs: pip install websocket-client
"""

import json
import sys
import time

import websocket  # websocket-client

TERMINAL = {"payment_received", "invoice_expired", "invoice_cancelled"}


def socket_url(invoice_id, host, since):
    if host.startswith(("ws://", "wss://")):
        base = host.rstrip("/")
    else:
        local = host.startswith(("localhost", "127.0.0.1")) or ":" in host
        base = ("ws://" if local else "wss://") + host.rstrip("/")
    url = f"{base}/ws/jpp/invoice/{invoice_id}/"
    return f"{url}?since={since}" if since is not None else url


def show(message):
    """Prints one event; returns True when the invoice reached its end."""
    kind = message.get("type")
    invoice = message.get("invoice") or {}
    if kind == "payment_received":
        total = sum(o.get("amount", 0) for o in invoice.get("outputs", []))
        print("PAYMENT RECEIVED")
        print(f"  invoice: {invoice.get('payment_id')}")
        print(f"  txid:    {message.get('txid')}")
        print(f"  paid at: {message.get('paid_at')}")
        print(f"  amount:  {total} sats")
        if message.get("memo"):
            print(f"  memo:    {message['memo']}")
    elif kind == "invoice_expired":
        print(f"INVOICE EXPIRED: {invoice.get('payment_id')} at {invoice.get('expires')}")
    elif kind == "invoice_cancelled":
        print(f"INVOICE CANCELLED: {invoice.get('payment_id')}")
    elif kind == "invoice_state":
        print(f"Invoice {invoice.get('payment_id')} is {invoice.get('status')}")
    else:
        print(f"Message: {json.dumps(message)}")
    sys.stdout.flush()
    return kind in TERMINAL


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip())
        sys.exit(2)
    invoice_id = sys.argv[1]
    host = sys.argv[2] if len(sys.argv) > 2 else "localhost:8000"
    last_event = None
    delay = 1
    while True:
        url = socket_url(invoice_id, host, last_event)
        try:
            ws = websocket.create_connection(url, timeout=60)
        except Exception as error:  # refused, DNS, handshake: try again later
            print(f"Cannot connect to {url}: {error}; retrying in {delay}s", flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 30)
            continue
        print(f"Connected to {url}", flush=True)
        delay = 1
        try:
            while True:
                raw = ws.recv()
                if not raw:
                    break
                message = json.loads(raw)
                # event_id lets a reconnect resume where this one stopped, without repeats.
                if isinstance(message.get("event_id"), int):
                    if last_event is not None and message["event_id"] <= last_event:
                        continue
                    last_event = message["event_id"]
                if show(message):
                    ws.close()
                    return
        except websocket.WebSocketTimeoutException:
            pass  # quiet is fine; the server pings
        except (websocket.WebSocketException, OSError, ValueError) as error:
            print(f"Connection lost ({error}); reconnecting in {delay}s", flush=True)
        finally:
            try:
                ws.close()
            except Exception:
                pass
        time.sleep(delay)
        delay = min(delay * 2, 30)


if __name__ == "__main__":
    main()
