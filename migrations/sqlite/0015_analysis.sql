-- Metric analysis gates (issue 16). Kept in step with the other engine's 0015_analysis.sql.

-- Analysis templates, managed by admins: `analysis::AnalysisTemplate` as JSON.
CREATE TABLE analysis_templates (
    name       TEXT   PRIMARY KEY,
    template   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT   NOT NULL
);

-- Templates every operation on the cluster runs (JSON list of names), beside
-- those the operation names.
ALTER TABLE clusters ADD COLUMN analysis TEXT;

-- The templates an operation's gates run, copied when it started (JSON list),
-- so editing a template never changes a gate already running.
ALTER TABLE operations ADD COLUMN analysis TEXT;
-- Set (`operations::Pause` as JSON) while the operation waits for a person after
-- an inconclusive analysis; runners do not claim it then.
ALTER TABLE operations ADD COLUMN paused TEXT;
-- Bake time in milliseconds: the last gate passes no sooner than this long after the switch.
ALTER TABLE operations ADD COLUMN bake_ms BIGINT;
