//! The Leptos console. Compiled twice: into the server with `ssr` (pages are
//! rendered there and server functions run there) and into wasm with
//! `hydrate` (the same components take over in the browser).

pub mod api;
pub mod components;
pub mod error;
pub mod pages;
pub mod session;
#[cfg(feature = "ssr")]
pub mod services;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::StaticSegment;

use crate::components::layout::Header;
use crate::pages::overview_page::OverviewPage;
use crate::pages::signin_page::SignInPage;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="switchyard" href="/pkg/switchyard.css"/>
        <Title text="Switchyard"/>
        <Router>
            <Header/>
            <main id="main">
                <Routes fallback=|| view! { <p class="empty">"Page not found."</p> }>
                    <Route path=StaticSegment("") view=OverviewPage/>
                    <Route path=StaticSegment("signin") view=SignInPage/>
                </Routes>
            </main>
        </Router>
    }
}
