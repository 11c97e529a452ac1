-- Approval policies per environment (issue 15 item 4), postgres. Kept in step with ../sqlite/0019_approval_policies.sql.

-- The environment's policy beside required_approvals (the minimum of distinct approvers):
-- groups each needing one approval (JSON list), whether people sharing a group with the
-- requester may approve, and how long a request waits for its approvals.
ALTER TABLE environments ADD COLUMN required_groups TEXT NOT NULL DEFAULT '[]';
ALTER TABLE environments ADD COLUMN requester_group_may_approve BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE environments ADD COLUMN expiry_hours BIGINT NOT NULL DEFAULT 72;

-- Each promotion keeps the approval policy in force when it was requested (policy::ApprovalPolicy
-- as JSON; NULL for older rows: required_approvals alone), the requester's groups then, and, once
-- applied, the requirements as they were met (JSON list of policy::Requirement).
ALTER TABLE promotions ADD COLUMN policy TEXT;
ALTER TABLE promotions ADD COLUMN requester_groups TEXT NOT NULL DEFAULT '[]';
ALTER TABLE promotions ADD COLUMN applied_requirements TEXT;

-- The approver's groups when they approved (what a required group counts).
ALTER TABLE promotion_approvals ADD COLUMN approver_groups TEXT NOT NULL DEFAULT '[]';
