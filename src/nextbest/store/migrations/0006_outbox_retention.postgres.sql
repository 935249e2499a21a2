-- nextbest schema, version 6 (postgres): purging the outbox. Events finished with (every delivery
-- delivered or failed) are deleted after the retention time, oldest first, with their deliveries.
CREATE INDEX outbox_events_created ON outbox_events (created_at);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (tenant_id, event_id);
