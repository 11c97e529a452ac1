-- The router change of the traffic step an operation is running (JSON of
-- `reconcile::RouterIntent`), written before the command is sent and cleared
-- when the step is recorded done or failed. A runner resuming the operation
-- after a crash reconciles it with the router (server/src/operations.rs).
ALTER TABLE operations ADD COLUMN intent TEXT;
