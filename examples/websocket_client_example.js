#!/usr/bin/env node
// Watch a Cashier invoice over its WebSocket and print every event.
//
// Usage:
//   node websocket_client_example.js <invoice_uuid> [host]
//
// host defaults to localhost:8000. Local hosts (localhost, 127.0.0.1, or any host with a port)
// use ws://, others wss://; a full ws:// or wss:// prefix is used as given.
//
// Needs: npm install ws

const WebSocket = require('ws');

const TERMINAL = new Set(['payment_received', 'invoice_expired', 'invoice_cancelled']);

function socketUrl(invoiceId, host, since) {
  let base;
  if (host.startsWith('ws://') || host.startsWith('wss://')) {
    base = host.replace(/\/+$/, '');
  } else {
    const local = host.startsWith('localhost') || host.startsWith('127.0.0.1') || host.includes(':');
    base = (local ? 'ws://' : 'wss://') + host.replace(/\/+$/, '');
  }
  const url = `${base}/ws/jpp/invoice/${invoiceId}/`;
  return since === null ? url : `${url}?since=${since}`;
}

// Prints one event; returns true when the invoice reached its end.
function show(message) {
  const invoice = message.invoice || {};
  switch (message.type) {
    case 'payment_received': {
      const total = (invoice.outputs || []).reduce((sum, o) => sum + (o.amount || 0), 0);
      console.log('PAYMENT RECEIVED');
      console.log(`  invoice: ${invoice.payment_id}`);
      console.log(`  txid:    ${message.txid}`);
      console.log(`  paid at: ${message.paid_at}`);
      console.log(`  amount:  ${total} sats`);
      if (message.memo) console.log(`  memo:    ${message.memo}`);
      break;
    }
    case 'invoice_expired':
      console.log(`INVOICE EXPIRED: ${invoice.payment_id} at ${invoice.expires}`);
      break;
    case 'invoice_cancelled':
      console.log(`INVOICE CANCELLED: ${invoice.payment_id}`);
      break;
    case 'invoice_state':
      console.log(`Invoice ${invoice.payment_id} is ${invoice.status}`);
      break;
    default:
      console.log(`Message: ${JSON.stringify(message)}`);
  }
  return TERMINAL.has(message.type);
}

function main() {
  const [invoiceId, host = 'localhost:8000'] = process.argv.slice(2);
  if (!invoiceId) {
    console.log('Usage: node websocket_client_example.js <invoice_uuid> [host]');
    process.exit(2);
  }
  let lastEvent = null;
  let delay = 1000;
  let done = false;

  const connect = () => {
    const url = socketUrl(invoiceId, host, lastEvent);
    const ws = new WebSocket(url);
    ws.on('open', () => {
      console.log(`Connected to ${url}`);
      delay = 1000;
    });
    ws.on('message', (data) => {
      let message;
      try {
        message = JSON.parse(data.toString());
      } catch (error) {
        console.log(`Not JSON: ${data}`);
        return;
      }
      // event_id lets a reconnect resume where this one stopped, without repeats.
      if (Number.isInteger(message.event_id)) {
        if (lastEvent !== null && message.event_id <= lastEvent) return;
        lastEvent = message.event_id;
      }
      if (show(message)) {
        done = true;
        ws.close();
      }
    });
    ws.on('close', (code, reason) => {
      if (done) return;
      console.log(`Connection closed (${code} ${reason}); reconnecting in ${delay / 1000}s`);
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
    ws.on('error', (error) => {
      // 'close' follows and schedules the reconnect.
      console.log(`Connection error: ${error.message}`);
    });
  };
  connect();
}

main();
