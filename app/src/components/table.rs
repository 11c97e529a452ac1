//! Table pieces every page uses.

use leptos::prelude::*;

/// A table's header row: one column header (`scope="col"`) per name, and,
/// when given, a last column for each row's buttons (`action`) whose name
/// only screen readers say.
#[component]
pub fn ColumnHeads(
    names: &'static [&'static str],
    #[prop(optional)] action: Option<&'static str>,
) -> impl IntoView {
    view! {
        <thead>
            <tr>
                {names.iter().map(|name| view! { <th scope="col">{*name}</th> }).collect_view()}
                {action.map(|name| view! { <th scope="col"><span class="visually-hidden">{name}</span></th> })}
            </tr>
        </thead>
    }
}
