//! Configuration from environment variables (documented in the README).

use std::net::SocketAddr;

use anyhow::Context;

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`, default `sqlite://data/switchyard.db`.
    pub database_url: String,
    /// `SWITCHYARD_ADDR`, default `127.0.0.1:3000`.
    pub addr: SocketAddr,
    /// `LOG_FORMAT=json` for JSON logs; anything else is human-readable.
    pub log_json: bool,
    /// `SWITCHYARD_DEPRECATION_DAYS`, 30–90, default 30.
    pub deprecation_days: u32,
    /// `SWITCHYARD_METRICS_TOKEN`: if set, `/metrics` answers only
    /// `Authorization: Bearer <this>` (a scraper's own secret, not an API token).
    pub metrics_token: Option<String>,
    /// `SWITCHYARD_WEBHOOK_ALLOW_PRIVATE=1`: notification destinations on
    /// loopback and private networks are accepted (refused by default, so a
    /// subscription cannot probe the internal network; tests turn it on).
    pub webhook_allow_private: bool,
    /// `SWITCHYARD_SECRETS_KEY` (32 bytes, base64): webhook signing secrets
    /// are stored sealed with it; without it, as given.
    pub secrets_key: Option<crate::notify::sealed::SecretsKey>,
    /// `SWITCHYARD_CHECKPOINT_FILE`: the signed checkpoint file `serve`
    /// appends to (with `SWITCHYARD_CHECKPOINT_KEY`) and the console's
    /// "Verify chain" checks the ledger against; `None`: no checkpoints.
    pub checkpoint_file: Option<std::path::PathBuf>,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Config> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let addr = var("SWITCHYARD_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
        let deprecation_days = match var("SWITCHYARD_DEPRECATION_DAYS") {
            Some(d) => {
                let d: u32 = d.parse().with_context(|| {
                    format!("SWITCHYARD_DEPRECATION_DAYS={d:?} is not a number of days")
                })?;
                switchyard_domain::lifecycle::deprecation_days(d)?
            }
            None => switchyard_domain::lifecycle::DEPRECATION_DAYS_DEFAULT,
        };
        Ok(Config {
            database_url: var("DATABASE_URL")
                .unwrap_or_else(|| "sqlite://data/switchyard.db".into()),
            addr: addr.parse().with_context(|| {
                format!("SWITCHYARD_ADDR={addr:?} is not an address like 127.0.0.1:3000")
            })?,
            log_json: var("LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
            deprecation_days,
            metrics_token: var("SWITCHYARD_METRICS_TOKEN"),
            webhook_allow_private: var("SWITCHYARD_WEBHOOK_ALLOW_PRIVATE")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            secrets_key: crate::notify::sealed::SecretsKey::from_env()
                .map_err(anyhow::Error::msg)?,
            checkpoint_file: var("SWITCHYARD_CHECKPOINT_FILE")
                .filter(|f| !f.trim().is_empty())
                .map(Into::into),
        })
    }

    pub fn store_settings(&self) -> crate::store::StoreSettings {
        crate::store::StoreSettings {
            deprecation_days: self.deprecation_days,
        }
    }
}
