//! Server functions, one concern per file. Thin: authorize, call a
//! service, map the error. Every one that uses POST names
//! `client = crate::api::client::ConsoleClient`, which sends the CSRF token
//! the server requires.

pub mod add_binding;
pub mod add_cluster;
pub mod add_freeze;
pub mod approve_override;
pub mod approve_promotion;
pub mod client;
pub mod continue_operation;
pub mod create_subscription;
pub mod delete_subscription;
pub mod get_access;
pub mod get_analysis;
pub mod get_approvals;
pub mod get_audit_page;
pub mod get_board;
pub mod get_cluster;
pub mod get_cluster_form;
pub mod get_clusters;
pub mod get_freezes;
pub mod get_mlflow_import;
pub mod get_mlflow_imports;
pub mod get_model_page;
pub mod get_notification_status;
pub mod get_operation;
pub mod get_overview;
pub mod get_release_policy;
pub mod get_serving_at;
pub mod get_sign_in_options;
pub mod get_signed_in_user;
pub mod get_subscription;
pub mod get_subscriptions;
pub mod get_version_detail;
pub mod lookup_request;
pub mod move_stage;
pub mod redeliver;
pub mod reject_promotion;
pub mod remove_analysis_template;
pub mod remove_binding;
pub mod remove_cluster;
pub mod remove_freeze;
pub mod request_override;
pub mod request_promotion;
pub mod roll_back_cluster;
pub mod roll_back_operation;
pub mod rotate_subscription_secret;
pub mod save_analysis_template;
pub mod send_test_message;
pub mod set_approval_policy;
pub mod set_cluster_analysis;
pub mod start_mlflow_import;
pub mod start_operation;
pub mod test_cluster;
pub mod verify_audit_chain;
pub mod withdraw_promotion;

/// After a change made by a plain form post (a browser without JavaScript),
/// the page that shows its result: `leptos_axum` would send the browser
/// back to the form's page, where nothing says what happened. Calls from
/// the hydrated page (which show the result themselves) are left alone.
#[cfg(feature = "ssr")]
pub fn show_after_form_post(path: &str) {
    let plain_post = leptos::prelude::use_context::<http::request::Parts>().is_some_and(|parts| {
        parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
    });
    if plain_post {
        leptos_axum::redirect(path);
    }
}

/// After a plain form post (a browser without JavaScript) that was refused:
/// back to `page` with what was typed (`fields`, as a query string the page
/// fills its form from) and the refusal (`__path`/`__err`, as `leptos_axum`
/// encodes it for the page's `ServerAction`), instead of the bare page the
/// form came from. A field longer than `KEPT_FIELD_MAX` is left out (the
/// address would be too long), with `dropped=FIELD` saying so.
#[cfg(feature = "ssr")]
pub fn back_to_form_after_refusal<S>(
    page: &str,
    fields: &[(&str, &str)],
    error: &crate::error::AppError,
) where
    S: server_fn::ServerFn<Error = crate::error::AppError>,
{
    let plain_post = leptos::prelude::use_context::<http::request::Parts>().is_some_and(|parts| {
        parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
    });
    if !plain_post {
        return;
    }
    let mut pairs = Vec::new();
    for (name, value) in fields {
        if value.len() > KEPT_FIELD_MAX {
            pairs.push(format!("dropped={}", crate::data::encode(name)));
        } else {
            pairs.push(format!("{name}={}", crate::data::encode(value)));
        }
    }
    let base = format!("http://console.invalid{page}?{}", pairs.join("&"));
    let Ok(url) = server_fn::error::ServerFnUrlError::new(S::PATH, error.clone()).to_url(&base)
    else {
        return;
    };
    let back = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    // Only ASCII (percent-encoded) here, so the header value is always valid.
    if back.is_ascii() {
        leptos_axum::redirect(&back);
    }
}

/// The longest typed value a refused plain form post is sent back with.
pub const KEPT_FIELD_MAX: usize = 8 * 1024;

/// A query value as given, or none when it is blank (`?model=`).
pub fn given(v: Option<String>) -> Option<String> {
    v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}
