-- Identity and promotions, sqlite. Kept in step with ../postgres/0002_identity.sql.
-- Secrets are never stored: passwords as argon2 PHC strings, API tokens and
-- session ids as SHA-256 hex of the random value the client holds.

CREATE TABLE users (
    username      TEXT   PRIMARY KEY,
    role          TEXT   NOT NULL CHECK (role IN ('viewer', 'deployer', 'approver', 'admin')),
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE api_tokens (
    name       TEXT   PRIMARY KEY,
    username   TEXT   NOT NULL REFERENCES users (username),
    token_hash TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE sessions (
    id_hash    TEXT   PRIMARY KEY,
    username   TEXT   NOT NULL REFERENCES users (username),
    csrf_token TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Failed sign-ins, for rate limiting across servers (the ledger has the
-- events; this is the indexed count). Old rows are pruned on insert.
CREATE TABLE sign_in_failures (
    username TEXT   NOT NULL,
    address  TEXT   NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_by_username ON sign_in_failures (username, at);
CREATE INDEX sign_in_failures_by_address ON sign_in_failures (address, at);

-- ids are assigned by the writer holding the ledger head (max + 1).
CREATE TABLE promotions (
    id                 BIGINT PRIMARY KEY,
    model_id           TEXT   NOT NULL,
    version            TEXT   NOT NULL,
    environment        TEXT   NOT NULL REFERENCES environments (name),
    to_stage           TEXT   NOT NULL,
    config_hash        TEXT   NOT NULL,
    reason             TEXT   NOT NULL,
    requested_by       TEXT   NOT NULL,
    requested_at       BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    required_approvals BIGINT NOT NULL CHECK (required_approvals >= 1),
    status             TEXT   NOT NULL CHECK (status IN ('pending', 'applied', 'rejected', 'expired')),
    decided_at         BIGINT,
    decided_by         TEXT,
    decision_reason    TEXT,
    FOREIGN KEY (model_id, version) REFERENCES versions (model_id, version)
);
CREATE INDEX promotions_by_status ON promotions (status, expires_at);

-- One approval per person per promotion, bound to the config it approved.
CREATE TABLE promotion_approvals (
    promotion_id BIGINT NOT NULL REFERENCES promotions (id),
    approver     TEXT   NOT NULL,
    actor        TEXT   NOT NULL,
    config_hash  TEXT   NOT NULL,
    reason       TEXT,
    at           BIGINT NOT NULL,
    PRIMARY KEY (promotion_id, approver)
);
