//! The browser console: Leptos routes (server-rendered pages, server
//! functions, the wasm/CSS bundle) and the services the app's server
//! functions call, implemented on top of the store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use app::error::AppError;
use app::services::{DynServices, Services};
use app::{shell, App};
use axum::Router;
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use switchyard_domain::types::Overview;

use crate::state::AppState;
use crate::store::StoreError;

/// The console's routes; merged by `startup` after the REST API.
pub async fn router(state: AppState) -> anyhow::Result<Router> {
    let options = leptos_options();
    let routes = generate_route_list(App);
    let services: DynServices = Arc::new(StoreServices { state });
    let app_fn = {
        let options = options.clone();
        move || shell(options.clone())
    };
    Ok(Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            move || provide_context(services.clone()),
            app_fn,
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options))
}

/// Where the built site (`pkg/switchyard.{js,wasm,css}`) is: `LEPTOS_SITE_ROOT`
/// if set, else `target/site` under the working directory, else next to the
/// binary (`target/<profile>/switchyard` → `target/site`), so the binary
/// finds its assets wherever it is started from.
fn site_root() -> PathBuf {
    if let Some(root) = std::env::var_os("LEPTOS_SITE_ROOT") {
        return PathBuf::from(root);
    }
    let in_cwd = PathBuf::from("target/site");
    if in_cwd.join("pkg").is_dir() {
        return in_cwd;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(|t| t.join("site")))
        .filter(|p| p.join("pkg").is_dir())
        .unwrap_or(in_cwd)
}

fn leptos_options() -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("switchyard")
        .site_root(site_root().to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .build()
}

/// The app's services, on top of the store.
struct StoreServices {
    state: AppState,
}

fn to_app_error(e: StoreError) -> AppError {
    match e {
        StoreError::Domain(d) => d.into(),
        other => {
            tracing::error!(error = %other, "console request failed");
            AppError::internal()
        }
    }
}

#[async_trait::async_trait]
impl Services for StoreServices {
    async fn overview(&self) -> Result<Overview, AppError> {
        let store = &self.state.store;
        let environments = store.list_environments().await.map_err(to_app_error)?;
        let models = store.list_models().await.map_err(to_app_error)?;
        Ok(Overview { environments, models })
    }
}
