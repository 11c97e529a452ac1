use leptos::prelude::*;
use leptos_router::components::A;

/// The bar at the top of every page: product name and navigation.
#[component]
pub fn Header() -> impl IntoView {
    // Effects run only in the browser: this marks the page as interactive.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    view! {
        <header class="topbar" data-hydrated=move || hydrated.get().to_string()>
            <a class="skip" href="#main">"Skip to content"</a>
            <A href="/" attr:class="brand">
                <span class="brand-mark" aria-hidden="true">"⇄"</span>
                " Switchyard"
            </A>
            <nav aria-label="Main">
                <A href="/" exact=true>"Overview"</A>
                <A href="/board">"Lifecycle board"</A>
                <A href="/serving">"Serving at T"</A>
                <A href="/requests">"Request lookup"</A>
                <A href="/audit">"Audit log"</A>
            </nav>
        </header>
    }
}
