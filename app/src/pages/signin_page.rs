use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use switchyard_domain::sso::SsoFailure;

use crate::session::SignInOptions;

/// What went wrong, from the `error` the sign-in handlers redirect with.
fn problem(code: &str) -> &'static str {
    if let Some(failure) = SsoFailure::from_code(code) {
        return failure.message();
    }
    match code {
        "rate_limited" => "Too many failed sign-ins for this user or from this address. Wait 15 minutes and try again.",
        "unavailable" => "Signing in is not possible right now; the server log has the details.",
        "local_off" => "Signing in with a local password is switched off here; sign in through the identity provider.",
        _ => "That username and password do not match an enabled user.",
    }
}

/// The sign-in page: "Sign in with <provider>" (a plain link to
/// `/auth/oidc/start`) when single sign-on is configured, and the local
/// form (a plain HTML form posted to `/signin`) unless it is switched off;
/// both work without JavaScript. Refusals come back here with `?error=`.
#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || query.with(|q| q.get("error")).map(|code| problem(&code));
    // The groups the identity provider sent, when none of them maps to a role.
    let groups = move || {
        query
            .with(|q| q.get("groups"))
            .filter(|_| query.with(|q| q.get("error")).as_deref() == Some(SsoFailure::NoRole.code()))
    };
    // Known while rendering on the server (the server provides them for every
    // request) and handed to the browser inside the page, so hydration sees
    // the same form without a round trip.
    let options: SignInOptions =
        SharedValue::new(|| use_context::<SignInOptions>().unwrap_or_default()).into_inner();
    view! {
        <Title text="Sign in · Switchyard"/>
        <div class="page-head">
            <h1>"Sign in"</h1>
            <p class="lede">"Switchyard answers only people and tokens it can name."</p>
        </div>
        {move || error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
        {move || groups().map(|g| {
            let seen = if g.is_empty() { "none".to_owned() } else { g };
            view! { <p class="error">"Groups the identity provider sent: " {seen}</p> }
        })}
        {options.sso_name.clone().map(|name| view! {
            <p class="sso">
                <a class="button sso-start" href="/auth/oidc/start">{format!("Sign in with {name}")}</a>
            </p>
        })}
        {options.local.then(|| view! { <LocalForm/> })}
    }
}

/// The local username and password form (bootstrap and break-glass).
#[component]
fn LocalForm() -> impl IntoView {
    let query = use_query_map();
    // After a refused sign-in the username comes back, and the password box has focus.
    let username = move || query.with(|q| q.get("username")).unwrap_or_default();
    let retry = move || query.with(|q| q.get("username").is_some_and(|u| !u.is_empty()));
    view! {
        <form class="signin" method="post" action="/signin">
            <label for="username">"Username"</label>
            <input id="username" name="username" type="text" autocomplete="username" required
                value=username autofocus=move || !retry()/>
            <label for="password">"Password"</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required
                autofocus=retry/>
            <button type="submit">"Sign in"</button>
        </form>
    }
}
