use leptos::prelude::*;
use leptos_router::components::A;

/// The bar at the top of every page: product name and navigation.
#[component]
pub fn Header() -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="skip" href="#main">"Skip to content"</a>
            <A href="/" attr:class="brand">
                <span class="brand-mark" aria-hidden="true">"⇄"</span>
                " Switchyard"
            </A>
            <nav aria-label="Main">
                <A href="/">"Overview"</A>
            </nav>
        </header>
    }
}
