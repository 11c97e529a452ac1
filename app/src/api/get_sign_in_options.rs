use leptos::prelude::*;
use server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::session::SignInOptions;

/// How people may sign in (for the sign-in page; needs no session). A GET,
/// as it changes nothing.
#[server(prefix = "/console/fn", endpoint = "get_sign_in_options", input = GetUrl)]
pub async fn get_sign_in_options() -> Result<SignInOptions, AppError> {
    Ok(use_context::<SignInOptions>().unwrap_or_default())
}
