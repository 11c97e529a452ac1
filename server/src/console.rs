//! The browser console: Leptos routes (server-rendered pages, server
//! functions, the wasm/CSS bundle), the sign-in and sign-out form posts, the
//! audit export, and the services the app's server functions call,
//! implemented on top of the store for the signed-in user.
//!
//! Every console request passes `auth::session::console_gate` first: it
//! finds the session, enforces CSRF on anything but GET/HEAD, and redirects
//! signed-out page views to `/signin`. Services are provided only with a
//! session, so every server function refuses without one.

mod mlflow_import;
mod release;
mod subscriptions;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use app::data::{
    AccessView, AnalysisView, Approvals, AuditFilter, AuditVerification, AuditView, BindingRow,
    Board, CheckpointCheck, ClusterAnalysis, ClusterForm, ClusterLane, ClusterView,
    ConnectionCheck, ConnectionTest, CreatedSubscription, ModelPage, NotificationStatus,
    PendingPromotion, RollbackMark, RotatedSecret, ServingAnswer, SlotHealthNow,
    SubscriptionDetail, SubscriptionForm, Subscriptions,
};
use app::error::AppError;
use app::services::{DynServices, Services};
use app::session::SignedInUser;
use app::{shell, App};
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{NaiveDateTime, TimeZone};
use futures::{StreamExt, TryStreamExt};
use leptos::prelude::{provide_context, use_context, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};
use switchyard_domain::access::{role_for_operation, Role};
use switchyard_domain::analysis::{AnalysisTemplate, Decision};
use switchyard_domain::clusters::{parse_cluster_name, Cluster};
use switchyard_domain::ledger::LedgerEvent;
use switchyard_domain::lifecycle::MoveVia;
use switchyard_domain::operations::{Operation, OperationKind, OperationState};
use switchyard_domain::promotion::{Promotion, PromotionStatus};
use switchyard_domain::types::{Environment, Overview, RequestLookup, Version, VersionDetail};
use switchyard_domain::{DomainError, FullId, ModelId, Stage, Timestamp};
use tower_http::compression::CompressionLayer;

use crate::analysis::{CheckError, SaveError};
use crate::auth;
use crate::state::AppState;
use crate::store::clusters::OperationRequest;
use crate::store::identity::{Identity, Session};
use crate::store::{AuditQuery, StoreError};

/// Versions per page of a model's versions table.
const VERSIONS_PAGE: u32 = 50;

/// Events per page of the audit log in the console.
const AUDIT_PAGE: u32 = 50;

/// Operations shown per cluster on the clusters page, and on a cluster's own page.
const RECENT_OPERATIONS: u32 = 5;
const CLUSTER_OPERATIONS: u32 = 50;
/// Operations read per cluster for the timeline's rollback markers.
const TIMELINE_OPERATIONS: u32 = 500;

/// Cluster cards made at once for the clusters page and the overview.
const CLUSTER_VIEWS_AT_ONCE: usize = 8;

/// How long a cluster card waits for its driver's answer on slot health.
const LIVE_HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Events per store call when exporting.
const EXPORT_PAGE: u32 = 1000;

/// Decided promotions the approvals inbox lists below the pending ones.
const RECENTLY_DECIDED: usize = 20;

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
    let hashed = options.hash_files;
    let pages = Router::new()
        .leptos_routes_with_context(&options, routes, context.clone(), app_fn)
        // Unknown addresses get the 404 page with the signed-in user's header.
        .fallback(leptos_axum::file_and_error_handler_with_context(
            context.clone(),
            shell,
        ))
        .with_state(options);
    let forms = Router::new()
        .route(
            "/signin",
            post(auth::signin::sign_in).layer(middleware::from_fn_with_state(
                pages.clone(),
                limited_sign_in_page,
            )),
        )
        .route("/signout", post(auth::signin::sign_out))
        .route(auth::oidc::START_PATH, get(auth::oidc::start))
        .route(auth::oidc::CALLBACK_PATH, get(auth::oidc::callback))
        .route("/console/export/audit.csv", get(export_csv))
        .route("/console/export/audit.json", get(export_json))
        .with_state(state.clone());
    Ok(pages
        .layer(middleware::from_fn(refusal_status))
        .merge(forms)
        .layer(middleware::from_fn_with_state(
            state,
            auth::session::console_gate,
        ))
        .layer(middleware::from_fn(move |req, next| {
            cache_control(hashed, req, next)
        }))
        .layer(CompressionLayer::new()))
}

/// What the Analysis page shows of a cluster: the templates it attaches.
fn cluster_analysis(c: Cluster) -> ClusterAnalysis {
    ClusterAnalysis {
        cluster: c.name,
        environment: c.environment,
        templates: c.analysis,
    }
}

fn binding_row(b: crate::store::identity::StoredBinding) -> BindingRow {
    BindingRow {
        id: b.id,
        binding: b.binding,
        created_at: b.created_at,
        created_by: b.created_by,
    }
}

/// With the session the gate found: the user for the header, and services
/// acting for them. Without one, nothing — so `services()` refuses.
fn provide_session_context(state: &AppState) {
    provide_context(app::session::SignInOptions {
        sso_name: state.sso.oidc().map(|o| o.name.clone()),
        local: state.sso.settings.local_sign_in,
    });
    let Some(session) = use_context::<Parts>().and_then(|p| p.extensions.get::<Session>().cloned())
    else {
        return;
    };
    let user = SignedInUser {
        username: session.identity.username.clone(),
        role: session.identity.role,
        grants: session.identity.grants(),
        csrf_token: session.csrf_token,
    };
    provide_context(user.clone());
    let services: DynServices = Arc::new(StoreServices {
        state: state.clone(),
        user,
        identity: session.identity,
    });
    provide_context(services);
}

