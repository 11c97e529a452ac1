-- Indexes for the console's two busiest pages (issue 13).
--
-- The model page's timeline reads a model's stage and pin events inside a
-- window, and each environment's last pin event before it
-- (SELECT_MODEL_HISTORY_BETWEEN): ranges of this index, instead of a walk
-- over every event of the model by ledger_by_version (most of a busy model's
-- events are its operations' steps).
CREATE INDEX ledger_by_model_action ON ledger (model_id, action, at, environment);
-- The overview's model list (SELECT_MODELS) counts each model's versions,
-- takes the last stage change and finds the production version: all from
-- this index, without reading the versions' rows (their configs).
CREATE INDEX versions_by_model_stage ON versions (model_id, stage, stage_since, version);
