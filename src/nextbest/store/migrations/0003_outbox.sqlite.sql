-- nextbest schema, version 3 (SQLite): the transactional outbox and webhook delivery.
-- An event is written once per (tenant, event id), in the transaction of the change it reports;
-- the same transaction adds one delivery row per active endpoint of the tenant whose event
-- filter matches. Deliverers claim due rows with a lease (lease_until, lease_token).
CREATE TABLE webhook_endpoints (
    tenant_id          TEXT NOT NULL REFERENCES tenants (tenant_id),
    endpoint_id        TEXT NOT NULL,
    url                TEXT NOT NULL,
    description        TEXT,
    event_types        TEXT,            -- JSON list of event types; NULL: every type
    secret             TEXT NOT NULL,   -- encrypted at rest (store/webhook_secrets.py)
    previous_secret    TEXT,            -- encrypted; signs alongside until previous_until
    previous_until     REAL,
    created_at         REAL NOT NULL,
    rotated_at         REAL,
    PRIMARY KEY (tenant_id, endpoint_id)
);

CREATE TABLE outbox_events (
    tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    occurred_at  REAL NOT NULL,
    payload      TEXT NOT NULL,
    created_at   REAL NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

CREATE TABLE webhook_deliveries (
    delivery_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id         TEXT NOT NULL,
    endpoint_id       TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   REAL,
    lease_until       REAL,
    lease_token       TEXT,
    last_status_code  INTEGER,
    last_error        TEXT,
    last_latency_ms   REAL,
    response_excerpt  TEXT,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    delivered_at      REAL,
    UNIQUE (tenant_id, endpoint_id, event_id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, endpoint_id),
    FOREIGN KEY (tenant_id, event_id) REFERENCES outbox_events (tenant_id, event_id)
);
-- The deliverers' claim: pending rows by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, delivery_id);
