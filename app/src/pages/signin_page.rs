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
        // The limits of `server/src/auth/signin.rs`.
        "rate_limited" => "Signing in is paused: there were 5 failed sign-ins for this user, or 20 from this \
            address, within 15 minutes. Try again in 15 minutes; until then every attempt is refused, even \
            with the right password, and counts as another failure.",
        "unavailable" => "Signing in is not possible right now; the server log has the details.",
        "local_off" => "Signing in with a local password is switched off here; sign in through the identity provider.",
        _ => "That username and password do not match an enabled user.",
    }
}

/// The sign-in page: "Sign in with <provider>" (a plain link to
/// `/auth/oidc/start`) when single sign-on is configured, and the local
/// form (a plain HTML form posted to `/signin`) unless it is switched off;
/// both work without JavaScript. Refusals come back here with `?error=`
/// (and `username=`), or — past the failed sign-in limit — as the 429
/// answer to the form post itself, rendered for that address while the
/// browser's address stays `/signin`.
#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    // What went wrong and who tried, as the server read them when it
    // rendered the page, handed to the browser inside it: hydration then
    // sees the same page even when the address does not carry them (the
    // 429 above). Every sign-in is a full page load, so nothing changes later.
    let (error_code, username): (Option<String>, Option<String>) =
        SharedValue::new(move || query.with_untracked(|q| (q.get("error"), q.get("username"))))
            .into_inner();
    let error = error_code.as_deref().map(problem);
    // The groups the identity provider sent, when none of them maps to a role.
    let groups = move || {
        query
            .with(|q| q.get("groups"))
            .filter(|_| error_code.as_deref() == Some(SsoFailure::NoRole.code()))
    };
    // Known while rendering on the server (the server provides them for every
    // request) and handed to the browser inside the page, so hydration sees
    // the same form without a round trip.
    let options: SignInOptions =
        SharedValue::new(|| use_context::<SignInOptions>().unwrap_or_default()).into_inner();
    let username = username.unwrap_or_default();
    view! {
        <Title text="Sign in · Switchyard"/>
        <div class="page-head">
            <h1>"Sign in"</h1>
            <p class="lede">"Switchyard answers only people and tokens it can name."</p>
        </div>
        {error.map(|message| view! { <p class="error" role="alert">{message}</p> })}
        {move || groups().map(|g| {
            let seen = if g.is_empty() { "none".to_owned() } else { g };
            view! { <p class="error">"Groups the identity provider sent: " {seen}</p> }
        })}
        {options.sso_name.clone().map(|name| view! {
            <p class="sso">
                <a class="button sso-start" href="/auth/oidc/start">{format!("Sign in with {name}")}</a>
            </p>
        })}
        {options.local.then(|| view! { <LocalForm username=username.clone()/> })}
    }
}

/// The local username and password form (bootstrap and break-glass). After
/// a refused sign-in the username comes back, and the password box has focus.
#[component]
fn LocalForm(username: String) -> impl IntoView {
    let retry = !username.is_empty();
    view! {
        <form class="signin" method="post" action="/signin">
            <label for="username">"Username"</label>
            <input id="username" name="username" type="text" autocomplete="username" required
                value=username autofocus=!retry/>
            <label for="password">"Password"</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required
                autofocus=retry/>
            <button type="submit">"Sign in"</button>
        </form>
    }
}
