#!/usr/bin/env node
// A webhook receiver for Cashier: checks each delivery's signature and timestamp, drops
// duplicates by event id, and prints each event.
//
// Usage:
//   CASHIER_WEBHOOK_SECRET=whsec_... node receiver.js [--port 8080] [--host 127.0.0.1]
//
// Register it with the server first (the secret is printed once):
//   cashier webhook add http://127.0.0.1:8080/ --webhook-allow-private
//
// Node 16+, standard library only.
'use strict';

const crypto = require('crypto');
const http = require('http');

const TOLERANCE = 300; // seconds: an older (or far future) timestamp is a replay, or a bad clock
const MAX_BODY = 1 << 20;
const REMEMBER = 10000; // event ids kept for dropping duplicates

// null if `header` ("t=<unix>,v1=<hex>") signs `body` (a Buffer) with `secret`, else the reason.
function verify(secret, header, body, now = Math.floor(Date.now() / 1000)) {
  const fields = (header || '').split(',').map((p) => p.trim().split('='));
  const stamps = fields.filter((f) => f.length === 2 && f[0] === 't').map((f) => f[1]);
  const macs = fields.filter((f) => f.length === 2 && f[0] === 'v1').map((f) => f[1]);
  if (stamps.length !== 1 || !/^\d+$/.test(stamps[0]) || macs.length === 0) {
    return 'malformed signature header';
  }
  if (Math.abs(now - Number(stamps[0])) > TOLERANCE) return 'stale timestamp';
  const expected = crypto
    .createHmac('sha256', secret)
    .update(Buffer.concat([Buffer.from(stamps[0] + '.'), body]))
    .digest();
  const matches = macs.some((mac) => {
    const given = Buffer.from(mac, 'hex');
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
  return matches ? null : 'bad signature';
}

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const secret = process.env.CASHIER_WEBHOOK_SECRET;
if (!secret) {
  console.error('set CASHIER_WEBHOOK_SECRET to the secret `cashier webhook add` printed');
  process.exit(1);
}
const seen = new Set(); // insertion order: the oldest are dropped first

const server = http.createServer((req, res) => {
  const reply = (status, text) => {
    res.writeHead(status, { 'Content-Type': 'text/plain' });
    res.end(text);
  };
  if (req.method !== 'POST') return reply(405, 'POST only');
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      reply(413, 'too large');
      req.destroy();
    } else {
      chunks.push(chunk);
    }
  });
  req.on('end', () => {
    if (size > MAX_BODY) return;
    const body = Buffer.concat(chunks);
    const refused = verify(secret, req.headers['cashier-signature'], body);
    if (refused) {
      console.log(`refused: ${refused}`);
      return reply(refused === 'stale timestamp' ? 400 : 401, refused);
    }
    const event = JSON.parse(body.toString('utf8'));
    // The header and the body carry the same id; the body is what was signed.
    const id = event.event_id;
    if (seen.has(id)) {
      console.log(`duplicate event ${id}, ignored`);
      return reply(200, 'duplicate');
    }
    seen.add(id);
    if (seen.size > REMEMBER) seen.delete(seen.values().next().value);
    const invoice = event.invoice || {};
    console.log(
      `event ${id} ${event.type} invoice=${invoice.payment_id} ` +
        `status=${invoice.status} txid=${event.txid}`,
    );
    // Answer quickly; slow work belongs in a queue of your own.
    reply(200, 'ok');
  });
});

server.listen(Number(option('--port', '8080')), option('--host', '127.0.0.1'), () => {
  const { address, port } = server.address();
  console.log(`Listening on http://${address}:${port}/`);
});