/// Largest server-function error body read to find its status.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Server functions answer every error with 500 (`server_fn` 0.8 has no
/// per-error status); a refusal — bad input, a missing role, an unknown
/// name — is the caller's mistake, so it is given the status the REST API
/// gives its code (`AppError::http_status`), and `/metrics` counts only the
/// server's own failures as 5xx. Form posts without JavaScript are
/// redirected back by `leptos_axum` and are left as they are.
async fn refusal_status(req: Request, next: Next) -> Response {
    let is_server_fn = req.uri().path().starts_with("/console/fn/");
    let res = next.run(req).await;
    if !is_server_fn || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, ERROR_BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response(),
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// A sign-in refused by the failure limits (429, `Retry-After`) gets the
/// sign-in page as its body, saying so with the username filled in, so a
/// form posted without JavaScript shows why and when to try again.
async fn limited_sign_in_page(State(pages): State<Router>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let Some(limited) = res
        .extensions()
        .get::<auth::signin::SignInLimited>()
        .cloned()
    else {
        return res;
    };
    let query = serde_urlencoded::to_string([
        ("error", "rate_limited"),
        ("username", limited.username.as_str()),
    ])
    .unwrap_or_else(|_| "error=rate_limited".to_owned());
    let page = match axum::http::Request::get(format!("/signin?{query}")).body(Body::empty()) {
        Ok(page) => page,
        Err(e) => {
            tracing::error!(error = %e, "cannot ask for the sign-in page");
            return res;
        }
    };
    let page = match tower::ServiceExt::oneshot(pages, page).await {
        Ok(page) => page,
        Err(never) => match never {},
    };
    let (mut parts, _) = res.into_parts();
    let (page_parts, body) = page.into_parts();
    if let Some(content_type) = page_parts.headers.get(header::CONTENT_TYPE) {
        parts
            .headers
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    Response::from_parts(parts, body)
}

/// The console pages' Content-Security-Policy. Leptos writes the hydration
/// bootstrap and the resolved resources of `SsrMode::Async` as inline
/// scripts, and views set inline `style` attributes, hence `'unsafe-inline'`
/// for both (Leptos' nonces need its `nonce` feature on both builds);
/// `'wasm-unsafe-eval'` lets the page compile its own WebAssembly. Nothing is
/// loaded from elsewhere, and no other site may frame a page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
    script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Hashed bundle files never change under their name: cached for a year.
/// Pages are revalidated every time (they show live state); server function
/// answers, exports, sign-in and sign-out, redirects and refusals (a CSRF
/// refusal, signed out) are not stored at all: none of them may be replayed
/// from a cache, least of all a response that sets or clears a session.
/// Every console response also carries the framing and content policies.
async fn cache_control(hashed: bool, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if is_html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    let private = path == "/signin"
        || path == "/signout"
        || path.starts_with("/auth/")
        || headers.contains_key(header::SET_COOKIE)
        || !(res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED);
    if private {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return res;
    }
    if res.headers().contains_key(header::CACHE_CONTROL) {
        return res;
    }
    let policy = if path.starts_with("/pkg/") {
        if hashed && res.status().is_success() {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }
    } else if is_html {
        "no-cache"
    } else if path.starts_with("/console/") {
        "no-store"
    } else {
        "public, max-age=3600"
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    res
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

/// cargo-leptos (`hash-files = true`) writes the bundle's content hashes to
/// `hash.txt` next to the binary; Leptos reads it from there to name the
/// hashed files. Without it (a build by plain cargo) the names are unhashed.
fn hash_file_present() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt")))
        .is_some_and(|p| p.is_file())
}

fn leptos_options() -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("switchyard")
        .site_root(site_root().to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .hash_files(hash_file_present())
        .build()
}

/// The app's services, on top of the store, for one signed-in user.
struct StoreServices {
    state: AppState,
    user: SignedInUser,
    /// Whom the session speaks for, as the store's rules name them (no token).
    identity: Identity,
}

/// A store error as the console shows it: the code and message the REST API
/// answers with (a domain refusal as it is, an unavailable database as 503
/// `database_unavailable` saying to retry, anything else logged and hidden).
fn to_app_error(e: StoreError) -> AppError {
    let api = crate::error::ApiError::from(e);
    AppError::new(api.code, api.message)
}

fn invalid(message: impl Into<String>) -> AppError {
    DomainError::Invalid(message.into()).into()
}

/// A date and time as the console writes them, `2026-03-03 14:00:00`
/// (seconds optional; a `T` between date and time is read too).
fn console_local_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().replacen('T', " ", 1);
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(&s, f).ok())
}

/// A time from a filter: `2026-03-03 14:00` read as UTC, or RFC 3339.
fn filter_time(s: &str, what: &str) -> Result<Timestamp, AppError> {
    if let Some(naive) = console_local_time(s) {
        return Ok(Timestamp::from_micros(naive.and_utc().timestamp_micros()));
    }
    // An unencoded `+` of an offset arrives as a space.
    Timestamp::parse(&s.trim().replace(' ', "+")).map_err(|_| {
        invalid(format!(
            "The {what} time “{}” is not a time: write it as YYYY-MM-DD HH:MM (UTC), e.g. 2026-03-03 14:00.",
            s.trim()
        ))
    })
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The store's audit query for the console's filters.
fn audit_query(f: &AuditFilter, cursor: Option<&str>, limit: u32) -> Result<AuditQuery, AppError> {
    Ok(AuditQuery {
        after: given(&f.from)
            .map(|s| filter_time(&s, "from"))
            .transpose()?,
        before: given(&f.to).map(|s| filter_time(&s, "to")).transpose()?,
        action: given(&f.action),
        actor: given(&f.actor),
        model: given(&f.model),
        environment: given(&f.env),
        cluster: given(&f.cluster),
        limit,
        cursor: cursor.map(str::to_owned),
    })
}

/// The instant "serving at" asks about, and its time zone.
fn serving_instant(
    at: Option<&str>,
    local: Option<&str>,
    tz: &str,
) -> Result<(Timestamp, chrono_tz::Tz), AppError> {
    let zone: chrono_tz::Tz = tz.parse().map_err(|_| {
        invalid(format!(
            "“{tz}” is not a time zone: choose one from the list, e.g. Europe/Paris or UTC."
        ))
    })?;
    let instant = match (at, local) {
        (Some(at), _) => Timestamp::parse(&at.replace(' ', "+")).map_err(AppError::from)?,
        (None, Some(local)) => {
            let naive = console_local_time(local).ok_or_else(|| {
                invalid(format!(
                    "“{local}” is not a date and time: write it as YYYY-MM-DD HH:MM:SS, e.g. 2026-03-03 14:00:00."
                ))
            })?;
            // In the hour clocks go back the earlier instant is meant; in the hour they skip there is none.
            let dt = zone.from_local_datetime(&naive).earliest().ok_or_else(|| {
                invalid(format!(
                    "{} does not exist in {tz}: the clocks skipped that hour. Pick another time.",
                    local.replace('T', " ")
                ))
            })?;
            Timestamp::from_micros(dt.timestamp_micros())
        }
        (None, None) => Timestamp::now(),
    };
    Ok((instant, zone))
}

impl StoreServices {
    async fn environment_names(&self) -> Result<Vec<String>, AppError> {
        self.state
            .store
            .environment_names()
            .await
            .map_err(to_app_error)
    }

    async fn model_ids(&self) -> Result<Vec<ModelId>, AppError> {
        let models = self.state.store.list_models().await.map_err(to_app_error)?;
        Ok(models.into_iter().map(|m| m.model_id).collect())
    }

    /// A cluster with what its page shows: drift against the environment's
    /// pins, the versions its policy admits, and its last `limit` operations
    /// (without `detail`, the overview's summary: only its running one).
    async fn cluster_view(
        &self,
        cluster: Cluster,
        envs: &[Environment],
        limit: u32,
        detail: bool,
    ) -> Result<ClusterView, AppError> {
        let store = &self.state.store;
        let env = envs.iter().find(|e| e.name == cluster.environment);
        let production = env.is_some_and(|e| e.policy.is_production());
        // The models it serves; a cluster serving nothing yet may take any.
        let mut models: Vec<ModelId> = Vec::new();
        for v in cluster.slots.iter().filter_map(|s| s.full_id.as_ref()) {
            if !models.contains(&v.model_id) {
                models.push(v.model_id.clone());
            }
        }
        if models.is_empty() && detail {
            models = self.model_ids().await?;
        }
        // The environment's pins of those models: all that drift, the
        // allowed list's order and the card use (the overview asks for 100
        // clusters, each in an environment pinning 200 models).
        let pins: Vec<FullId> = env
            .map(|e| {
                e.pins
                    .iter()
                    .filter(|p| models.contains(&p.model_id))
                    .map(|p| p.full_id.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut allowed = Vec::new();
        if let Some(env) = env.filter(|_| detail) {
            for m in &models {
                for v in store.list_versions(m).await.map_err(to_app_error)? {
                    if env.policy.check_pin(&env.name, &v.full_id, v.stage).is_ok() {
                        allowed.push(v.full_id);
                    }
                }
            }
        }
        // The environment's pins first (a version just promoted and pinned
        // is the one to deploy next), then the rest newest first.
        allowed.sort_by_key(|v| !pins.contains(v));
        // The overview's summary needs only the running operation, which the
        // cluster's row names: one read for a cluster running one, none for
        // the others (instead of a query per cluster).
        let operations = if detail {
            store
                .list_operations(&cluster.name, limit)
                .await
                .map_err(to_app_error)?
        } else {
            match cluster.running_operation {
                Some(id) => store
                    .get_operation(id)
                    .await
                    .map_err(to_app_error)?
                    .into_iter()
                    .collect(),
                None => Vec::new(),
            }
        };
        let operator_role = role_for_operation(production);
        let refused = self
            .user
            .require_in(
                operator_role,
                &cluster.environment,
                &format!(
                    "Operating {} (environment {})",
                    cluster.name, cluster.environment
                ),
            )
            .err()
            .map(AppError::into_message);
        // Health now, bounded so that a silent router cannot hold the page.
        let health_now = if detail {
            let live =
                crate::drivers::live_view(&self.state.drivers, &cluster, LIVE_HEALTH_TIMEOUT).await;
            live.health
                .into_iter()
                .map(|(slot, health)| SlotHealthNow { slot, health })
                .collect()
        } else {
            Vec::new()
        };
        let test_refused = self
            .user
            .require_in(
                crate::clusters::TEST_CLUSTER,
                &cluster.environment,
                &format!(
                    "Testing {} (environment {})",
                    cluster.name, cluster.environment
                ),
            )
            .err()
            .map(AppError::into_message);
        let remove_refused = self
            .user
            .require(crate::clusters::MANAGE_CLUSTERS, "Removing a cluster")
            .err()
            .map(AppError::into_message);
        Ok(ClusterView {
            health_now,
            test_refused,
            remove_refused,
            refused,
            drift: switchyard_domain::clusters::drift(&cluster.state, &pins),
            pins,
            operator_role,
            production,
            allowed,
            operations,
            cluster,
        })
    }

    /// The clusters that ever served `model`, with their state history
    /// inside `window` (from the temporal index) and the rollbacks among
    /// their operations that finished inside it.
    async fn cluster_lanes(
        &self,
        model: &ModelId,
        window: app::components::timeline::Window,
    ) -> Result<Vec<ClusterLane>, AppError> {
        let store = &self.state.store;
        let mut lanes = Vec::new();
        let serving = store
            .clusters_serving(model, window.start, window.end)
            .await
            .map_err(to_app_error)?;
        for c in serving {
            let rollbacks = store
                .list_operations(&c.cluster, TIMELINE_OPERATIONS)
                .await
                .map_err(to_app_error)?
                .into_iter()
                .filter_map(|op| {
                    let at = op.finished_at?;
                    // A person's rollback says their reason; a health gate's, the failure.
                    let mark = |to: FullId, trigger: &str, reason: Option<String>| RollbackMark {
                        at,
                        to,
                        actor: op.actor.clone(),
                        trigger: trigger.to_owned(),
                        reason,
                    };
                    match (op.kind, op.state) {
                        (OperationKind::Rollback, OperationState::Succeeded) => {
                            Some(mark(op.full_id.clone(), "person", op.reason.clone()))
                        }
                        (_, OperationState::RolledBack) => {
                            op.before.sole_version().cloned().map(|v| {
                                mark(v, "health gate", op.error.clone().or(op.reason.clone()))
                            })
                        }
                        _ => None,
                    }
                })
                .filter(|m| &m.to.model_id == model)
                .filter(|m| window.start <= m.at && m.at <= window.end)
                .collect();
            lanes.push(ClusterLane {
                cluster: c.cluster,
                environment: c.environment,
                history: c.history,
                rollbacks,
            });
        }
        Ok(lanes)
    }

    /// The same role check as the REST API's operation routes.
    async fn require_operator(&self, cluster: &str, rollback: bool) -> Result<(), AppError> {
        crate::clusters::require_operator(
            self.state.store.as_ref(),
            &self.identity,
            cluster,
            rollback,
        )
        .await
        .map_err(to_app_error)
    }

    /// The user as the store's promotion rules name them (a browser session, no token).
    fn identity(&self) -> Identity {
        self.identity.clone()
    }

    /// `p` with its config diff against what its environment runs now: the
    /// model's pin there (for production without a pin, the version in the
    /// production stage). `versions` caches each model's versions, looked
    /// up once; `pins` are every environment's pins.
    async fn with_diff(
        &self,
        p: Promotion,
        versions: &mut std::collections::HashMap<ModelId, Vec<Version>>,
        pins: &[switchyard_domain::types::Pin],
    ) -> Result<PendingPromotion, AppError> {
        let model = &p.full_id.model_id;
        if !versions.contains_key(model) {
            let list = self
                .state
                .store
                .list_versions(model)
                .await
                .map_err(to_app_error)?;
            versions.insert(model.clone(), list);
        }
        let versions = versions.get(model).map(Vec::as_slice).unwrap_or_default();
        let production = versions.iter().find(|v| v.stage == Stage::Production);
        let pinned = pins
            .iter()
            .find(|pin| pin.environment == p.environment && &pin.model_id == model)
            .and_then(|pin| versions.iter().find(|v| v.full_id == pin.full_id));
        let current = pinned.or(production.filter(|_| p.to_stage == Stage::Production));
        let requested = versions.iter().find(|v| v.full_id == p.full_id);
        let null = serde_json::Value::Null;
        let new = requested.map(|v| &v.config).unwrap_or(&null);
        let diff = match current {
            Some(c) => switchyard_domain::diff::config_diff(&c.config, new),
            None => {
                switchyard_domain::diff::line_diff("", &switchyard_domain::diff::pretty_json(new))
            }
        };
        Ok(PendingPromotion {
            production: production.map(|c| c.full_id.clone()),
            compared_with: current.map(|c| c.full_id.clone()),
            diff,
            promotion: p,
        })
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
        Ok(Overview {
            environments,
            models,
        })
    }

    async fn freezes(&self) -> Result<Vec<switchyard_domain::freeze::FreezeState>, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        self.state
            .store
            .freezes_in_force(Timestamp::now())
            .await
            .map_err(to_app_error)
    }

    async fn model_page(
        &self,
        model: &ModelId,
        page: u32,
        range: &app::api::get_model_page::TimelineRange,
    ) -> Result<ModelPage, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        let store = &self.state.store;
        let now = Timestamp::now();
        let versions = store
            .versions_page(model, page, VERSIONS_PAGE)
            .await
            .map_err(to_app_error)?;
        // Nothing of a model precedes its first registration.
        let (window, window_note) = app::pages::model_page::window_for(
            range.range.as_deref(),
            range.from.as_deref(),
            range.to.as_deref(),
            now,
            Some(versions.first_registered),
        );
        let history = store
            .model_history_between(model, window.start, window.end)
            .await
            .map_err(to_app_error)?;
        let environments = self.environment_names().await?;
        let clusters = self.cluster_lanes(model, window).await?;
        Ok(ModelPage {
            model_id: model.clone(),
            versions: versions.versions,
            versions_page: versions.page,
            history,
            environments,
            now,
            clusters,
            window,
            window_note,
        })
    }

    async fn version_detail(&self, id: &FullId) -> Result<VersionDetail, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        self.state
            .store
            .version_detail(id)
            .await
            .map_err(to_app_error)?
            .ok_or_else(|| {
                AppError::new(
                    "not_found",
                    format!(
                        "Version {id} is not registered: check the id against the model's versions \
                         table, or register it first (switchyard register, or \
                         POST /api/v1/models/{{model_id}}/versions)."
                    ),
                )
            })
    }

    async fn board(&self, model: Option<&ModelId>) -> Result<Board, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        let models = self.model_ids().await?;
        let model_id = match model {
            Some(m) => m.clone(),
            None => models.first().cloned().ok_or_else(|| {
                AppError::new(
                    "not_found",
                    "No model is registered yet: register a version first (switchyard register, \
                         or POST /api/v1/models/{model_id}/versions), then it appears here.",
                )
            })?,
        };
        let versions = self
            .state
            .store
            .list_versions(&model_id)
            .await
            .map_err(to_app_error)?;
        let environments = self
            .state
            .store
            .list_environments()
            .await
            .map_err(to_app_error)?;
        Ok(Board {
            model_id,
            models,
            versions,
            now: Timestamp::now(),
            deprecation_days: self.state.config.deprecation_days,
            environments: environments
                .into_iter()
                .map(|e| (e.name, e.policy))
                .collect(),
            grants: self.user.grants.clone(),
        })
    }

    async fn move_stage(
        &self,
        id: &FullId,
        to: Stage,
        reason: Option<&str>,
    ) -> Result<Version, AppError> {
        let is_admin =
            crate::access::check_stage_move(self.state.store.as_ref(), &self.identity, to)
                .await
                .map_err(to_app_error)?;
        let reason = switchyard_domain::text::required_reason(reason)?;
        let via = MoveVia::Manual { is_admin };
        self.state
            .store
            .change_stage(
                id,
                to,
                via,
                Some(reason),
                &self.user.username,
                Timestamp::now(),
            )
            .await
            .map_err(to_app_error)
    }

    async fn audit_page(
        &self,
        filter: &AuditFilter,
        cursor: Option<&str>,
    ) -> Result<AuditView, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        let query = audit_query(filter, cursor, AUDIT_PAGE)?;
        let page = self
            .state
            .store
            .audit_page(&query)
            .await
            .map_err(to_app_error)?;
        Ok(AuditView {
            page,
            environments: self.environment_names().await?,
        })
    }

    async fn audit_verify(&self, public_key: Option<&str>) -> Result<AuditVerification, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        // A malformed key is refused before anything is read.
        let key = match public_key.map(str::trim).filter(|k| !k.is_empty()) {
            Some(text) => Some(crate::checkpoints::public_key(text).map_err(|mut e| {
                if let Some(first) = e.get(..1).map(str::to_uppercase) {
                    e.replace_range(..1, &first);
                }
                invalid(format!(
                    "{e}. Paste your own copy of the public key the checkpoints are signed with; \
                     nothing was checked."
                ))
            })?),
            None => None,
        };
        let store = self.state.store.as_ref();
        let chain = store.audit_verify().await.map_err(to_app_error)?;
        let checkpoints = match (&self.state.config.checkpoint_file, key) {
            (None, _) => CheckpointCheck::NotConfigured,
            (Some(file), None) => CheckpointCheck::NoKey {
                file: file.display().to_string(),
            },
            (Some(file), Some(key)) => {
                let shown = file.display().to_string();
                match crate::checkpoints::verify(store, file, &key, false).await {
                    Ok(report) => CheckpointCheck::Checked {
                        file: shown,
                        public_key: hex::encode(key.to_bytes()),
                        report,
                    },
                    Err(
                        crate::checkpoints::CheckpointError::Unreadable(problem)
                        | crate::checkpoints::CheckpointError::Refused(problem),
                    ) => CheckpointCheck::Unreadable {
                        file: shown,
                        problem,
                    },
                    Err(crate::checkpoints::CheckpointError::Store { source, .. }) => {
                        return Err(to_app_error(source))
                    }
                }
            }
        };
        Ok(AuditVerification { chain, checkpoints })
    }

    async fn serving_at(
        &self,
        at: Option<&str>,
        local: Option<&str>,
        tz: &str,
        env: Option<&str>,
        model: Option<&ModelId>,
    ) -> Result<ServingAnswer, AppError> {
        let (instant, zone) = serving_instant(at, local, tz)?;
        let serving = self
            .state
            .store
            .serving_at(instant, env, model)
            .await
            .map_err(to_app_error)?;
        let local = instant
            .to_datetime()
            .with_timezone(&zone)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let serving = crate::analysis::with_gate_results(self.state.store.as_ref(), serving)
            .await
            .map_err(to_app_error)?;
        Ok(ServingAnswer {
            serving,
            local,
            tz: zone.name().to_owned(),
            environments: self.environment_names().await?,
            models: self.model_ids().await?,
        })
    }

    async fn request_lookup(&self, request_id: &str) -> Result<RequestLookup, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        let store = self.state.store.as_ref();
        let found = store
            .request_lookup(request_id)
            .await
            .map_err(to_app_error)?
            .ok_or_else(|| {
                AppError::new(
                    "not_found",
                    format!(
                        "No request with id “{request_id}” has been recorded: check the id as your \
                         model server logged it; records arrive through POST /api/v1/request-records."
                    ),
                )
            })?;
        crate::analysis::lookup_with_gate_results(store, found)
            .await
            .map_err(to_app_error)
    }

    async fn clusters(&self, summary: bool) -> Result<Vec<ClusterView>, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        let envs = self
            .state
            .store
            .list_environments()
            .await
            .map_err(to_app_error)?;
        let clusters = self
            .state
            .store
            .list_clusters()
            .await
            .map_err(to_app_error)?;
        // Several at once (each reads its operations and asks its driver for
        // slot health, up to LIVE_HEALTH_TIMEOUT), in the list's order.
        futures::stream::iter(clusters)
            .map(|c| {
                if summary {
                    self.cluster_view(c, &envs, 1, false)
                } else {
                    self.cluster_view(c, &envs, RECENT_OPERATIONS, true)
                }
            })
            .buffered(CLUSTER_VIEWS_AT_ONCE)
            .try_collect()
            .await
    }

    async fn cluster(&self, name: &str) -> Result<ClusterView, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        let cluster = self
            .state
            .store
            .get_cluster(name)
            .await
            .map_err(to_app_error)?
            .ok_or_else(|| {
                AppError::new(
                    "not_found",
                    format!(
                        "There is no cluster named {name}: the Clusters page lists every cluster."
                    ),
                )
            })?;
        let envs = self
            .state
            .store
            .list_environments()
            .await
            .map_err(to_app_error)?;
        self.cluster_view(cluster, &envs, CLUSTER_OPERATIONS, true)
            .await
    }

    async fn cluster_form(&self) -> Result<ClusterForm, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        let environments = self
            .state
            .store
            .list_environments()
            .await
            .map_err(to_app_error)?
            .into_iter()
            .map(|e| e.name)
            .collect();
        let refused = self
            .user
            .require(crate::clusters::MANAGE_CLUSTERS, "Adding a cluster")
            .err()
            .map(AppError::into_message);
        Ok(ClusterForm {
            environments,
            refused,
        })
    }

    async fn add_cluster(
        &self,
        name: &str,
        environment: &str,
        driver: &str,
        config: &str,
    ) -> Result<Cluster, AppError> {
        // Who may, first: a refused person learns nothing from the config's parse.
        self.user
            .require(crate::clusters::MANAGE_CLUSTERS, "Adding a cluster")?;
        let registration = crate::clusters::Registration {
            name: name.to_owned(),
            environment: environment.to_owned(),
            driver: driver.to_owned(),
            config: crate::clusters::parse_config_text(config)?,
        };
        crate::clusters::add(
            self.state.store.as_ref(),
            &self.identity,
            registration,
            Timestamp::now(),
        )
        .await
        .map_err(to_app_error)
    }

    async fn test_cluster(&self, name: &str) -> Result<ConnectionTest, AppError> {
        let (cluster, checks) = crate::clusters::test(
            self.state.store.as_ref(),
            &self.state.drivers,
            &self.identity,
            name,
        )
        .await
        .map_err(to_app_error)?;
        let checks: Vec<ConnectionCheck> = checks
            .into_iter()
            .map(|c| ConnectionCheck {
                check: c.check,
                ok: c.ok,
                detail: c.detail,
                advice: c.advice,
            })
            .collect();
        Ok(ConnectionTest {
            ok: checks.iter().all(|c| c.ok),
            cluster: cluster.name,
            driver: cluster.driver,
            environment: cluster.environment,
            checks,
        })
    }

    async fn remove_cluster(&self, name: &str) -> Result<(), AppError> {
        crate::clusters::remove(
            self.state.store.as_ref(),
            &self.state.drivers,
            &self.identity,
            name,
            Timestamp::now(),
        )
        .await
        .map_err(to_app_error)
    }

    async fn operation(&self, id: i64) -> Result<Operation, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        self.state
            .store
            .get_operation(id)
            .await
            .map_err(to_app_error)?
            .ok_or_else(|| {
                AppError::new(
                    "not_found",
                    format!(
                        "There is no operation {id}: each cluster's page lists its operations."
                    ),
                )
            })
    }

    async fn start_operation(
        &self,
        cluster: &str,
        kind: OperationKind,
        full_id: &FullId,
        rolling_steps: Vec<u8>,
        reason: Option<&str>,
    ) -> Result<Operation, AppError> {
        self.require_operator(cluster, false).await?;
        let reason = switchyard_domain::text::required_reason(reason)?;
        let request = OperationRequest {
            cluster: parse_cluster_name(cluster)?,
            kind,
            full_id: Some(full_id.clone()),
            rolling_steps,
            reason: Some(reason.to_owned()),
            analysis: Vec::new(),
            bake_ms: None,
        };
        self.state
            .store
            .start_operation(request, &self.user.username, Timestamp::now())
            .await
            .map_err(to_app_error)
    }

    async fn roll_back(&self, cluster: &str, reason: Option<&str>) -> Result<Operation, AppError> {
        self.require_operator(cluster, true).await?;
        let reason = switchyard_domain::text::required_reason(reason)?;
        let request = OperationRequest {
            cluster: parse_cluster_name(cluster)?,
            kind: OperationKind::Rollback,
            full_id: None,
            rolling_steps: Vec::new(),
            reason: Some(reason.to_owned()),
            analysis: Vec::new(),
            bake_ms: None,
        };
        self.state
            .store
            .start_operation(request, &self.user.username, Timestamp::now())
            .await
            .map_err(to_app_error)
    }

    async fn approvals(&self) -> Result<Approvals, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        let all = self
            .state
            .store
            .list_promotions(None)
            .await
            .map_err(to_app_error)?;
        let (mut pending, mut decided): (Vec<Promotion>, Vec<Promotion>) = all
            .into_iter()
            .partition(|p| p.status == PromotionStatus::Pending);
        pending.sort_by_key(|p| (p.requested_at, p.id));
        decided.sort_by_key(|p| std::cmp::Reverse((p.decided_at, p.id)));
        decided.truncate(RECENTLY_DECIDED);
        // Every environment's pins, for the pending promotions' diffs: none
        // to read when nothing is pending (the overview asks on every load).
        let pins: Vec<_> = if pending.is_empty() {
            Vec::new()
        } else {
            self.state
                .store
                .list_environments()
                .await
                .map_err(to_app_error)?
                .into_iter()
                .flat_map(|e| e.pins)
                .collect()
        };
        let mut versions = std::collections::HashMap::new();
        let mut with_diffs = Vec::with_capacity(pending.len());
        for p in pending {
            with_diffs.push(self.with_diff(p, &mut versions, &pins).await?);
        }
        Ok(Approvals {
            pending: with_diffs,
            decided,
            username: self.user.username.clone(),
            grants: self.user.grants.clone(),
            now: Timestamp::now(),
        })
    }

    async fn request_promotion(
        &self,
        full_id: &str,
        environment: &str,
        reason: &str,
    ) -> Result<Promotion, AppError> {
        crate::promotions::request(
            &self.state.store,
            &self.identity(),
            full_id,
            environment,
            reason,
            Timestamp::now(),
        )
        .await
        .map_err(to_app_error)
    }

    async fn approve_promotion(
        &self,
        id: i64,
        reason: Option<&str>,
    ) -> Result<Promotion, AppError> {
        crate::promotions::approve(
            &self.state.store,
            &self.identity(),
            id,
            reason,
            Timestamp::now(),
        )
        .await
        .map_err(to_app_error)
    }

    async fn access(&self) -> Result<AccessView, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        let store = &self.state.store;
        let bindings = store
            .list_bindings()
            .await
            .map_err(to_app_error)?
            .into_iter()
            .map(binding_row)
            .collect();
        Ok(AccessView {
            bindings,
            environments: self.environment_names().await?,
            refused: self
                .user
                .require(crate::rest::bindings::CHANGE, "Changing role bindings")
                .err()
                .map(AppError::into_message),
            mine: self.user.grants.describe(),
        })
    }

    async fn add_binding(
        &self,
        subject_kind: &str,
        subject: &str,
        role: &str,
        environment: &str,
    ) -> Result<BindingRow, AppError> {
        self.user
            .require(crate::rest::bindings::CHANGE, "adding a role binding")?;
        let binding = switchyard_domain::access::Binding::new(
            switchyard_domain::access::Subject::parse(subject_kind.trim(), subject)?,
            role.trim().parse()?,
            switchyard_domain::access::Scope::parse(Some(environment))?,
        );
        self.state
            .store
            .create_binding(&binding, &self.user.username, Timestamp::now())
            .await
            .map(binding_row)
            .map_err(to_app_error)
    }

    async fn remove_binding(&self, id: i64) -> Result<BindingRow, AppError> {
        self.user
            .require(crate::rest::bindings::CHANGE, "removing a role binding")?;
        self.state
            .store
            .remove_binding(id, &self.user.username, Timestamp::now())
            .await
            .map(binding_row)
            .map_err(to_app_error)
    }

    async fn release_policy(&self) -> Result<app::data::ReleasePolicyView, AppError> {
        release::view(&self.state, &self.user).await
    }

    async fn set_approval_policy(
        &self,
        environment: &str,
        required_approvals: &str,
        required_groups: &str,
        requester_group_may_approve: &str,
        expiry_hours: &str,
    ) -> Result<app::data::SavedPolicy, AppError> {
        release::set_approval_policy(
            &self.state,
            &self.identity,
            environment,
            required_approvals,
            required_groups,
            requester_group_may_approve,
            expiry_hours,
        )
        .await
    }

    async fn add_freeze(
        &self,
        form: app::data::FreezeForm,
    ) -> Result<switchyard_domain::freeze::FreezeWindow, AppError> {
        release::add_freeze(&self.state, &self.identity, form).await
    }

    async fn remove_freeze(
        &self,
        id: i64,
    ) -> Result<switchyard_domain::freeze::FreezeWindow, AppError> {
        release::remove_freeze(&self.state, &self.identity, id).await
    }

    async fn request_override(
        &self,
        environment: &str,
        reason: &str,
        hours: &str,
    ) -> Result<switchyard_domain::freeze::FreezeOverride, AppError> {
        release::request_override(&self.state, &self.identity, environment, reason, hours).await
    }

    async fn approve_override(
        &self,
        id: i64,
    ) -> Result<switchyard_domain::freeze::FreezeOverride, AppError> {
        release::approve_override(&self.state, &self.identity, id).await
    }

    async fn analysis(&self) -> Result<AnalysisView, AppError> {
        self.user.require(Role::Viewer, "reading the console")?;
        let store = &self.state.store;
        let templates = store
            .list_analysis_templates()
            .await
            .map_err(to_app_error)?;
        let clusters = store
            .list_clusters()
            .await
            .map_err(to_app_error)?
            .into_iter()
            .map(cluster_analysis)
            .collect();
        Ok(AnalysisView {
            templates,
            clusters,
            refused: self
                .user
                .require(Role::Admin, "Changing analysis templates")
                .err()
                .map(AppError::into_message),
        })
    }

    async fn save_analysis_template(
        &self,
        template: AnalysisTemplate,
        reason: Option<&str>,
    ) -> Result<bool, AppError> {
        self.user
            .require(Role::Admin, "saving an analysis template")?;
        crate::analysis::save_template(
            self.state.store.as_ref(),
            template,
            &self.user.username,
            reason,
            Timestamp::now(),
        )
        .await
        .map_err(|e| match e {
            SaveError::Check(CheckError::Invalid(m)) => invalid(m),
            SaveError::Check(CheckError::Unreachable(m)) => {
                AppError::new("prometheus_unreachable", m)
            }
            SaveError::Store(e) => to_app_error(e),
        })
    }

    async fn remove_analysis_template(
        &self,
        name: &str,
        reason: Option<&str>,
    ) -> Result<(), AppError> {
        self.user
            .require(Role::Admin, "removing an analysis template")?;
        crate::analysis::remove_template(
            self.state.store.as_ref(),
            name,
            &self.user.username,
            reason,
            Timestamp::now(),
        )
        .await
        .map_err(to_app_error)
    }

    async fn set_cluster_analysis(
        &self,
        cluster: &str,
        templates: Vec<String>,
    ) -> Result<ClusterAnalysis, AppError> {
        self.user
            .require(Role::Admin, "attaching analysis templates to a cluster")?;
        self.state
            .store
            .set_cluster_analysis(cluster, templates, &self.user.username, Timestamp::now())
            .await
            .map(cluster_analysis)
            .map_err(to_app_error)
    }

    async fn decide_operation(
        &self,
        id: i64,
        decision: Decision,
        reason: Option<&str>,
    ) -> Result<Operation, AppError> {
        crate::clusters::decide(
            self.state.store.as_ref(),
            &self.identity,
            id,
            decision,
            reason,
            Timestamp::now(),
        )
        .await
        .map_err(to_app_error)
    }

    async fn reject_promotion(&self, id: i64, reason: &str) -> Result<Promotion, AppError> {
        crate::promotions::reject(
            &self.state.store,
            &self.identity(),
            id,
            reason,
            Timestamp::now(),
        )
        .await
        .map_err(to_app_error)
    }

    async fn withdraw_promotion(&self, id: i64, reason: &str) -> Result<Promotion, AppError> {
        crate::promotions::withdraw(
            &self.state.store,
            &self.identity(),
            id,
            reason,
            Timestamp::now(),
        )
        .await
        .map_err(to_app_error)
    }

    async fn mlflow_imports(&self) -> Result<app::data::MlflowImports, AppError> {
        mlflow_import::page(&self.state, &self.user).await
    }

    async fn start_mlflow_import(
        &self,
        form: app::data::MlflowImportForm,
    ) -> Result<app::data::ImportRunView, AppError> {
        mlflow_import::start(&self.state, &self.user, form).await
    }

    async fn mlflow_import(&self, id: &str) -> Result<app::data::ImportRunView, AppError> {
        mlflow_import::run(&self.state, &self.user, id).await
    }

    async fn subscriptions(&self) -> Result<Subscriptions, AppError> {
        subscriptions::list(&self.state, &self.user).await
    }

    async fn subscription(&self, name: &str) -> Result<SubscriptionDetail, AppError> {
        subscriptions::detail(&self.state, &self.user, name).await
    }

    async fn create_subscription(
        &self,
        form: &SubscriptionForm,
    ) -> Result<CreatedSubscription, AppError> {
        subscriptions::create(&self.state, &self.user, form).await
    }

    async fn delete_subscription(&self, name: &str) -> Result<(), AppError> {
        subscriptions::delete(&self.state, &self.user, name).await
    }

    async fn send_test_message(&self, name: &str) -> Result<(), AppError> {
        subscriptions::send_test(&self.state, &self.user, name).await
    }

    async fn redeliver(&self, delivery_id: i64) -> Result<(), AppError> {
        subscriptions::redeliver(&self.state, &self.user, delivery_id).await
    }

    async fn rotate_subscription_secret(
        &self,
        name: &str,
        overlap_hours: Option<i64>,
    ) -> Result<RotatedSecret, AppError> {
        subscriptions::rotate(&self.state, &self.user, name, overlap_hours).await
    }

    async fn notification_status(&self) -> Result<NotificationStatus, AppError> {
        subscriptions::status(&self.state, &self.user).await
    }
}

