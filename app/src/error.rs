//! The one error type server functions return: a code and a message meant
//! for the person looking at the page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;


/// Sent as the REST API sends its errors, `{"error": {"code", "message"}}`
/// (with `about` beside them when set), so a script or a person reading a
/// console answer meets the same shape as from `/api/v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(into = "Wire", from = "Received")]
#[error("{message}")]
pub struct AppError {
    pub code: String,
    pub message: String,
    /// What the refused action was about (a promotion id, a version, a
    /// cluster), so that a page with many forms shows the error next to the
    /// one that was used. Without JavaScript the error comes back in the
    /// address after the form posts, and every form of that server function
    /// sees it; this says which one it belongs to. `None`: about the whole page.
    pub about: Option<String>,
}

/// `AppError` as it travels.
#[derive(Serialize, Deserialize)]
struct Wire {
    error: WireError,
}

#[derive(Serialize, Deserialize)]
struct WireError {
    code: String,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    about: Option<String>,
}

impl From<AppError> for Wire {
    fn from(e: AppError) -> Wire {
        Wire {
            error: WireError {
                code: e.code,
                message: e.message,
                about: e.about,
            },
        }
    }
}

/// What is read: the shape above, or the flat one errors had before it
/// (in addresses of forms posted without JavaScript, still open in a browser).
#[derive(Deserialize)]
#[serde(untagged)]
enum Received {
    Wire(Wire),
    Flat(WireError),
}

impl From<Received> for AppError {
    fn from(r: Received) -> AppError {
        let e = match r {
            Received::Wire(w) => w.error,
            Received::Flat(e) => e,
        };
        AppError {
            code: e.code,
            message: e.message,
            about: e.about,
        }
    }
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
        match value {
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => AppError::new(
                "server_fn",
                "The server could not be reached. Check your connection and try again.",
            ),
            // The form's fields as the server read them: name the field, say what to send.
            ServerFnErrorErr::MissingArg(field) => AppError::new(
                "invalid_input",
                format!("The form has no field “{field}”: fill it in and send the form again."),
            ),
            ServerFnErrorErr::Args(detail) => AppError::new(
                "invalid_input",
                format!(
                    "The form's fields could not be read ({detail}): send each field once, \
                     numbers as digits, and try again."
                ),
            ),
            other => AppError::new("server_fn", other.to_string()),
        }
    }
}

impl AppError {
    /// The HTTP status of an answer carrying this error (by its code).
    pub fn http_status(&self) -> u16 {
        match self.code.as_str() {
            "invalid_input" | "invalid" | "policy_violation" | "prometheus_unreachable"
            | "mlflow_unreachable" => 422,
            "illegal_stage_move" | "conflict" => 409,
            "change_freeze" => 423,
            "payload_too_large" => 413,
            "database_unavailable" => 503,
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
            (
                AppError::from(switchyard_domain::DomainError::Frozen("x".into())),
                423,
            ),
            (AppError::new("database_unavailable", "x"), 503),
            (AppError::unauthenticated(), 401),
            (AppError::internal(), 500),
        ] {
            assert_eq!(e.http_status(), status, "{e:?}");
        }
    }

    #[test]
    fn a_refusal_travels_in_the_rest_apis_shape_and_back() {
        let e = AppError::new("invalid_input", "a promotion needs a reason").about("7");
        let json = serde_json::to_value(&e).expect("serialised");
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "invalid_input", "message": "a promotion needs a reason", "about": "7"}})
        );
        assert_eq!(serde_json::from_value::<AppError>(json).expect("read back"), e);
        let plain = serde_json::to_value(AppError::new("not_found", "no such")).expect("serialised");
        assert!(plain["error"].get("about").is_none(), "{plain}");
    }

    #[test]
    fn unreadable_form_fields_are_named_with_what_to_send() {
        let e = AppError::from_server_fn_error(ServerFnErrorErr::MissingArg("reason".into()));
        assert_eq!((e.code.as_str(), e.http_status()), ("invalid_input", 422));
        assert!(e.message.contains("“reason”") && e.message.contains("fill it in"), "{}", e.message);
        let e = AppError::from_server_fn_error(ServerFnErrorErr::Args("invalid digit".into()));
        assert!(e.message.contains("invalid digit") && e.message.contains("numbers as digits"), "{}", e.message);
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
            serde_json::from_str(r#"{"error":{"code":"x","message":"y"}}"#).expect("no about");
        assert_eq!(plain.about, None);
        let flat: AppError =
            serde_json::from_str(r#"{"code":"x","message":"y"}"#).expect("the shape before is read too");
        assert_eq!((flat.code.as_str(), flat.message.as_str()), ("x", "y"));
    }
}
