DROP TABLE events;
DROP TABLE invoices;
DROP TABLE api_keys;
