DROP TABLE events;
DROP TABLE invoice_outputs;
DROP TABLE invoices;
DROP TABLE api_keys;
