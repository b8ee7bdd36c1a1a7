#!/usr/bin/env node
// BitPay's own wallet client, bitcore-wallet-client (BWC) 11.5.2, paying a Cashier invoice.
//
//   node tests/compat/bwc.js <base_url> <api_key> <mode>      mode: v2-trusted | v2-bypass | v1
//   node tests/compat/bwc.js <base_url> <api_key> refusals <payment_id>...
//
// Creates an invoice, funds a fresh regtest key from the dev faucet, builds and signs the payment
// with bitcore-lib-cash, and pays through BWC's PayProV2 (JSON Payment Protocol v2) or PayPro
// (v1). Every HTTP exchange BWC makes is printed. Prints `INVOICE <payment_id>` once the invoice
// exists and ends with `PAID <txid>` and exit 0, or `FAILED: <error>` and exit 1.
//
// `refusals` fetches each given invoice (which the server must refuse: paid, expired, cancelled,
// unknown) the three ways BWC fetches: v2 payment options, v2 payment request, v1 payment
// request. For each it prints `REFUSED <payment_id> <step> <error name> <message>`, the error as
// BWC hands it to the wallet, and ends with `DONE`; a fetch that succeeds is a failure.
//
// What BWC 11.5.2 requires of a server (read from its source: src/lib/payproV2.ts,
// src/lib/paypro.ts, src/lib/verifier.ts, and superagent 5.2.2 which does its HTTP):
//
// Response bodies and Content-Type
//  - BWC reads the body as superagent's `res.text`. Under Node, superagent only fills `res.text`
//    for JSON types (`*/json`, `*+json`), `text/*` and form types. Any other type, including
//    `application/payment-options`, `application/payment-request` and
//    `application/payment-ack`, is read as a Buffer and `res.text` stays undefined. So:
//      v2 (every step): a 200 body with such a type fails with "Parameter rawBody is required".
//      v1 GET: the same body fails. With a signature check it throws on `Buffer.from(undefined)`;
//        with noVerify it throws on `data.network`.
//      v1 verify/payment: the body is not checked (noVerify), so the type does not matter. But
//        the ACK memo is only read from a JSON or text body.
//    In a browser (XHR) the type does not matter. Under Node the server must answer these
//    dialects with `application/json` (or a `+json` type).
//  - Errors. v2 maps 400/422 + JSON body `msg` to typed errors by substring, 404 to
//    INVOICE_NOT_AVAILABLE, 504 to REQUEST_TIMEOUT, 500 + `msg` to Error(msg), anything else to
//    INVALID_REQUEST. `res.body.msg` exists only when the error body's type is JSON.
//    v1 maps 400 to INVOICE_EXPIRED, 404 to INVOICE_NOT_AVAILABLE and 422 to
//    UNCONFIRMED_INPUTS_NOT_ACCEPTED; it never reads the body.
//
// Request headers (BWC sends these; the server must not need anything else)
//  - v2 GET: `Accept: application/payment-options`, `x-paypro-version: 2`,
//    `Connection: Keep-Alive`, `Keep-Alive: timeout=30, max=10`.
//  - v2 POST: the same, without Accept, with `Content-Type` set to
//    `application/payment-request`, `application/payment-verification` or `application/payment`.
//    The body is a JSON string with no charset parameter. The payment POST adds `BP_PARTNER`
//    and `BP_PARTNER_VERSION`, and only when they are truthy: `bpPartner` must be an object,
//    because BWC reads `bpPartner.bp_partner`.
//  - v2 bodies: select `{"chain":"BCH","currency":"BCH"}` (plus `payload` if given; JSON drops
//    it when undefined). Verify and payment send
//    `{"chain","currency","transactions":[{tx, weightedSize}]}`. `chain` is upper-cased;
//    `currency` is passed as given.
//  - v1 GET: `Accept: application/payment-request`, `Content-Type: application/octet-stream`,
//    and no body.
//  - v1 verify: `Content-Type: application/verify-payment` with
//    `{"currency":"BCH","unsignedTransaction":hex,"weightedSize":<signed hex length / 2>}`.
//  - v1 payment: `Content-Type: application/payment`, `Accept: application/payment-ack`,
//    `BP_PARTNER`/`BP_PARTNER_VERSION` if the caller gives `bp_partner`, and
//    `{"currency":"BCH","transactions":["<signed hex>"]}` (strings). There is no
//    x-paypro-version header.
//
// Signatures
//  - Headers read: `digest` (BWC splits on "=" and takes part [1]: `SHA-256=<lowercase hex>`),
//    `x-signature-type` (must be exactly "ecc"), `x-identity`, and `signature` (not
//    `x-signature`). The signature is 64 bytes r||s hex, checked with ECDSA.verify(the digest from
//    the header, as the message hash). Before that, the digest must equal
//    sha256(utf-8 of res.text) as lowercase hex. Without bypass, a missing `digest` throws a
//    TypeError on `.split`.
//  - trustedKeys is a map keyed by the exact `x-identity` string:
//    `{[identity]: {owner, networks, domains, publicKey}}`. BWC never derives the identity from
//    the key, so any string works if the wallet's map has it. The convention (BitPay's own keys,
//    Electron Cash) is the base58check P2PKH address of the compressed key: version 0x00 on
//    main ("1..."), 0x6f on testnet and regtest ("m..."/"n...", as BitPay's test keys are).
//    bitcore-lib gives regtest the same 0x6f.
//  - Domain: `domains.includes(url.parse(requestUrl).hostname)`. The hostname has no port and
//    no scheme, so it is `127.0.0.1` in the tests. A validDomains entry "127.0.0.1:PORT" would
//    not match.
//  - Networks: v2 does not check `networks` at all. v1 checks
//    `keyData.networks.includes(net)`, where net is the caller's `network` option, not the
//    server's: livenet→main, testnet→test, regtest stays "regtest".
//  - v2 checks all four responses (unless unsafeBypassValidation). v1 checks only the GET
//    (unless noVerify); verify and payment responses are never checked.
//
// Payment request contents
//  - v2 options: `paymentOptions[i].network` is mapped main→livenet, test→testnet,
//    regtest→regtest; any other value becomes undefined, without an error.
//  - v2 request: `network` is mapped the same way, `chain` is lower-cased, and
//    `time`/`expires` go through `new Date(x).toISOString()`, which throws on an invalid date.
//  - v2 instructions: for each instruction, `toAddress = i.to || i.outputs[0].address` and
//    `amount = i.value ?? i.outputs[0].amount`. Only the first output of each instruction is
//    seen, and an instruction with an empty `outputs` throws. `requiredFeeRate` is taken from
//    instructions[0] only (sat/byte; the limit it is checked against, 10,000,000, is in sat/kB,
//    so in effect there is none).
//  - Multiple outputs: BWC's wallet check (Verifier.checkPaypro) requires the proposal's amount
//    to equal Σ over instructions of that first-output amount, and its address to equal
//    instructions[0].toAddress. An invoice with N outputs in ONE instruction is therefore seen
//    as an invoice for outputs[0] alone. One instruction per output is what BWC can sum. It
//    still pays only to the first address, so a BWC-based wallet cannot pay a multi-output
//    invoice correctly either way. This test uses one output.
//  - v1: `network` must be present and `currency` must equal "BCH". `requiredFeeRate` must be
//    ≤ 500000. There must be exactly one output; its `amount` must be a JS number and its
//    `address` must parse with bitcore-lib-cash. `bchreg:`/`bchtest:`/`bitcoincash:` CashAddr
//    parse with or without the prefix (the checksum picks the network); legacy base58 parses
//    too. BWC returns the address without a prefix. For "regtest" the returned `network` is left
//    undefined, without an error.
//  - URLs: getPaymentOptions takes an http(s) URL or any other scheme whose query has `r`
//    (`bchreg:?r=<percent-encoded url>` works). The other steps take the URL itself.
'use strict';

