//! Table pieces every page uses.

use leptos::prelude::*;

/// A table's header row: one column header (`scope="col"`) per name.
#[component]
pub fn ColumnHeads(names: &'static [&'static str]) -> impl IntoView {
    view! {
        <thead>
            <tr>{names.iter().map(|name| view! { <th scope="col">{*name}</th> }).collect_view()}</tr>
        </thead>
    }
}
