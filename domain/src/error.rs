use thiserror::Error;

/// A rule of the domain refused an input or a move. Each variant maps to one
/// API error code; the message is written for the person who made the request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// Malformed input: bad id, bad version, config not an object, bad timestamp… (HTTP 422)
    #[error("{0}")]
    Invalid(String),
    /// A lifecycle move that is not allowed; the message names the allowed moves. (HTTP 409)
    #[error("{0}")]
    IllegalMove(String),
    /// An environment's policy forbids it (latest, min stage). (HTTP 422)
    #[error("{0}")]
    PolicyViolation(String),
    /// The version exists but is retired. (HTTP 410)
    #[error("{0}")]
    Retired(String),
    /// Nothing by that name. (HTTP 404)
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this, whatever their role (e.g. approving their
    /// own promotion request). (HTTP 403)
    #[error("{0}")]
    Forbidden(String),
    /// The request contradicts what is stored (e.g. re-registering with another config). (HTTP 409)
    #[error("{0}")]
    Conflict(String),
    /// A change freeze is in force in the environment; the message names the
    /// window and when it ends. (HTTP 423)
    #[error("{0}")]
    Frozen(String),
}

impl DomainError {
    /// The stable machine-readable code used in `{"error":{"code":…}}`.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Invalid(_) => "invalid_input",
            DomainError::IllegalMove(_) => "illegal_stage_move",
            DomainError::PolicyViolation(_) => "policy_violation",
            DomainError::Retired(_) => "retired",
            DomainError::NotFound(_) => "not_found",
            DomainError::Conflict(_) => "conflict",
            DomainError::Forbidden(_) => "forbidden",
            DomainError::Frozen(_) => "change_freeze",
        }
    }

    /// The HTTP status this error answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            DomainError::Invalid(_) | DomainError::PolicyViolation(_) => 422,
            DomainError::IllegalMove(_) | DomainError::Conflict(_) => 409,
            DomainError::Retired(_) => 410,
            DomainError::NotFound(_) => 404,
            DomainError::Forbidden(_) => 403,
            DomainError::Frozen(_) => 423,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_answers_with_its_documented_code_and_http_status() {
        let m = || "m".to_owned();
        for (err, code, status) in [
            (DomainError::Invalid(m()), "invalid_input", 422),
            (DomainError::IllegalMove(m()), "illegal_stage_move", 409),
            (DomainError::PolicyViolation(m()), "policy_violation", 422),
            (DomainError::Retired(m()), "retired", 410),
            (DomainError::NotFound(m()), "not_found", 404),
            (DomainError::Conflict(m()), "conflict", 409),
            (DomainError::Forbidden(m()), "forbidden", 403),
            (DomainError::Frozen(m()), "change_freeze", 423),
        ] {
            assert_eq!((err.code(), err.http_status()), (code, status), "{err:?}");
        }
    }

    #[test]
    fn the_message_shown_is_exactly_the_message_given() {
        let err = DomainError::Retired("chat:v1 is retired".into());
        assert_eq!(err.to_string(), "chat:v1 is retired");
    }
}
