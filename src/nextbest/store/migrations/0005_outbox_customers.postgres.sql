-- nextbest schema, version 5 (postgres): an outbox event may name the customer it is about, so
-- forgetting the customer deletes the event and its deliveries with the customer's other data.
ALTER TABLE outbox_events ADD COLUMN customer_id TEXT;
CREATE INDEX outbox_events_customer ON outbox_events (tenant_id, customer_id);
