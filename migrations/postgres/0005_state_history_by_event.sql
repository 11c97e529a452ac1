-- The temporal index (server/src/store/temporal.rs) catches up by loading the
-- state rows of the ledger events after the last one it applied.
CREATE INDEX state_history_by_event ON state_history (event_id);
