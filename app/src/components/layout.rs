use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::client::CSRF_ELEMENT_ID;
use crate::session::SignedInUser;

/// The bar at the top of every page: product name, navigation, and the
/// signed-in user with their role and a sign-out button.
#[component]
pub fn Header() -> impl IntoView {
    // Known while rendering on the server (the session's user is in context)
    // and handed to the browser inside the page, so hydration sees the same
    // header without a round trip.
    let user = SharedValue::new(|| use_context::<SignedInUser>()).into_inner();
    // Effects run only in the browser: this marks the page as interactive.
    let admin = user
        .as_ref()
        .is_some_and(|u| u.role.allows(switchyard_domain::access::Role::Admin));
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
                <A href="/clusters">"Clusters"</A>
                <A href="/analysis">"Analysis"</A>
                <A href="/approvals">"Approvals"</A>
                <A href="/serving">"Serving at T"</A>
                <A href="/requests">"Request lookup"</A>
                <A href="/audit">"Audit log"</A>
                {admin.then(|| view! { <A href="/subscriptions">"Subscriptions"</A> })}
                {admin.then(|| view! { <A href="/import/mlflow">"Import"</A> })}
                <A href="/access">"Access"</A>
                <A href="/release">"Release policy"</A>
            </nav>
            {match user {
                Some(u) => view! { <UserBox user=u/> }.into_any(),
                None => view! { <A href="/signin" attr:class="signin-link">"Sign in"</A> }.into_any(),
            }}
        </header>
    }
}

/// Who is signed in, and the sign-out form. Its hidden field carries the
/// CSRF token that plain forms post and the server-function client reads.
#[component]
fn UserBox(user: SignedInUser) -> impl IntoView {
    view! {
        <div class="user" aria-label="Signed in user">
            <span class="user-name">{user.username.clone()}</span>
            <span class="role-badge" data-role=user.role.as_str()>{user.role.as_str()}</span>
            <form method="post" action="/signout">
                <input type="hidden" id=CSRF_ELEMENT_ID name="csrf_token" value=user.csrf_token.clone()/>
                <button type="submit" class="signout">"Sign out"</button>
            </form>
        </div>
    }
}
