use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// What went wrong, from the `error` the sign-in handler redirects with.
fn problem(code: &str) -> &'static str {
    match code {
        "rate_limited" => "Too many failed sign-ins for this user or from this address. Wait 15 minutes and try again.",
        "unavailable" => "Signing in is not possible right now; the server log has the details.",
        _ => "That username and password do not match an enabled user.",
    }
}

/// The sign-in form: a plain HTML form posted to `/signin`, so it works
/// without JavaScript; the server answers with a session cookie and a
/// redirect to the overview, or back here with `?error=`.
#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || query.with(|q| q.get("error")).map(|code| problem(&code));
    // After a refused sign-in the username comes back, and the password box has focus.
    let username = move || query.with(|q| q.get("username")).unwrap_or_default();
    let retry = move || query.with(|q| q.get("username").is_some_and(|u| !u.is_empty()));
    view! {
        <Title text="Sign in · Switchyard"/>
        <div class="page-head">
            <h1>"Sign in"</h1>
            <p class="lede">"Switchyard answers only people and tokens it can name."</p>
        </div>
        {move || error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
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
