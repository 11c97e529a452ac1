//! The Leptos console. Compiled twice: into the server with `ssr` (pages are
//! rendered there and server functions run there) and into wasm with
//! `hydrate` (the same components take over in the browser).

pub mod api;
pub mod components;
pub mod data;
pub mod error;
pub mod format;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod services;
pub mod session;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::components::layout::Header;
use crate::pages::access_page::AccessPage;
use crate::pages::analysis_page::AnalysisPage;
use crate::pages::approvals_page::ApprovalsPage;
use crate::pages::audit_page::AuditLogPage;
use crate::pages::board_page::BoardPage;
use crate::pages::clusters_page::{ClusterPage, ClustersPage};
use crate::pages::confirm_operation_page::ConfirmOperationPage;
use crate::pages::connection_test_page::ConnectionTestPage;
use crate::pages::import_page::{MlflowImportPage, MlflowImportRunPage};
use crate::pages::model_page::ModelPage;
use crate::pages::overview_page::OverviewPage;
use crate::pages::release_page::ReleasePage;
use crate::pages::request_page::RequestPage;
use crate::pages::serving_page::ServingPage;
use crate::pages::signin_page::SignInPage;
use crate::pages::subscriptions_page::{SubscriptionPage, SubscriptionsPage};
use crate::pages::version_page::VersionPage;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <link rel="stylesheet" id="switchyard" href=stylesheet_href()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The stylesheet's address: `/pkg/switchyard.<hash>.css` when cargo-leptos
/// hashed the file names (its `hash.txt` sits next to the server binary,
/// where Leptos' `HydrationScripts` reads the wasm and JS names too).
#[cfg(feature = "ssr")]
fn stylesheet_href() -> String {
    static HREF: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HREF.get_or_init(|| {
        let css_hash = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt")))
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|hashes| {
                hashes.lines().find_map(|line| {
                    let (file, hash) = line.split_once(':')?;
                    (file.trim() == "css").then(|| hash.trim().to_owned())
                })
            });
        match css_hash {
            Some(hash) => format!("/pkg/switchyard.{hash}.css"),
            None => "/pkg/switchyard.css".to_owned(),
        }
    })
    .clone()
}

/// The shell is only rendered on the server; the browser never asks.
#[cfg(not(feature = "ssr"))]
fn stylesheet_href() -> String {
    "/pkg/switchyard.css".to_owned()
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Switchyard"/>
        <Router>
            <Header/>
            <main id="main">
                // Async: each page is sent once its data is in, so it reads
                // complete without JavaScript (streamed chunks need a script).
                <Routes fallback=crate::components::status::NotFound>
                    <Route path=path!("/") view=OverviewPage ssr=SsrMode::Async/>
                    <Route path=path!("/models/:model_id") view=ModelPage ssr=SsrMode::Async/>
                    <Route path=path!("/versions/:full_id") view=VersionPage ssr=SsrMode::Async/>
                    <Route path=path!("/board") view=BoardPage ssr=SsrMode::Async/>
                    <Route path=path!("/clusters") view=ClustersPage ssr=SsrMode::Async/>
                    <Route path=path!("/clusters/:name") view=ClusterPage ssr=SsrMode::Async/>
                    <Route path=path!("/clusters/:name/confirm") view=ConfirmOperationPage ssr=SsrMode::Async/>
                    <Route path=path!("/clusters/:name/test") view=ConnectionTestPage ssr=SsrMode::Async/>
                    <Route path=path!("/analysis") view=AnalysisPage ssr=SsrMode::Async/>
                    <Route path=path!("/approvals") view=ApprovalsPage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=AuditLogPage ssr=SsrMode::Async/>
                    <Route path=path!("/serving") view=ServingPage ssr=SsrMode::Async/>
                    <Route path=path!("/requests") view=RequestPage ssr=SsrMode::Async/>
                    <Route path=path!("/subscriptions") view=SubscriptionsPage ssr=SsrMode::Async/>
                    <Route path=path!("/subscriptions/:name") view=SubscriptionPage ssr=SsrMode::Async/>
                    <Route path=path!("/access") view=AccessPage ssr=SsrMode::Async/>
                    <Route path=path!("/release") view=ReleasePage ssr=SsrMode::Async/>
                    <Route path=path!("/import/mlflow") view=MlflowImportPage ssr=SsrMode::Async/>
                    <Route path=path!("/import/mlflow/:id") view=MlflowImportRunPage ssr=SsrMode::Async/>
                    <Route path=path!("/signin") view=SignInPage/>
                </Routes>
            </main>
        </Router>
    }
}
