-- nextbest schema, version 1 (SQLite). Times are epoch seconds (REAL); documents are JSON text.

CREATE TABLE tenants (
    tenant_id   TEXT PRIMARY KEY,
    name        TEXT,
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL
);

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    role        TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    key_hash    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    revoked_at  REAL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE offers (
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    offer_id    TEXT NOT NULL,
    document    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (tenant_id, offer_id)
);

CREATE TABLE flows (
    tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
    flow_key     TEXT NOT NULL,
    version      INTEGER NOT NULL,
    document     TEXT NOT NULL,
    created_at   REAL NOT NULL,
    published    INTEGER NOT NULL DEFAULT 0,
    published_at REAL,
    PRIMARY KEY (tenant_id, flow_key, version)
);
-- At most one published version per flow key.
CREATE UNIQUE INDEX flows_one_published ON flows (tenant_id, flow_key) WHERE published = 1;

CREATE TABLE outcome_types (
    tenant_id      TEXT NOT NULL REFERENCES tenants (tenant_id),
    name           TEXT NOT NULL,
    classification TEXT NOT NULL CHECK (classification IN ('positive', 'negative', 'neutral')),
    kind           TEXT NOT NULL CHECK (kind IN ('impression', 'response')),
    created_at     REAL NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE recommendations (
    tenant_id         TEXT NOT NULL REFERENCES tenants (tenant_id),
    recommendation_id TEXT NOT NULL,
    customer_id       TEXT NOT NULL,
    channel           TEXT,
    placement         TEXT,
    flow_key          TEXT,
    flow_version      INTEGER,
    created_at        REAL NOT NULL,
    PRIMARY KEY (tenant_id, recommendation_id)
);

CREATE TABLE recommendation_items (
    tenant_id         TEXT NOT NULL,
    recommendation_id TEXT NOT NULL,
    rank              INTEGER NOT NULL,
    offer_id          TEXT NOT NULL,
    score             REAL,
    PRIMARY KEY (tenant_id, recommendation_id, rank),
    FOREIGN KEY (tenant_id, recommendation_id)
        REFERENCES recommendations (tenant_id, recommendation_id)
);

-- Append-only. The unique key makes recording idempotent. No index by customer: per-customer
-- reads use the summaries, and a random-order index would slow bulk imports several fold.
CREATE TABLE interactions (
    interaction_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id         TEXT NOT NULL,
    customer_id       TEXT NOT NULL,
    offer_id          TEXT,
    channel           TEXT,
    outcome           TEXT NOT NULL,
    classification    TEXT NOT NULL,
    kind              TEXT NOT NULL,
    value             REAL NOT NULL DEFAULT 0,
    occurred_at       REAL NOT NULL,
    idempotency_key   TEXT NOT NULL,
    recommendation_id TEXT,
    rank              INTEGER,
    context           TEXT,
    recorded_at       REAL NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);

CREATE TABLE customer_summaries (
    tenant_id    TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    interactions INTEGER NOT NULL,
    impressions  INTEGER NOT NULL,
    positive     INTEGER NOT NULL,
    negative     INTEGER NOT NULL,
    neutral      INTEGER NOT NULL,
    conversions  INTEGER NOT NULL,
    total_value  REAL NOT NULL,
    first_at     REAL NOT NULL,
    last_at      REAL NOT NULL,
    last_outcome TEXT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

CREATE TABLE customer_offer_summaries (
    tenant_id    TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    offer_id     TEXT NOT NULL,
    interactions INTEGER NOT NULL,
    impressions  INTEGER NOT NULL,
    positive     INTEGER NOT NULL,
    negative     INTEGER NOT NULL,
    neutral      INTEGER NOT NULL,
    conversions  INTEGER NOT NULL,
    total_value  REAL NOT NULL,
    first_at     REAL NOT NULL,
    last_at      REAL NOT NULL,
    last_outcome TEXT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, offer_id)
);

CREATE TABLE customer_daily_summaries (
    tenant_id    TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    day          TEXT NOT NULL,
    interactions INTEGER NOT NULL,
    impressions  INTEGER NOT NULL,
    positive     INTEGER NOT NULL,
    negative     INTEGER NOT NULL,
    neutral      INTEGER NOT NULL,
    conversions  INTEGER NOT NULL,
    total_value  REAL NOT NULL,
    first_at     REAL NOT NULL,
    last_at      REAL NOT NULL,
    last_outcome TEXT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, day)
);

-- JSON documents owned by plugins, by namespace (e.g. "myplugin.records").
CREATE TABLE documents (
    namespace   TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    doc_key     TEXT NOT NULL,
    document    TEXT NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (namespace, tenant_id, doc_key)
);

-- Leases so that only one server process runs a scheduled job.
CREATE TABLE locks (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    expires_at  REAL NOT NULL
);
