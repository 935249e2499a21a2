-- nextbest schema, version 13 (sqlite): customer attributes (nextbest ingest --customers,
-- PUT /api/v1/customers/{id}/attributes). One row per tenant and customer: a flat JSON object
-- of the customer's attributes (strings, numbers, booleans, nulls) and when it was last
-- written. Forgetting the customer deletes the row.
CREATE TABLE customer_attributes (
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    customer_id TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
