-- The drift watcher's last look at each cluster (postgres; kept in step with
-- ../sqlite/0022_cluster_observed.sql): drift::Observation as JSON (when it
-- looked, what the driver said runs or why it could not say, and the drift
-- last recorded in the ledger with that event's id). NULL: never looked.
-- Written only by ClusterStore::record_observation, which re-checks it in
-- the same transaction as the ledger event, so two servers watching one
-- database record each change of drift once.
ALTER TABLE clusters ADD COLUMN observed TEXT;
