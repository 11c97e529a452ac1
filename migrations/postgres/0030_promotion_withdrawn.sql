-- A requester may withdraw their own pending promotion (issue 22 item 7): the status CHECK
-- gains 'withdrawn'. Kept in step with ../sqlite/0030_promotion_withdrawn.sql.
ALTER TABLE promotions DROP CONSTRAINT promotions_status_check;
ALTER TABLE promotions ADD CONSTRAINT promotions_status_check
    CHECK (status IN ('pending', 'applied', 'rejected', 'expired', 'withdrawn'));
