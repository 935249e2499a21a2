-- nextbest schema, version 12 (sqlite): what the per-offer contact policies read, exactly.
--
-- customer_contact_counts gains positives / negatives: the responses of that classification per
-- (customer, UTC day, offer, channel), so outcome_based with a classification counts the
-- responses of the last N days (UTC days) instead of all time.
ALTER TABLE customer_contact_counts ADD COLUMN positives BIGINT NOT NULL DEFAULT 0;
ALTER TABLE customer_contact_counts ADD COLUMN negatives BIGINT NOT NULL DEFAULT 0;

-- Backfill from the stored interactions (the rows exist already: migration 0010).
UPDATE customer_contact_counts SET
    positives = (SELECT count(*) FROM interactions i WHERE i.tenant_id = customer_contact_counts.tenant_id
        AND i.customer_id = customer_contact_counts.customer_id AND coalesce(i.offer_id, '') = customer_contact_counts.offer_id
        AND coalesce(i.channel, '') = customer_contact_counts.channel AND date(occurred_at, 'unixepoch') = customer_contact_counts.day
        AND i.classification = 'positive'),
    negatives = (SELECT count(*) FROM interactions i WHERE i.tenant_id = customer_contact_counts.tenant_id
        AND i.customer_id = customer_contact_counts.customer_id AND coalesce(i.offer_id, '') = customer_contact_counts.offer_id
        AND coalesce(i.channel, '') = customer_contact_counts.channel AND date(occurred_at, 'unixepoch') = customer_contact_counts.day
        AND i.classification = 'negative');

-- One row per (tenant, customer, offer, outcome type) the customer has an interaction of with
-- that offer: the outcome's kind and classification (fixed per type), when the latest one
-- occurred (epoch seconds) and how many there are. Kept in the transaction that records or
-- removes an interaction (on removal recomputed from the remaining interactions); read by
-- cooldown (the last impression) and outcome_based (the last outcome of a type).
CREATE TABLE customer_offer_outcomes (
    tenant_id      TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    offer_id       TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    classification TEXT NOT NULL,
    last_at        REAL NOT NULL,
    n              BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, offer_id, outcome)
);

INSERT INTO customer_offer_outcomes (tenant_id, customer_id, offer_id, outcome, kind,
    classification, last_at, n)
SELECT tenant_id, customer_id, offer_id, outcome, max(kind), max(classification),
    max(occurred_at), count(*)
FROM interactions
WHERE offer_id IS NOT NULL
GROUP BY tenant_id, customer_id, offer_id, outcome;
