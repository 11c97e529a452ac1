-- A requester may withdraw their own pending promotion (issue 22 item 7): the status CHECK
-- gains 'withdrawn'. Kept in step with ../postgres/0030_promotion_withdrawn.sql.
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt (new table, rows
-- copied, old dropped, new renamed, indexes made again), inside the migration's transaction.
-- Foreign keys stay on (sqlx runs every SQLite migration in a transaction, where
-- `PRAGMA foreign_keys` does nothing), so promotion_approvals, which refers to promotions, is
-- rebuilt beside it and dropped first: dropping a parent row that children still name would
-- fail at commit. Renaming promotions_new makes promotion_approvals_new refer to promotions.
CREATE TABLE promotions_new (
    id                   BIGINT PRIMARY KEY,
    model_id             TEXT   NOT NULL,
    version              TEXT   NOT NULL,
    environment          TEXT   NOT NULL REFERENCES environments (name),
    to_stage             TEXT   NOT NULL,
    config_hash          TEXT   NOT NULL,
    reason               TEXT   NOT NULL,
    requested_by         TEXT   NOT NULL,
    requested_at         BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    required_approvals   BIGINT NOT NULL CHECK (required_approvals >= 1),
    status               TEXT   NOT NULL CHECK (status IN ('pending', 'applied', 'rejected', 'expired', 'withdrawn')),
    decided_at           BIGINT,
    decided_by           TEXT,
    decision_reason      TEXT,
    policy               TEXT,
    requester_groups     TEXT   NOT NULL DEFAULT '[]',
    applied_requirements TEXT,
    FOREIGN KEY (model_id, version) REFERENCES versions (model_id, version)
);
INSERT INTO promotions_new (
    id, model_id, version, environment, to_stage, config_hash, reason, requested_by,
    requested_at, expires_at, required_approvals, status, decided_at, decided_by,
    decision_reason, policy, requester_groups, applied_requirements
)
SELECT
    id, model_id, version, environment, to_stage, config_hash, reason, requested_by,
    requested_at, expires_at, required_approvals, status, decided_at, decided_by,
    decision_reason, policy, requester_groups, applied_requirements
FROM promotions;
CREATE TABLE promotion_approvals_new (
    promotion_id    BIGINT NOT NULL REFERENCES promotions_new (id),
    approver        TEXT   NOT NULL,
    actor           TEXT   NOT NULL,
    config_hash     TEXT   NOT NULL,
    reason          TEXT,
    at              BIGINT NOT NULL,
    approver_groups TEXT   NOT NULL DEFAULT '[]',
    PRIMARY KEY (promotion_id, approver)
);
INSERT INTO promotion_approvals_new (promotion_id, approver, actor, config_hash, reason, at, approver_groups)
SELECT promotion_id, approver, actor, config_hash, reason, at, approver_groups FROM promotion_approvals;
DROP TABLE promotion_approvals;
DROP TABLE promotions;
ALTER TABLE promotions_new RENAME TO promotions;
ALTER TABLE promotion_approvals_new RENAME TO promotion_approvals;
CREATE INDEX promotions_by_status ON promotions (status, expires_at);
CREATE INDEX promotions_by_version ON promotions (model_id, version);
