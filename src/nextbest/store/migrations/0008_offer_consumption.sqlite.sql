-- nextbest schema, version 8 (sqlite): what positive outcomes consumed of offers' budgets and
-- stock. One row per (tenant, offer, period): period 'total' (the offer's life) or a UTC day
-- 'YYYY-MM-DD'; value is the outcome value consumed (at most the budget), units the positive
-- outcomes counted against the stock (at most the stock).
CREATE TABLE offer_consumption (
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    offer_id   TEXT NOT NULL,
    period     TEXT NOT NULL,
    value      REAL NOT NULL DEFAULT 0,
    units      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, offer_id, period)
);
