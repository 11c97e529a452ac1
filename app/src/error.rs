//! The one error type server functions return: a code and a message meant
//! for the person looking at the page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;


#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
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

impl AppError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        AppError {
            code: code.to_owned(),
            message: message.into(),
            about: None,
        }
    }

    /// The message, for showing on its own.
    pub fn into_message(self) -> String {
        self.message
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

impl AppError {
    /// The HTTP status of an answer carrying this error (by its code).
    pub fn http_status(&self) -> u16 {
        match self.code.as_str() {
            "invalid_input" | "invalid" | "policy_violation" | "prometheus_unreachable" => 422,
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
            (
                AppError::from(switchyard_domain::DomainError::Invalid("x".into())),
                422,
            ),
            (
                AppError::from(switchyard_domain::DomainError::PolicyViolation("x".into())),
                422,
            ),
            (
                AppError::from(switchyard_domain::DomainError::IllegalMove("x".into())),
                409,
            ),
            (
                AppError::from(switchyard_domain::DomainError::Conflict("x".into())),
                409,
            ),
            (
                AppError::from(switchyard_domain::DomainError::Retired("x".into())),
                410,
            ),
            (
                AppError::from(switchyard_domain::DomainError::NotFound("x".into())),
                404,
            ),
            (
                AppError::from(switchyard_domain::DomainError::Forbidden("x".into())),
                403,
            ),
            (AppError::unauthenticated(), 401),
            (AppError::internal(), 500),
        ] {
            assert_eq!(e.http_status(), status, "{e:?}");
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