// ---- audit export ----

#[derive(Clone, Copy)]
enum ExportFormat {
    Csv,
    Json,
}

async fn export_csv(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    Query(filter): Query<AuditFilter>,
) -> Response {
    match session {
        Some(_) => export(state, filter, ExportFormat::Csv),
        None => signed_out(),
    }
}

async fn export_json(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    Query(filter): Query<AuditFilter>,
) -> Response {
    match session {
        Some(_) => export(state, filter, ExportFormat::Json),
        None => signed_out(),
    }
}

/// Every role may read the ledger; without a session nothing is exported.
fn signed_out() -> Response {
    (StatusCode::UNAUTHORIZED, "sign in to export the audit log").into_response()
}

/// Streams every event the filters select, newest first, a store page at a
/// time, so an export of the whole ledger never sits in memory at once.
fn export(state: AppState, filter: AuditFilter, format: ExportFormat) -> Response {
    let first = match audit_query(&filter, None, EXPORT_PAGE) {
        Ok(q) => q,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, e.into_message()).into_response(),
    };
    let store = state.store.clone();
    let pages = futures::stream::try_unfold(Some(first), move |query| {
        let store = store.clone();
        async move {
            let Some(query) = query else { return Ok(None) };
            let page = store.audit_page(&query).await?;
            let next = page.next_cursor.clone().map(|c| AuditQuery {
                cursor: Some(c),
                ..query.clone()
            });
            Ok::<_, StoreError>(Some((page.events, next)))
        }
    });
    let body = pages.enumerate().map(move |(i, page)| {
        page.map(|events| render_page(format, i == 0, &events))
            .map_err(|e| {
                tracing::error!(error = %e, "audit export failed");
                std::io::Error::other("the audit export failed; see the server log")
            })
    });
    let (head, tail, content_type, name) = match format {
        ExportFormat::Csv => (
            CSV_HEADER,
            "",
            "text/csv; charset=utf-8",
            "switchyard-audit.csv",
        ),
        ExportFormat::Json => ("[", "]\n", "application/json", "switchyard-audit.json"),
    };
    let stream = futures::stream::once(async move { Ok(head.to_owned()) })
        .chain(body)
        .chain(futures::stream::once(async move { Ok(tail.to_owned()) }))
        .map_ok(axum::body::Bytes::from);
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

