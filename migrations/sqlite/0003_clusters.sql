-- Serving clusters and their operations, SQLite. Kept in step with ../postgres/0003_clusters.sql.

CREATE TABLE clusters (
    name        TEXT   PRIMARY KEY,
    environment TEXT   NOT NULL REFERENCES environments (name),
    driver      TEXT   NOT NULL,
    config      TEXT   NOT NULL,
    -- clusters::ClusterState as JSON: what the router and slots serve, as last written.
    state       TEXT   NOT NULL,
    state_event BIGINT NOT NULL,
    state_since BIGINT NOT NULL,
    -- The version a rollback returns to (model:version), if any.
    rollback_to TEXT,
    created_at  BIGINT NOT NULL,
    created_by  TEXT   NOT NULL
);

CREATE TABLE operations (
    id          INTEGER PRIMARY KEY,
    cluster     TEXT    NOT NULL REFERENCES clusters (name),
    kind        TEXT    NOT NULL,
    full_id     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    -- The plan with each step's progress (operations::StepRecord list, JSON).
    steps       TEXT    NOT NULL,
    next_step   BIGINT  NOT NULL,
    before      TEXT    NOT NULL,
    reason      TEXT,
    actor       TEXT    NOT NULL,
    trigger     TEXT,
    error       TEXT,
    created_at  BIGINT  NOT NULL,
    finished_at BIGINT,
    -- The runner working on it and until when; another takes over after expiry.
    lease_owner TEXT,
    lease_until BIGINT
);
-- At most one running operation per cluster, whichever server asks.
CREATE UNIQUE INDEX operations_one_running ON operations (cluster) WHERE state = 'running';
CREATE INDEX operations_by_cluster ON operations (cluster, id);
