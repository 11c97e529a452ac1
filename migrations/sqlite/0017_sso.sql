-- Single sign-on, sqlite. Kept in step with ../postgres/0017_sso.sql.
-- A person who signs in through the identity provider is (issuer, subject); their
-- Switchyard user (username) is created at the first sign-in. Name and e-mail are
-- the provider's, refreshed at every sign-in.
CREATE TABLE sso_identities (
    issuer          TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    username        TEXT   NOT NULL UNIQUE REFERENCES users (username),
    display_name    TEXT,
    email           TEXT,
    created_at      BIGINT NOT NULL,
    last_sign_in_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);

-- Sign-ins started and not yet finished: found by the hash of their `state`,
-- deleted when the callback takes them (single use, on any server), and
-- pruned once expired. The nonce and PKCE verifier never leave the server.
CREATE TABLE sso_pending (
    state_hash    TEXT   PRIMARY KEY,
    nonce         TEXT   NOT NULL,
    pkce_verifier TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX sso_pending_by_expiry ON sso_pending (expires_at);

-- The ID token each single sign-on session began with, for RP-initiated logout
-- (`id_token_hint`); taken when the session ends, pruned once expired.
CREATE TABLE sso_sessions (
    session_hash TEXT   PRIMARY KEY,
    id_token     TEXT   NOT NULL,
    expires_at   BIGINT NOT NULL
);
