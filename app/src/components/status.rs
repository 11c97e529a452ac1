use leptos::prelude::*;

use crate::error::AppError;

/// What shows while a page waits for the server.
#[component]
pub fn Loading(#[prop(into)] what: String) -> impl IntoView {
    view! { <p class="loading" role="status">{format!("Loading {what}…")}</p> }
}

/// A server error in plain words, where the page's data would have been.
#[component]
pub fn ErrorNote(#[prop(into)] doing: String, error: AppError) -> impl IntoView {
    set_page_status(error.http_status());
    view! {
        <p class="error" role="alert">
            <strong>{format!("Could not {doing}. ")}</strong>
            {error.into_message()}
        </p>
    }
}

/// Sets the HTTP status of the page being rendered on the server (an
/// unknown model answers 404, not 200 with an error box); in the browser,
/// nothing.
pub fn set_page_status(status: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(options), Ok(code)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        server_fn::http_export::StatusCode::from_u16(status),
    ) {
        options.set_status(code);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = status;
}

/// The page for an address no route knows: 404, in the normal layout, with
/// the way back.
#[component]
pub fn NotFound() -> impl IntoView {
    set_page_status(404);
    view! {
        <leptos_meta::Title text="Page not found · Switchyard"/>
        <div class="page-head">
            <h1>"Page not found"</h1>
            <p class="lede">"No console page has this address. It may have been mistyped, or the link is out of date."</p>
        </div>
        <p><a class="button" href="/">"Go to the overview"</a></p>
    }
}
