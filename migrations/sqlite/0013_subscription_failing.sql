-- A subscription failing for longer than SWITCHYARD_WEBHOOK_FAILING_ALERT_S, SQLite. Kept in step
-- with ../postgres/0013_subscription_failing.sql.
-- failing_since: the first failed attempt since the last success (NULL while healthy).
-- failing_reported: when `subscription.failing` was recorded for this streak (raised once;
-- `subscription.recovered` clears it at the next success).
ALTER TABLE subscriptions ADD COLUMN failing_since BIGINT;
ALTER TABLE subscriptions ADD COLUMN failing_reported BIGINT;
