-- Whether a subscription's deliveries may be sent concurrently, out of event order
-- (postgres; kept in step with ../sqlite/0023_subscription_parallel.sql). Off (the
-- default): one subscription's deliveries are sent one after the other in ledger order.
-- On: any due delivery of it may be claimed, by any server, up to SWITCHYARD_WEBHOOK_PARALLEL
-- in flight at once (store/notify_sql.rs, claimable_parallel!).
ALTER TABLE subscriptions ADD COLUMN parallel BOOLEAN NOT NULL DEFAULT FALSE;
