//! The browser console: Leptos routes (server-rendered pages, server
//! functions, the wasm/CSS bundle) and the services the app's server
//! functions call, implemented on top of the store.

use axum::Router;

use crate::state::AppState;

/// The console's routes; merged by `startup` after the REST API.
pub async fn router(_state: AppState) -> anyhow::Result<Router> {
    Ok(Router::new())
}
