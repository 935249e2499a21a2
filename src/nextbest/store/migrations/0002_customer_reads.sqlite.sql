-- nextbest schema, version 2 (SQLite): one customer's interactions and recommendations by
-- index. Correcting or deleting an interaction recomputes its customer's summaries from the
-- customer's remaining interactions, and forgetting a customer deletes its rows; both read by
-- customer. (Version 1 left interactions without this index for bulk import speed; measured
-- with benchmarks/ingest.py, the index costs no more than the run-to-run noise.)
CREATE INDEX interactions_customer ON interactions (tenant_id, customer_id);
CREATE INDEX recommendations_customer ON recommendations (tenant_id, customer_id);
