-- Notification subscriptions and the deliveries outbox, SQLite. Kept in step with
-- ../postgres/0008_notifications.sql. Deliveries are written in the same transaction as
-- the ledger event they carry (store/sql_store.rs, Writer::append).

CREATE TABLE subscriptions (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    -- webhook | chat
    kind        TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    -- store::notify::Filter as JSON: events, models, environments, clusters (empty: any).
    filter      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    created_by  TEXT    NOT NULL,
    -- Circuit breaker: failed attempts in a row, and until when the subscription is paused.
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    paused_until BIGINT
);

-- Signing secrets (whsec_…); never returned by the API after creation. A rotated-out
-- secret keeps signing until expires_at (the overlap), then is ignored.
CREATE TABLE subscription_secrets (
    id              INTEGER PRIMARY KEY,
    subscription_id BIGINT  NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    secret          TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT
);
CREATE INDEX subscription_secrets_of ON subscription_secrets (subscription_id);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    subscription_id BIGINT  NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    -- The ledger event carried; NULL for a test event.
    event_id        BIGINT,
    -- webhook-id: evt_<event id> (the idempotency key of every attempt) or test_<random>.
    message_id      TEXT    NOT NULL,
    -- pending | delivered | dead
    status          TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL,
    -- Retries stop this long after retry_since (the creation, or the last redeliver).
    retry_since     BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_attempt_at BIGINT,
    response_code   BIGINT,
    latency_ms      BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT
);
CREATE INDEX deliveries_pending ON deliveries (subscription_id, id) WHERE status = 'pending';
CREATE INDEX deliveries_of_subscription ON deliveries (subscription_id, id);
-- /metrics counts them; pruning finds old delivered ones.
CREATE INDEX deliveries_dead ON deliveries (id) WHERE status = 'dead';
CREATE INDEX deliveries_delivered ON deliveries (delivered_at) WHERE status = 'delivered';
