//! The one error type server functions return: a code and a message meant
//! for the person looking at the page.

use crate::api::codec::ConsoleJson;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use switchyard_domain::access::Role;

use crate::session::SignedInUser;

/// Boxed, so that it is one pointer wide: every `Result` the console passes
/// around carries it, and the nine words of three `String`s made each of
/// them — and the wasm code moving them — bigger. Its fields read through
/// [`AppErrorBody`] (`e.message`, `e.code`, `e.about`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", .0.message)]
#[serde(transparent)]
pub struct AppError(Box<AppErrorBody>);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppErrorBody {
    pub code: String,
    pub message: String,
    /// What the refused action was about (a promotion id, a version, a
    /// cluster), so that a page with many forms shows the error next to the
    /// one that was used. Without JavaScript the error comes back in the
    /// address after the form posts, and every form of that server function
    /// sees it; this says which one it belongs to. `None`: about the whole page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
}

impl std::ops::Deref for AppError {
    type Target = AppErrorBody;

    fn deref(&self) -> &AppErrorBody {
        &self.0
    }
}

impl std::ops::DerefMut for AppError {
    fn deref_mut(&mut self) -> &mut AppErrorBody {
        &mut self.0
    }
}

impl AppError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        AppError(Box::new(AppErrorBody {
            code: code.to_owned(),
            message: message.into(),
            about: None,
        }))
    }

    /// The message, for showing on its own.
    pub fn into_message(self) -> String {
        self.0.message
    }

    /// The same error, about `subject`.
    pub fn about(mut self, subject: impl ToString) -> Self {
        self.about = Some(subject.to_string());
        self
    }

    /// Whether a form acting on `subject` should show this error.
    pub fn concerns(&self, subject: &str) -> bool {
        self.about.as_deref().is_none_or(|a| a == subject)
    }

    /// No valid session: the console's server functions refuse everything.
    pub fn unauthenticated() -> Self {
        AppError::new(
            "unauthenticated",
            "You are signed out. Sign in to use the console.",
        )
    }

    /// Signed in, but the role is too low for `what`.
    pub fn forbidden(what: &str, needed: Role, user: &SignedInUser) -> Self {
        AppError::new(
            "forbidden",
            format!(
                "{what} needs the {needed} role; {} has the {} role",
                user.username, user.role
            ),
        )
    }

    pub fn internal() -> Self {
        AppError::new(
            "internal",
            "Something went wrong on the server; the server log has the details.",
        )
    }
}

impl From<switchyard_domain::DomainError> for AppError {
    fn from(e: switchyard_domain::DomainError) -> Self {
        AppError::new(e.code(), e.to_string())
    }
}

impl FromServerFnError for AppError {
    type Encoder = ConsoleJson;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let message = match value {
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                "The server could not be reached. Check your connection and try again.".to_owned()
            }
            other => other.to_string(),
        };
        AppError::new("server_fn", message)
    }

    /// A refusal answers with its 4xx status, the same as the REST API's for
    /// that code, so that `/metrics` counts user mistakes as such; only what
    /// went wrong on the server is a 5xx. (Only the server answers: the
    /// browser build has no `http` types to name.)
    #[cfg(feature = "ssr")]
    fn status_code(&self) -> server_fn::http_export::StatusCode {
        server_fn::http_export::StatusCode::from_u16(self.http_status())
            .unwrap_or(server_fn::http_export::StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl AppError {
    /// The HTTP status of an answer carrying this error (by its code).
    pub fn http_status(&self) -> u16 {
        match self.code.as_str() {
            "invalid_input" | "invalid" | "policy_violation" => 422,
            "illegal_stage_move" | "conflict" => 409,
            "retired" => 410,
            "not_found" => 404,
            "forbidden" => 403,
            "unauthenticated" => 401,
            "server_fn" | "unreadable" => 400,
            _ => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_answer_with_their_4xx_status_and_server_failures_with_500() {
        for (e, status) in [
            (AppError::from(switchyard_domain::DomainError::Invalid("x".into())), 422),
            (AppError::from(switchyard_domain::DomainError::PolicyViolation("x".into())), 422),
            (AppError::from(switchyard_domain::DomainError::IllegalMove("x".into())), 409),
            (AppError::from(switchyard_domain::DomainError::Conflict("x".into())), 409),
            (AppError::from(switchyard_domain::DomainError::Retired("x".into())), 410),
            (AppError::from(switchyard_domain::DomainError::NotFound("x".into())), 404),
            (AppError::from(switchyard_domain::DomainError::Forbidden("x".into())), 403),
            (AppError::unauthenticated(), 401),
            (AppError::internal(), 500),
        ] {
            assert_eq!(e.http_status(), status, "{e:?}");
            #[cfg(feature = "ssr")]
            assert_eq!(FromServerFnError::status_code(&e).as_u16(), status);
        }
    }

    #[test]
    fn an_error_about_one_subject_concerns_only_that_one_and_survives_the_round_trip() {
        let e = AppError::new("invalid_input", "a rejection needs a reason").about(12);
        assert!(e.concerns("12"));
        assert!(!e.concerns("13"));
        assert!(
            AppError::unauthenticated().concerns("13"),
            "an error about nothing in particular concerns every form"
        );
        let json = serde_json::to_string(&e).expect("serializes");
        assert_eq!(
            serde_json::from_str::<AppError>(&json).expect("reads back"),
            e
        );
        let plain: AppError =
            serde_json::from_str(r#"{"code":"x","message":"y"}"#).expect("no about");
        assert_eq!(plain.about, None);
    }
}
