use leptos::prelude::*;
use server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::session::SignedInUser;

/// The signed-in user, or none; for the header. A GET, as it changes nothing.
#[server(prefix = "/console/fn", endpoint = "get_signed_in_user", input = GetUrl)]
pub async fn get_signed_in_user() -> Result<Option<SignedInUser>, AppError> {
    Ok(use_context::<SignedInUser>())
}
