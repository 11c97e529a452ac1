//! Building and running the server: open and migrate the store, bind the
//! listener, assemble the REST API and the console with their layers.
//! A library function so that tests start the real server on port 0.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use axum::{middleware, Router};
use tokio::net::TcpListener;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::config::Config;
use crate::rest::metrics::{self, Metrics};
use crate::state::AppState;
use crate::store::DynStore;

/// No request may take longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Application {
    listener: TcpListener,
    port: u16,
    router: Router,
    drivers: crate::drivers::Drivers,
    mlflow: crate::mlflow::webhook::FollowTrigger,
    imports: crate::mlflow::runs::ImportRuns,
    store: DynStore,
}

impl Application {
    /// Builds the server with the single sign-on settings of the environment
    /// (`SWITCHYARD_OIDC_*`, `SWITCHYARD_JWT_*`, `SWITCHYARD_LOCAL_SIGNIN`; see `sso`).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let sso = crate::sso::SsoSettings::from_env()?;
        Self::build_with_sso(config, sso).await
    }

    pub async fn build_with_sso(
        config: Config,
        sso: crate::sso::SsoSettings,
    ) -> anyhow::Result<Application> {
        let sso = Arc::new(crate::sso::Sso::new(sso)?);
        let store = crate::store::connect(&config.database_url, config.store_settings())
            .await
            .context("cannot open the database named by DATABASE_URL")?;
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let port = listener
            .local_addr()
            .context("the listener has no local address")?
            .port();
        let drivers = crate::drivers::Drivers::default();
        let mlflow = crate::mlflow::webhook::FollowTrigger::default();
        let imports = crate::mlflow::runs::ImportRuns::default();
        let state = AppState {
            store: store.clone(),
            config: Arc::new(config),
            drivers: drivers.clone(),
            mlflow: mlflow.clone(),
            imports: imports.clone(),
            sso: sso.clone(),
        };
        // Discovered now when the provider is up; otherwise at the first sign-in.
        if sso.oidc().is_some() {
            tokio::spawn(async move {
                sso.provider().await;
            });
        }
        let router = app(state).await?;
        Ok(Application {
            listener,
            port,
            router,
            drivers,
            mlflow,
            imports,
            store,
        })
    }

    /// The cluster drivers the server's handlers use; give them to the
    /// operation runner so both see the same routers.
    pub fn drivers(&self) -> crate::drivers::Drivers {
        self.drivers.clone()
    }

    /// Where the MLflow webhook endpoint sends its passes: `serve` connects the follow job to it.
    pub fn mlflow_trigger(&self) -> crate::mlflow::webhook::FollowTrigger {
        self.mlflow.clone()
    }

    /// The console's MLflow imports: `serve` gives them the configured sources' credentials.
    pub fn mlflow_imports(&self) -> crate::mlflow::runs::ImportRuns {
        self.imports.clone()
    }

    /// The port actually bound (useful when the configured one was 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until ctrl-c or SIGTERM, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "listening");
        // The peer address is what sign-in rate limits count per client.
        let service = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let serve = axum::serve(self.listener, service).with_graceful_shutdown(shutdown_signal());
        tokio::select! {
            served = serve => served.context("the server failed"),
            never = watch_changes(self.store) => match never {},
        }
    }
}

/// Keeps the store's change watcher running (it feeds the resolve and token
/// cache); while it is down the cache is not used, so a failure costs speed, never correctness.
async fn watch_changes(store: DynStore) -> std::convert::Infallible {
    loop {
        if let Err(e) = store.watch_changes().await {
            tracing::warn!(error = %e, "the change watcher stopped; reading without cache until it is back");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn app(state: AppState) -> anyhow::Result<Router> {
    let metrics = Arc::new(Metrics::default());
    let router = crate::rest::router(state.clone(), metrics.clone())
        .merge(crate::console::router(state).await?)
        // Layers run bottom-up: the request id is set first, so the trace span sees it.
        .layer(middleware::from_fn(crate::error::json_error_bodies))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn_with_state(metrics, metrics::track_http))
        .layer(crate::telemetry::trace_layer())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(
            crate::telemetry::SequentialRequestIds::new(),
        ));
    Ok(router)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
