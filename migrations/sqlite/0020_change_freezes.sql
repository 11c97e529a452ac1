-- Change freezes and emergency overrides (issue 15 item 5), sqlite. Kept in step with ../postgres/0020_change_freezes.sql.

-- A window (freeze::Schedule as JSON: one-off or weekly in an IANA time zone) in which the
-- environment takes no promotions and no operations; rollbacks pass. Removing one deletes
-- the row; the ledger keeps freeze.created / freeze.removed.
CREATE TABLE freeze_windows (
    id          BIGINT PRIMARY KEY,
    name        TEXT   NOT NULL,
    environment TEXT   NOT NULL REFERENCES environments (name),
    schedule    TEXT   NOT NULL,
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (environment, name)
);

-- An admin's emergency override of an environment's freezes: in force from its approval by a
-- second person until valid_until.
CREATE TABLE freeze_overrides (
    id           BIGINT PRIMARY KEY,
    environment  TEXT   NOT NULL REFERENCES environments (name),
    reason       TEXT   NOT NULL,
    hours        BIGINT NOT NULL CHECK (hours >= 1),
    requested_by TEXT   NOT NULL,
    requested_at BIGINT NOT NULL,
    approved_by  TEXT,
    approved_at  BIGINT,
    valid_until  BIGINT
);
CREATE INDEX freeze_overrides_by_environment ON freeze_overrides (environment, valid_until);
