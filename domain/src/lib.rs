//! Switchyard's domain rules, as plain Rust with no I/O.
//!
//! The same code decides on the server and greys out buttons in the browser,
//! so it must compile for wasm too: no sqlx, no tokio, no axum here.

pub mod access;
pub mod analysis;
pub mod audit_export;
pub mod checkpoint;
pub mod clusters;
pub mod config_hash;
pub mod diff;
pub mod drift;
pub mod error;
pub mod freeze;
pub mod history;
pub mod ids;
pub mod ledger;
pub mod lifecycle;
pub mod mlflow;
pub mod operations;
pub mod paging;
pub mod policy;
pub mod promotion;
pub mod reconcile;
pub mod records;
pub mod resolve;
pub mod sso;
pub mod text;
pub mod time;
pub mod types;

pub use error::DomainError;
pub use ids::{FullId, ModelId, VersionName, VersionRef};
pub use lifecycle::Stage;
pub use time::Timestamp;
