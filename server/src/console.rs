//! The browser console: Leptos routes (server-rendered pages, server
//! functions, the wasm/CSS bundle), the sign-in and sign-out form posts, and
//! the services the app's server functions call, implemented on top of the
//! store for the signed-in user.
//!
//! Every console request passes `auth::session::console_gate` first: it
//! finds the session, enforces CSRF on anything but GET/HEAD, and redirects
//! signed-out page views to `/signin`. Services are provided only with a
//! session, so every server function refuses without one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use app::error::AppError;
use app::services::{DynServices, Services};
use app::{shell, App};
use app::session::SignedInUser;
use axum::http::request::Parts;
use axum::routing::post;
use axum::{middleware, Router};
use leptos::prelude::{provide_context, use_context, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use switchyard_domain::access::Role;
use switchyard_domain::types::Overview;

use crate::auth;
use crate::state::AppState;
use crate::store::identity::Session;
use crate::store::StoreError;

/// The console's routes; merged by `startup` after the REST API.
pub async fn router(state: AppState) -> anyhow::Result<Router> {
    let options = leptos_options();
    let routes = generate_route_list(App);
    let app_fn = {
        let options = options.clone();
        move || shell(options.clone())
    };
    let context = {
        let state = state.clone();
        move || provide_session_context(&state)
    };
    let forms = Router::new()
        .route("/signin", post(auth::signin::sign_in))
        .route("/signout", post(auth::signin::sign_out))
        .with_state(state.clone());
    Ok(Router::new()
        .leptos_routes_with_context(&options, routes, context, app_fn)
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options)
        .merge(forms)
        .layer(middleware::from_fn_with_state(state, auth::session::console_gate)))
}

/// With the session the gate found: the user for the header, and services
/// acting for them. Without one, nothing — so `services()` refuses.
fn provide_session_context(state: &AppState) {
    let Some(session) = use_context::<Parts>().and_then(|p| p.extensions.get::<Session>().cloned()) else {
        return;
    };
    let user = SignedInUser {
        username: session.identity.username.clone(),
        role: session.identity.role,
        csrf_token: session.csrf_token,
    };
    provide_context(user.clone());
    let services: DynServices = Arc::new(StoreServices { state: state.clone(), user });
    provide_context(services);
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

/// The app's services, on top of the store, for one signed-in user.
struct StoreServices {
    state: AppState,
    user: SignedInUser,
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
    fn user(&self) -> &SignedInUser {
        &self.user
    }

    async fn overview(&self) -> Result<Overview, AppError> {
        self.user.require(Role::Viewer, "reading the overview")?;
        let store = &self.state.store;
        let environments = store.list_environments().await.map_err(to_app_error)?;
        let models = store.list_models().await.map_err(to_app_error)?;
        Ok(Overview { environments, models })
    }
}
