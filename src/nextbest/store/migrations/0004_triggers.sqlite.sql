-- nextbest schema, version 4 (sqlite): triggers. A trigger document per tenant and key (uid: the
-- trigger's incarnation, kept across updates, new after a delete, part of every event id); per
-- (tenant, trigger, customer) the crossing state, stored only once the customer has fired
-- (no row: armed, generation 0); the firings (events) with their payload, newest first by
-- trigger. Forgetting a customer deletes the customer's states and events.
CREATE TABLE triggers (
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    trigger_key TEXT NOT NULL,
    uid         TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    document    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (tenant_id, trigger_key)
);

CREATE TABLE trigger_states (
    tenant_id     TEXT NOT NULL,
    trigger_key   TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    armed         INTEGER NOT NULL,
    generation    INTEGER NOT NULL,
    last_fired_at REAL,
    crossed       TEXT,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (tenant_id, trigger_key, customer_id)
);
CREATE INDEX trigger_states_customer ON trigger_states (tenant_id, customer_id);

CREATE TABLE trigger_events (
    tenant_id   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    trigger_key TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    fired_at    REAL NOT NULL,
    payload     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX trigger_events_newest ON trigger_events (tenant_id, trigger_key, fired_at, event_id);
CREATE INDEX trigger_events_customer ON trigger_events (tenant_id, customer_id);
