CREATE INDEX ln_payments_wallet ON ln_payments (wallet_id, created_ms);
DROP INDEX ln_payments_wallet_time;
DROP INDEX invoices_status_expires;
