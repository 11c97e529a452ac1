-- The audit log filters by cluster (operations, switches, rollbacks).
CREATE INDEX ledger_by_cluster ON ledger (cluster, id);
