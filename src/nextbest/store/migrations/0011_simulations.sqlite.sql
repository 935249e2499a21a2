-- nextbest schema, version 11 (sqlite): population simulations (nextbest simulate, POST
-- /api/v1/simulations). One row per run and tenant: its inputs, its status (queued, running,
-- done, failed), its progress, the heartbeat of the process running it (updated_at: a run whose
-- heartbeat stopped is reported as interrupted), and its result or error. Ids sort by creation
-- time, so the newest come first by id.
CREATE TABLE simulations (
    tenant_id     TEXT NOT NULL REFERENCES tenants (tenant_id),
    simulation_id TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    inputs        TEXT NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    finished_at   REAL,
    done          INTEGER NOT NULL DEFAULT 0,
    total         INTEGER,
    result        TEXT,
    error         TEXT,
    PRIMARY KEY (tenant_id, simulation_id)
);
CREATE INDEX simulations_unfinished ON simulations (status, updated_at);
