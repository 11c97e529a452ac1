-- Options of a subscription's destination kind, as JSON (postgres; kept in step with
-- ../sqlite/0021_subscription_options.sql). NULL for webhook and chat. For
-- mlflow-alias (the MLflow write-back, configured by SWITCHYARD_MLFLOW_WRITE_BACK):
-- {"aliases": {"<environment>": ["<alias>", ...]}}.
ALTER TABLE subscriptions ADD COLUMN options TEXT;
