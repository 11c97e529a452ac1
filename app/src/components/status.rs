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
    view! {
        <p class="error" role="alert">
            <strong>{format!("Could not {doing}. ")}</strong>
            {error.into_message()}
        </p>
    }
}
