-- Serving at T names the promotion behind each pin: looked up by version.
CREATE INDEX promotions_by_version ON promotions (model_id, version);
