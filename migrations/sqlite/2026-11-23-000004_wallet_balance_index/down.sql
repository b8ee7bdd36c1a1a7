DROP INDEX ln_payments_balance;