const { PayProV2, PayPro } = require('bitcore-wallet-client');
const { BitcoreLib } = require('crypto-wallet-core');
const bch = require('bitcore-lib-cash');

const MODES = ['v2-trusted', 'v2-bypass', 'v1', 'refusals'];
const INVOICE_SATS = 10000;
const FAUCET_SATS = 50000;
const OUR_FEE_PER_BYTE = 2;

function log(...args) {
  console.log(...args);
}

function short(text, n = 1500) {
  if (text === undefined) return '<undefined>';
  const s = typeof text === 'string' ? text : Buffer.isBuffer(text) ? `<Buffer ${text.length} bytes>` : JSON.stringify(text);
  return s.length > n ? s.slice(0, n) + `… (${s.length} chars)` : s;
}

// Prints every exchange BWC makes through superagent: what it sent and what came back.
function traced(agent, label) {
  const wrap = (method) => (url) => {
    const req = agent[method](url);
    req.on('response', (res) => {
      const shown = ['content-type', 'digest', 'x-signature-type', 'x-identity', 'signature'];
      const headers = {};
      for (const h of shown) if (res.headers[h] !== undefined) headers[h] = res.headers[h];
      log(`  [${label}] > ${method.toUpperCase()} ${url}`);
      log(`  [${label}] >   headers ${JSON.stringify(req.header || {})}`);
      if (req._data !== undefined) log(`  [${label}] >   body ${short(req._data)}`);
      log(`  [${label}] < ${res.status} ${JSON.stringify(headers)}`);
      log(`  [${label}] <   body ${short(res.text !== undefined ? res.text : res.body)}`);
    });
    req.on('error', (err) => log(`  [${label}] ! ${method.toUpperCase()} ${url}: ${err.message}`));
    return req;
  };
  return { get: wrap('get'), post: wrap('post'), put: wrap('put') };
}
PayProV2.request = traced(PayProV2.request, 'bwc v2');
PayPro.r = traced(PayPro.r, 'bwc v1');

