-- nextbest schema, version 7 (sqlite): control groups. A recommendation records the group its
-- customer was in (NULL: no control group was configured); the lift report reads a flow's
-- recommendations in a time window.
ALTER TABLE recommendations ADD COLUMN assigned_group TEXT
    CHECK (assigned_group IN ('control', 'treatment'));
CREATE INDEX recommendations_flow_created ON recommendations (tenant_id, flow_key, created_at);