const CSV_HEADER: &str =
    "id,at,actor,action,model_id,version,environment,cluster,reason,details,prev_hash,hash\n";

fn render_page(format: ExportFormat, first_page: bool, events: &[LedgerEvent]) -> String {
    let mut out = String::new();
    for (i, e) in events.iter().enumerate() {
        match format {
            ExportFormat::Csv => {
                let fields = [
                    e.id.to_string(),
                    e.at.to_rfc3339(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.model_id.clone().unwrap_or_default(),
                    e.version.clone().unwrap_or_default(),
                    e.environment.clone().unwrap_or_default(),
                    e.cluster.clone().unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                    e.details.to_string(),
                    e.prev_hash.clone(),
                    e.hash.clone(),
                ];
                let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&row.join(","));
                out.push('\n');
            }
            ExportFormat::Json => {
                if !(first_page && i == 0) {
                    out.push(',');
                }
                out.push_str("\n  ");
                out.push_str(&serde_json::to_string(e).unwrap_or_else(|_| "null".into()));
            }
        }
    }
    if matches!(format, ExportFormat::Json) && first_page && events.is_empty() {
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
/// A cell that a spreadsheet would read as a formula (it begins with `=`,
/// `+`, `-`, `@`, a tab or a carriage return) gets a leading `'` (OWASP's
/// rule against CSV injection), so `=HYPERLINK(…)` stays text.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_quotes_or_newlines_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_run_as_formulas_are_escaped() {
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        for cell in ["+1", "-1+2", "@SUM(A1)", "\tx"] {
            assert!(csv_field(cell).starts_with('\''), "{cell}");
        }
        assert_eq!(csv_field("a=b"), "a=b", "only a leading sign counts");
    }

    #[test]
    fn filter_times_are_rfc3339_or_a_picker_value_read_as_utc() {
        let utc = Timestamp::parse("2026-03-03T14:00:00Z").expect("valid");
        assert_eq!(filter_time("2026-03-03T14:00", "from"), Ok(utc));
        assert_eq!(filter_time("2026-03-03T15:00:00 01:00", "from"), Ok(utc));
        let err = filter_time("tuesday", "from").expect_err("not a time");
        assert!(err.message.contains("“tuesday”"), "{}", err.message);
    }

    #[test]
    fn the_consoles_own_date_format_is_read_with_a_space_or_a_t() {
        let want = Timestamp::parse("2026-03-03T14:00:00Z").expect("valid");
        for text in [
            "2026-03-03 14:00",
            "2026-03-03 14:00:00",
            "2026-03-03T14:00",
            " 2026-03-03 14:00:00 ",
        ] {
            assert_eq!(filter_time(text, "from").expect(text), want, "{text}");
            let (t, _) = serving_instant(None, Some(text), "UTC").expect(text);
            assert_eq!(t, want, "{text}");
        }
        // RFC 3339 with an offset whose `+` arrived as a space still reads.
        assert_eq!(
            filter_time("2026-03-03T15:00:00 01:00", "from").expect("offset"),
            want
        );
    }

    #[test]
    fn a_local_time_is_read_in_the_zone_chosen() {
        let (t, _) =
            serving_instant(None, Some("2026-03-03T15:00"), "Europe/Paris").expect("valid");
        assert_eq!(t, Timestamp::parse("2026-03-03T14:00:00Z").expect("valid"));
        let (t, _) =
            serving_instant(None, Some("2026-07-03T15:00:30"), "Europe/Paris").expect("valid");
        assert_eq!(t, Timestamp::parse("2026-07-03T13:00:30Z").expect("valid"));
    }

    #[test]
    fn a_time_skipped_by_daylight_saving_or_an_unknown_zone_is_refused_in_plain_words() {
        let err = serving_instant(None, Some("2026-03-29T02:30"), "Europe/Paris")
            .expect_err("skipped hour");
        assert!(err.message.contains("skipped"), "{}", err.message);
        let err = serving_instant(None, None, "Mars/Olympus").expect_err("no such zone");
        assert!(err.message.contains("not a time zone"), "{}", err.message);
    }
}
