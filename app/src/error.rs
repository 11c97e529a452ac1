//! The one error type server functions return: a code and a message meant
//! for the person looking at the page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use switchyard_domain::access::Role;

use crate::session::SignedInUser;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: String,
    pub message: String,
}

impl AppError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        AppError { code: code.to_owned(), message: message.into() }
    }

    /// No valid session: the console's server functions refuse everything.
    pub fn unauthenticated() -> Self {
        AppError::new("unauthenticated", "You are signed out. Sign in to use the console.")
    }

    /// Signed in, but the role is too low for `what`.
    pub fn forbidden(what: &str, needed: Role, user: &SignedInUser) -> Self {
        AppError::new(
            "forbidden",
            format!("{what} needs the {needed} role; {} has the {} role", user.username, user.role),
        )
    }

    pub fn internal() -> Self {
        AppError::new("internal", "Something went wrong on the server; the server log has the details.")
    }
}

impl From<switchyard_domain::DomainError> for AppError {
    fn from(e: switchyard_domain::DomainError) -> Self {
        AppError::new(e.code(), e.to_string())
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let message = match value {
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                "The server could not be reached. Check your connection and try again.".to_owned()
            }
            other => other.to_string(),
        };
        AppError::new("server_fn", message)
    }
}