function fail(msg) {
  throw new Error(msg);
}

async function http(method, url, { body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

// The base58check P2PKH address of a compressed public key: BWC's `x-identity` / trustedKeys
// key. Version 0x00 on main, 0x6f (bitcore's testnet and regtest) elsewhere.
function identityOf(publicKeyHex, network) {
  const net = network === 'main' ? 'livenet' : 'testnet';
  return new BitcoreLib.PublicKey(publicKeyHex).toAddress(net).toString();
}

// The wallet's trust list built from the server's `/signingKeys/paymentProtocol.json`.
async function trustedKeysFrom(base, network) {
  const r = await http('GET', `${base}/signingKeys/paymentProtocol.json`);
  log(`key document: ${r.status} ${short(r.text)}`);
  if (r.status !== 200 || !r.json) fail(`GET /signingKeys/paymentProtocol.json answered ${r.status}`);
  const doc = r.json;
  if (!Array.isArray(doc.publicKeys) || doc.publicKeys.length === 0) fail('the key document has no publicKeys');
  if (!Array.isArray(doc.validDomains)) fail('the key document has no validDomains list');
  if (Number.isNaN(new Date(doc.expirationDate).getTime())) fail(`bad expirationDate ${doc.expirationDate}`);
  const trusted = {};
  for (const publicKey of doc.publicKeys) {
    const identity = identityOf(publicKey, network);
    trusted[identity] = {
      owner: doc.owner,
      networks: [network],
      domains: doc.validDomains,
      publicKey
    };
  }
  log(`trusted keys: ${JSON.stringify(trusted)}`);
  return trusted;
}

// The unsigned and signed forms of a payment of `outputs` from `coin`, change back to `key`.
function buildPayment(key, coin, outputs, feePerByte, signingMethod) {
  const from = key.toAddress();
  const utxo = {
    txId: coin.txid,
    outputIndex: coin.vout,
    address: from,
    script: bch.Script.buildPublicKeyHashOut(from),
    satoshis: coin.amount
  };
  const tx = new bch.Transaction().from(utxo);
  for (const o of outputs) tx.to(new bch.Address(o.address), o.amount);
  tx.change(from).feePerByte(feePerByte);
  const unsigned = tx.uncheckedSerialize();
  tx.sign(key, null, signingMethod);
  const signed = tx.serialize();
  const size = signed.length / 2;
  const fee = tx.getFee();
  log(`built tx ${tx.id}: ${size} bytes, fee ${fee} sats (${(fee / size).toFixed(2)} sat/byte), ${signingMethod}`);
  if (fee < size * feePerByte) fail(`fee ${fee} below ${feePerByte} sat/byte for ${size} bytes`);
  return { txid: tx.id, unsigned, signed, size };
}

// The outputs a payment request names must be the invoice's: one, 10000 sats to our address.
function checkOutputs(outputs, invoiceAddress) {
  if (outputs.length !== 1) fail(`expected 1 output, the server asked for ${outputs.length}`);
  const [o] = outputs;
  if (new bch.Address(o.address).toString() !== new bch.Address(invoiceAddress).toString()) {
    fail(`the payment request pays ${o.address}, the invoice ${invoiceAddress}`);
  }
  if (o.amount !== INVOICE_SATS) fail(`the payment request asks ${o.amount} sats, the invoice ${INVOICE_SATS}`);
}

async function payV2(ctx, trusted) {
  const unsafeBypassValidation = !trusted;
  if (trusted) {
    PayProV2.trustedKeys = await trustedKeysFrom(ctx.base, ctx.invoice.network);
  }
  const paymentUrl = ctx.invoice.payment_url;
  const chain = 'BCH';
  const currency = 'BCH';

  log('step: getPaymentOptions');
  const options = await PayProV2.getPaymentOptions({ paymentUrl: ctx.invoice.payment_uri, unsafeBypassValidation });
  log(`payment options: ${JSON.stringify(options)}`);
  if (options.paymentId !== ctx.invoice.payment_id) fail(`paymentId ${options.paymentId} ≠ ${ctx.invoice.payment_id}`);
  const option = (options.paymentOptions || []).find((o) => o.chain === chain && o.currency === currency);
  if (!option) fail('no BCH/BCH payment option');
  if (option.network !== 'regtest') fail(`the BCH option's network maps to ${option.network}, expected regtest`);
  if (option.estimatedAmount !== INVOICE_SATS) fail(`estimatedAmount ${option.estimatedAmount} ≠ ${INVOICE_SATS}`);

  log('step: selectPaymentOption');
  const request = await PayProV2.selectPaymentOption({ paymentUrl, chain, currency, unsafeBypassValidation });
  log(`payment request: ${JSON.stringify(request)}`);
  if (request.chain !== 'bch') fail(`chain ${request.chain}`);
  if (request.network !== 'regtest') fail(`network maps to ${request.network}, expected regtest`);
  const instructions = request.instructions || [];
  // What BWC itself extracted (toAddress/amount of each instruction) ...
  checkOutputs(instructions.map((i) => ({ address: i.toAddress, amount: i.amount })), ctx.merchantAddress);
  // ... and everything the server listed.
  const outputs = instructions.flatMap((i) => i.outputs || []);
  checkOutputs(outputs, ctx.merchantAddress);

  const feePerByte = Math.max(OUR_FEE_PER_BYTE, Math.ceil(request.requiredFeeRate || 0));
  const tx = buildPayment(ctx.payer, ctx.coin, outputs, feePerByte, ctx.signingMethod);

  log('step: verifyUnsignedPayment');
  const verified = await PayProV2.verifyUnsignedPayment({
    paymentUrl,
    chain,
    currency,
    unsignedTransactions: [{ tx: tx.unsigned, weightedSize: tx.size }],
    unsafeBypassValidation
  });
  log(`verification: ${JSON.stringify(verified)}`);

  log('step: sendSignedPayment');
  const paid = await PayProV2.sendSignedPayment({
    paymentUrl,
    chain,
    currency,
    signedTransactions: [{ tx: tx.signed, weightedSize: tx.size }],
    unsafeBypassValidation,
    bpPartner: { bp_partner: 'cashier-test', bp_partner_version: '1' }
  });
  log(`payment: ${JSON.stringify(paid)}`);
  log(`memo shown to the user: ${paid.memo}`);
  return tx.txid;
}

async function payV1(ctx) {
  const url = ctx.invoice.payment_url;
  const network = 'regtest';
  const trustedKeys = await trustedKeysFrom(ctx.base, ctx.invoice.network);

  log('step: PayPro.get');
  const request = await new Promise((resolve, reject) =>
    PayPro.get({ url, coin: 'bch', network, trustedKeys }, (err, r) => (err ? reject(err) : resolve(r)))
  );
  log(`payment request: ${JSON.stringify(request)}`);
  if (request.paymentId !== ctx.invoice.payment_id) fail(`paymentId ${request.paymentId} ≠ ${ctx.invoice.payment_id}`);
  const outputs = [{ address: request.toAddress, amount: request.amount }];
  checkOutputs(outputs, ctx.merchantAddress);

  const feePerByte = Math.max(OUR_FEE_PER_BYTE, Math.ceil(request.requiredFeeRate || 0));
  const tx = buildPayment(ctx.payer, ctx.coin, outputs, feePerByte, ctx.signingMethod);

  log('step: PayPro.send (verify-payment, then payment)');
  const memo = await new Promise((resolve, reject) =>
    PayPro.send(
      {
        url,
        coin: 'bch',
        network,
        rawTxUnsigned: tx.unsigned,
        rawTx: tx.signed,
        bp_partner: 'cashier-test',
        bp_partner_version: '1'
      },
      (err, _raw, memo) => (err ? reject(err) : resolve(memo))
    )
  );
  log(`memo shown to the user: ${memo}`);
  if (typeof memo !== 'string' || !memo) fail('the payment ACK had no memo BWC could read');
  return tx.txid;
}

// What BWC tells the wallet when each of its fetches of a refused invoice fails.
async function refusals(base, ids) {
  const describe = (err) => `${err && err.name ? err.name : 'Error'} ${err && err.message ? err.message : err}`;
  for (const id of ids) {
    const paymentUrl = `${base}/api/jpp/invoices/${id}/`;
    const steps = {
      options: () => PayProV2.getPaymentOptions({ paymentUrl, unsafeBypassValidation: true }),
      request: () =>
        PayProV2.selectPaymentOption({ paymentUrl, chain: 'BCH', currency: 'BCH', unsafeBypassValidation: true }),
      v1: () =>
        new Promise((resolve, reject) =>
          PayPro.get({ url: paymentUrl, coin: 'bch', network: 'regtest', noVerify: true }, (err, r) =>
            err ? reject(err) : resolve(r)
          )
        )
    };
    for (const [step, run] of Object.entries(steps)) {
      let refused;
      try {
        await run();
      } catch (err) {
        refused = err;
      }
      if (!refused) fail(`${step} of ${id} was not refused`);
      log(`REFUSED ${id} ${step} ${describe(refused)}`);
    }
  }
  log('DONE');
}

async function main() {
  const [baseArg, apiKey, mode, ...rest] = process.argv.slice(2);
  if (!baseArg || !apiKey || !MODES.includes(mode)) {
    fail(`usage: node bwc.js <base_url> <api_key> <${MODES.join('|')}> [payment_id...]`);
  }
  const base = baseArg.replace(/\/+$/, '');
  log(`mode ${mode} against ${base}`);
  if (mode === 'refusals') return refusals(base, rest);

  const merchant = new bch.PrivateKey(undefined, 'regtest');
  const merchantAddress = merchant.toAddress().toString();
  const created = await http('POST', `${base}/api/jpp/invoices/`, {
    headers: { 'X-Api-Key': apiKey },
    body: { outputs: [{ address: merchantAddress, amount: INVOICE_SATS }], memo: 'bwc test' }
  });
  log(`create invoice: ${created.status} ${short(created.text)}`);
  if (created.status !== 201 || !created.json) fail(`invoice creation answered ${created.status}`);
  const invoice = created.json;
  for (const f of ['payment_id', 'payment_url', 'payment_uri', 'network']) {
    if (typeof invoice[f] !== 'string') fail(`the invoice has no ${f}`);
  }
  log(`INVOICE ${invoice.payment_id}`);

  const payer = new bch.PrivateKey(undefined, 'regtest');
  const payerAddress = payer.toAddress().toString();
  const funded = await http('POST', `${base}/dev/faucet`, { body: { address: payerAddress, amount: FAUCET_SATS } });
  log(`faucet: ${funded.status} ${short(funded.text)}`);
  if (funded.status !== 201 || !funded.json) fail(`the faucet answered ${funded.status}`);
  const coin = funded.json;
  if (coin.amount !== FAUCET_SATS || coin.address !== payerAddress) fail('the faucet coin is not the one asked for');

  const ctx = {
    base,
    invoice,
    merchantAddress,
    payer,
    coin,
    // ECDSA: the built-in dev chain refuses 64-byte Schnorr signatures (it does not check them).
    signingMethod: 'ecdsa'
  };
  const txid = mode === 'v1' ? await payV1(ctx) : await payV2(ctx, mode === 'v2-trusted');
  log(`PAID ${txid}`);
}

// BWC v1 throws some errors from inside superagent's callback, outside any promise.
process.on('uncaughtException', (err) => {
  console.log(`FAILED (uncaught): ${err && err.message ? err.message : err}`);
  if (err && err.stack) console.log(err.stack);
  process.exit(1);
});

const deadline = setTimeout(() => {
  console.log('FAILED: no result after 90 s');
  process.exit(1);
}, 90_000);

main().then(
  () => {
    clearTimeout(deadline);
    process.exit(0);
  },
  (err) => {
    clearTimeout(deadline);
    const kind = err && err.constructor && err.constructor.name !== 'Error' ? `${err.constructor.name}: ` : '';
    console.log(`FAILED: ${kind}${err && err.message ? err.message : err}`);
    if (err && err.stack) console.log(err.stack);
    process.exit(1);
  }
);
