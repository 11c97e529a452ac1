//! Free text people give (reasons): what is required and what is refused.

use crate::DomainError;

/// The refusal of a state change made without a reason.
pub const REASON_REQUIRED: &str = "field \"reason\" is required";

/// The reason of a state change a person makes, trimmed: every rollback,
/// pin change, stage move, operation and approval says why, for the ledger.
pub fn required_reason(reason: Option<&str>) -> Result<&str, DomainError> {
    reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| DomainError::Invalid(REASON_REQUIRED.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_blank_reason_is_refused_naming_the_field() {
        for missing in [None, Some(""), Some("  \t ")] {
            assert_eq!(
                required_reason(missing),
                Err(DomainError::Invalid("field \"reason\" is required".into()))
            );
        }
        assert_eq!(required_reason(Some("  hotfix ")), Ok("hotfix"));
    }
}
