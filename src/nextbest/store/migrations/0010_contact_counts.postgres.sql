-- nextbest schema, version 10 (postgres): contacts per (customer, UTC day, offer, channel), read by
-- contact policies scoped to an offer, a category or a channel, and what each positive outcome
-- consumed of its offer's budget and stock, so a correction or deletion can give it back.
--
-- One row per (tenant, customer, day, offer, channel); '' stands for no offer / no channel.
-- Kept in the transaction that records or removes an interaction. interactions: every one;
-- impressions: kind impression; responses: the others; conversions: outcome conversion.
CREATE TABLE customer_contact_counts (
    tenant_id    TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    day          TEXT NOT NULL,
    offer_id     TEXT NOT NULL,
    channel      TEXT NOT NULL,
    interactions BIGINT NOT NULL,
    impressions  BIGINT NOT NULL,
    responses    BIGINT NOT NULL,
    conversions  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, day, offer_id, channel)
);

-- Backfill from the stored interactions.
INSERT INTO customer_contact_counts (tenant_id, customer_id, day, offer_id, channel,
    interactions, impressions, responses, conversions)
SELECT tenant_id, customer_id, to_char(to_timestamp(occurred_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
    coalesce(offer_id, ''), coalesce(channel, ''), count(*),
    sum(CASE WHEN kind = 'impression' THEN 1 ELSE 0 END),
    sum(CASE WHEN kind = 'impression' THEN 0 ELSE 1 END),
    sum(CASE WHEN outcome = 'conversion' THEN 1 ELSE 0 END)
FROM interactions
GROUP BY tenant_id, customer_id, to_char(to_timestamp(occurred_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), coalesce(offer_id, ''), coalesce(channel, '');

-- What one positive outcome (by interaction id) consumed: value of the lifetime budget, value of
-- the budget of day (the UTC day it was recorded, when the consumption happened), units of stock.
-- Outcomes recorded before this version have no row: their consumption is not given back.
CREATE TABLE outcome_consumption (
    tenant_id      TEXT NOT NULL,
    interaction_id BIGINT NOT NULL,
    customer_id    TEXT NOT NULL,
    offer_id       TEXT NOT NULL,
    day            TEXT NOT NULL,
    total_value    DOUBLE PRECISION NOT NULL,
    day_value      DOUBLE PRECISION NOT NULL,
    units          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, interaction_id)
);
CREATE INDEX outcome_consumption_by_customer ON outcome_consumption (tenant_id, customer_id);
