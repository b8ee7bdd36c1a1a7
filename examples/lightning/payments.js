#!/usr/bin/env node
// Print a Cashier Lightning wallet's payments as they settle.
//
// Usage:
//   node payments.js <key> [server_url] [--since EVENT_ID] [--count N]
//
// <key> is the wallet's invoice key, admin key or wallet id: any of them names the wallet.
// An invoice key is enough and the safest to hand out: a socket only listens.
// server_url defaults to http://localhost:8000 (http:// -> ws://, https:// -> wss://; a path
// prefix such as https://example.com/cashier is kept).
//
//   --since EVENT_ID  start by replaying every payment after this event id
//   --count N         exit (status 0) after N payments
//
// Needs Node 18+ and ws: `npm install` in examples/ (its node_modules serves this folder too).

const WebSocket = require('ws');

// The server closes a socket on an unknown key with 1008 (policy violation).
const UNKNOWN_KEY = 1008;
const MAX_DELAY_MS = 30000;
const SILENCE_MS = 60000;

const USAGE = 'Usage: node payments.js <key> [server_url] [--since EVENT_ID] [--count N]';

function parseArgs(argv) {
  const positional = [];
  const options = { since: null, count: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--since' || arg === '--count') {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 0) fail(`${arg} needs a whole number`);
      options[arg.slice(2)] = value;
    } else if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg.startsWith('--')) {
      fail(`unknown option ${arg}`);
    } else {
      positional.push(arg);
    }
  }
  if (positional.length < 1 || positional.length > 2) fail('expected a key and an optional URL');
  return { key: positional[0], serverUrl: positional[1] || 'http://localhost:8000', ...options };
}

function fail(why) {
  console.error(`${why}\n${USAGE}`);
  process.exit(2);
}

// ws(s)://host[:port][/prefix]/api/v1/ws/<key>, from the server's http(s) URL.
function socketBase(serverUrl, key) {
  const url = new URL(serverUrl.includes('://') ? serverUrl : `http://${serverUrl}`);
  const scheme = { 'http:': 'ws:', 'https:': 'wss:' }[url.protocol] || url.protocol;
  const prefix = url.pathname.replace(/\/+$/, '');
  return `${scheme}//${url.host}${prefix}/api/v1/ws/${encodeURIComponent(key)}`;
}

// The URL for printing: keys are secrets, so only their start is shown.
function masked(url, key) {
  return key.length > 8 ? url.replace(encodeURIComponent(key), `${key.slice(0, 6)}...`) : url;
}

// The amount in whole sats, always positive (the direction is in the event).
function sats(message) {
  if (typeof message.amount === 'number') return Math.abs(Math.trunc(message.amount));
  const msat = (message.payment && message.payment.amount) || 0;
  return Math.floor(Math.abs(msat) / 1000);
}

function received(message) {
  if (message.event === 'payment_received') return true;
  if (message.event === 'payment_sent') return false;
  const amount = typeof message.amount === 'number'
    ? message.amount : (message.payment && message.payment.amount) || 0;
  return amount >= 0;
}

// One line for a payment frame.
function describe(message) {
  const payment = message.payment || {};
  const label = received(message) ? 'PAYMENT RECEIVED' : 'PAYMENT SENT';
  const memo = ('memo' in message ? message.memo : payment.memo) || '';
  const hash = message.payment_hash || payment.payment_hash || '?';
  const status = message.status || payment.status || 'success';
  let line = `${label}: ${sats(message)} sats | memo: ${JSON.stringify(memo)} | hash: ${hash}`;
  if (status !== 'success') line += ` | status: ${status}`;
  if ('wallet_balance' in message) line += ` | balance: ${message.wallet_balance} sats`;
  if ('event_id' in message) line += ` | event ${message.event_id}`;
  return line;
}

function main() {
  const { key, serverUrl, since, count } = parseArgs(process.argv.slice(2));
  const base = socketBase(serverUrl, key);
  let lastEvent = since;
  let shown = 0;
  let delay = 1000;
  let socket = null;
  let retry = null;
  let stopping = false;

  const stop = (exitCode) => {
    stopping = true;
    process.exitCode = exitCode;
    clearTimeout(retry);
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.close(1000);
      // A server that never answers the close must not keep us here.
      setTimeout(() => socket.terminate(), 2000).unref();
    } else if (socket) {
      socket.terminate();
    }
  };

  // Prints one frame.
  const handle = (data) => {
    const text = data.toString();
    let message = null;
    try {
      message = JSON.parse(text);
    } catch (error) {
      // not JSON: printed below as it came
    }
    if (!message || typeof message !== 'object' || message.type !== 'payment') {
      // Pushes (GET /api/v1/ws/<id>/<data>) arrive as they were sent.
      console.log(`Message: ${text}`);
      return;
    }
    if (Number.isInteger(message.event_id)) {
      // Delivery is at least once: a payment already shown is skipped.
      if (lastEvent !== null && message.event_id <= lastEvent) return;
      lastEvent = message.event_id;
    }
    console.log(describe(message));
    shown += 1;
    if (count !== null && shown >= count) stop(0);
  };

  const connect = () => {
    const url = lastEvent === null ? base : `${base}?since=${lastEvent}`;
    let opened = false;
    let failure = '';
    let silence = null;
    // The server pings every 20 s: a minute without a word means the connection is dead even
    // if no close ever arrives (a dropped network), so it is ended and made anew.
    const heard = () => {
      clearTimeout(silence);
      silence = setTimeout(() => socket.terminate(), SILENCE_MS);
    };
    socket = new WebSocket(url);
    socket.on('open', () => {
      opened = true;
      delay = 1000;
      heard();
      console.log(`Connected to ${masked(url, key)}`);
    });
    socket.on('ping', heard);
    socket.on('message', (data) => {
      heard();
      if (!stopping) handle(data);
    });
    socket.on('error', (error) => {
      failure = error.message; // 'close' follows and decides what next
    });
    socket.on('close', (code) => {
      clearTimeout(silence);
      if (stopping) return;
      if (code === UNKNOWN_KEY) {
        console.error('The server knows no wallet by this key.');
        process.exitCode = 1;
        return;
      }
      if (opened) {
        console.log(`Connection closed (code ${code}); reconnecting in ${delay / 1000}s`);
      } else {
        const where = masked(url, key);
        console.log(`Cannot connect to ${where} (${failure}); retrying in ${delay / 1000}s`);
      }
      retry = setTimeout(connect, delay);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    });
  };

  const interrupted = () => {
    console.log('Stopped.');
    stop(0);
  };
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);
  connect();
}

main();
