-- B8's seed for PostgreSQL: what seed_sqlite.sql writes (the same ids), by generate_series;
-- {rows} rows in each table the timed operations read, {now} the clock in ms.
INSERT INTO invoices (id, status, memo, outputs, created_ms, expires_ms, fee_per_kb, updated_ms,
    store_id, confirmations_required)
SELECT lpad(to_hex((i * 2654435761) % 4294967296), 8, '0') || lpad(to_hex(i), 24, '0'),
    CASE WHEN i % 20 < 10 THEN 'open' WHEN i % 20 < 18 THEN 'paid'
         WHEN i % 20 = 18 THEN 'expired' ELSE 'cancelled' END,
    'seed',
    '[{"amount":10000,"address":"bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs"}]',
    {now} - ({rows} - i) * 10,
    CASE WHEN i % 20 < 10 THEN {now} + 86400000 + i ELSE {now} - ({rows} - i) * 10 + 1800000 END,
    1000, {now} - ({rows} - i) * 10, 1, 0
FROM generate_series(1::bigint, {rows}) AS i ORDER BY i;
INSERT INTO invoice_scripts (script, invoice_id)
SELECT '76a914' || lpad(to_hex((seq * 2246822519) % 4294967296), 8, '0')
    || lpad(to_hex(seq), 32, '0') || '88ac', id FROM invoices;
INSERT INTO payments (invoice_id, txid, raw_tx, state, created_ms, paid_ms, chain, block_hash,
    block_height, confirmations, via, amount)
SELECT id, lpad(to_hex((seq * 3266489917) % 4294967296), 8, '0') || lpad(to_hex(seq), 56, '0'),
    '\x00'::bytea, 'broadcast', created_ms, created_ms + 1000, 'final', lpad(to_hex(seq), 64, '0'),
    100, 6, 'jpp', 10000
FROM invoices WHERE status = 'paid' ORDER BY seq;
INSERT INTO events (topic, kind, payload, created_ms)
SELECT 'invoice:' || id,
    CASE status WHEN 'open' THEN 'invoice_paid_partial' WHEN 'paid' THEN 'payment_received'
        WHEN 'expired' THEN 'invoice_expired' ELSE 'invoice_cancelled' END,
    '{"type":"seed","invoice":{"payment_id":"' || id || '"}}', created_ms
FROM invoices ORDER BY seq;
UPDATE webhook_cursor SET event_id = (SELECT MAX(id) FROM events);
INSERT INTO api_keys (key_hash, label, created_ms, store_id)
SELECT sha256(('seed key ' || i)::bytea), 'seed', {now}, 1 FROM generate_series(1, {rows}) AS i;
INSERT INTO wallets (id, name, inkey_hash, adminkey_hash, created_ms)
SELECT lpad(to_hex(i), 32, '0'), 'seed', sha256(('seed inkey ' || i)::bytea),
    sha256(('seed adminkey ' || i)::bytea), {now}
FROM generate_series(1, {rows}) AS i;
INSERT INTO wallets (id, name, inkey_hash, adminkey_hash, created_ms)
VALUES ('{wallet}', 'bench', '\x{inkey_hash}'::bytea, '\x{adminkey_hash}'::bytea, {now});
INSERT INTO ln_payments (checking_id, payment_hash, wallet_id, amount_msat, fee_msat, bolt11,
    memo, status, extra, created_ms, updated_ms)
SELECT h, h, CASE WHEN i % 2 = 0 THEN '{wallet}' ELSE lpad(to_hex(i), 32, '0') END,
    1000, 0, 'lnbcrt10n1seed', 'seed', 'success', '{}',
    {now} - ({rows} - i) * 10, {now} - ({rows} - i) * 10
FROM (SELECT i, lpad(to_hex((i * 2654435761) % 4294967296), 8, '0') || lpad(to_hex(i), 56, '0') AS h
      FROM generate_series(1::bigint, {rows}) AS i) AS g;
