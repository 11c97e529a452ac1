use leptos::prelude::*;
use switchyard_domain::Stage;

/// A stage as a labelled badge; the colour repeats the word, never replaces it.
#[component]
pub fn StageBadge(stage: Stage) -> impl IntoView {
    view! { <span class=format!("badge stage-{stage}")>{stage.as_str()}</span> }
}
