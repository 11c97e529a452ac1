-- Switchyard schema, SQLite. Kept in step with ../postgres/0001_init.sql.
-- Instants are integer microseconds since the Unix epoch (exact ordering);
-- JSON is stored as TEXT.

CREATE TABLE environments (
    name               TEXT    PRIMARY KEY,
    allow_latest       BOOLEAN NOT NULL,
    required_approvals BIGINT  NOT NULL CHECK (required_approvals >= 0),
    min_stage          TEXT    NOT NULL,
    position           BIGINT  NOT NULL
);

CREATE TABLE versions (
    model_id           TEXT   NOT NULL,
    version            TEXT   NOT NULL,
    stage              TEXT   NOT NULL,
    config_hash        TEXT   NOT NULL,
    config             TEXT   NOT NULL,
    artifact_uri       TEXT,
    labels             TEXT,
    created_at         BIGINT NOT NULL,
    created_by         TEXT   NOT NULL,
    stage_since        BIGINT NOT NULL,
    -- Set once when the retirement job found the version due but still pinned.
    retirement_held_at BIGINT,
    PRIMARY KEY (model_id, version)
);
CREATE INDEX versions_by_model_created ON versions (model_id, created_at);
CREATE INDEX versions_by_stage ON versions (stage, stage_since);

CREATE TABLE pins (
    environment TEXT   NOT NULL REFERENCES environments (name),
    model_id    TEXT   NOT NULL,
    version     TEXT   NOT NULL,
    since       BIGINT NOT NULL,
    set_by      TEXT   NOT NULL,
    reason      TEXT,
    event_id    BIGINT NOT NULL,
    PRIMARY KEY (environment, model_id),
    FOREIGN KEY (model_id, version) REFERENCES versions (model_id, version)
);
CREATE INDEX pins_by_version ON pins (model_id, version);

-- INTEGER PRIMARY KEY makes id the rowid; ids are assigned by the writer
-- (head.last_id + 1) so they are contiguous.
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    model_id    TEXT,
    version     TEXT,
    environment TEXT,
    cluster     TEXT,
    reason      TEXT,
    details     TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX ledger_by_at ON ledger (at);
CREATE INDEX ledger_by_action ON ledger (action, id);
CREATE INDEX ledger_by_actor ON ledger (actor, id);
CREATE INDEX ledger_by_version ON ledger (model_id, version, id);
CREATE INDEX ledger_by_environment ON ledger (environment, id);

-- Append-only, enforced by the database too. The hash chain is what proves
-- it: verify still finds rows edited by someone who dropped these triggers.
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;

-- The chain head: every writer locks this row first, which serialises writers.
CREATE TABLE ledger_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id   BIGINT  NOT NULL,
    last_hash TEXT    NOT NULL
);
INSERT INTO ledger_head (singleton, last_id, last_hash)
VALUES (1, 0, 'sha256:0000000000000000000000000000000000000000000000000000000000000000');

-- What each subject (history::Subject key) held since when.
CREATE TABLE state_history (
    subject    TEXT   NOT NULL,
    valid_from BIGINT NOT NULL,
    event_id   BIGINT NOT NULL,
    value      TEXT   NOT NULL,
    PRIMARY KEY (subject, valid_from, event_id)
) WITHOUT ROWID;

CREATE TABLE request_records (
    request_id TEXT             PRIMARY KEY,
    at         BIGINT           NOT NULL,
    cluster    TEXT             NOT NULL,
    slot       TEXT             NOT NULL CHECK (slot IN ('blue', 'green')),
    model_id   TEXT             NOT NULL,
    version    TEXT             NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL CHECK (latency_ms >= 0),
    outcome    TEXT
);
