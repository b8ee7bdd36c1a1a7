-- Lookups whose cost must not grow with the tables (B8).

-- The expiry sweeper's query (open invoices due by now, soonest first, at most 500), every
-- second: by (status, seq) it read every open invoice to find the due ones and sorted them.
CREATE INDEX invoices_status_expires ON invoices (status, expires_ms);

-- A wallet's payments in the list's whole order (newest first, then checking id): a page is
-- read straight off the index, where (wallet_id, created_ms) left ties to a sort. It covers
-- what ln_payments_wallet did.
CREATE INDEX ln_payments_wallet_time ON ln_payments (wallet_id, created_ms, checking_id);
DROP INDEX ln_payments_wallet;
