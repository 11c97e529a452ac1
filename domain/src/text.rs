//! Free text people give (reasons): what is required and what is refused.

use crate::DomainError;

/// The refusal of a state change made without a reason.
pub const REASON_REQUIRED: &str = "field \"reason\" is required";

/// The reason of a state change a person makes, trimmed: every rollback,
/// pin change, stage move, operation and approval says why, for the ledger;
/// refused if it holds characters that hide or reorder text (`check_free_text`).
pub fn required_reason(reason: Option<&str>) -> Result<&str, DomainError> {
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| DomainError::Invalid(REASON_REQUIRED.to_owned()))?;
    check_free_text("reason", reason)?;
    Ok(reason)
}

/// Bidirectional formatting characters: embeddings and overrides
/// (U+202A–U+202E), isolates (U+2066–U+2069) and the marks U+200E, U+200F,
/// U+061C. They make the audit log show text other than what was stored.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Refuses free text (reasons, labels, artifact URIs) holding a control
/// character (NUL, line breaks, escapes…) or a bidirectional formatting
/// character, naming the field, the character and its position.
pub fn check_free_text(field: &str, value: &str) -> Result<(), DomainError> {
    for (i, c) in value.chars().enumerate() {
        let kind = if c.is_control() {
            "a control character"
        } else if is_bidi_control(c) {
            "a bidirectional formatting character"
        } else {
            continue;
        };
        return Err(DomainError::Invalid(format!(
            "field {field:?} contains {kind} (U+{:04X}) at character {}; free text may not hide or reorder what it says",
            u32::from(c),
            i + 1
        )));
    }
    Ok(())
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

    #[test]
    fn control_and_bidirectional_characters_are_refused_naming_them() {
        for (text, code) in [
            ("evil\u{0}nul", "U+0000"),
            ("two\nlines", "U+000A"),
            ("\u{202E}lun live", "U+202E"),
            ("a\u{2066}b", "U+2066"),
            ("a\u{200F}b", "U+200F"),
            ("esc\u{1b}[31m", "U+001B"),
        ] {
            match required_reason(Some(text)) {
                Err(DomainError::Invalid(m)) => {
                    assert!(m.contains(code) && m.contains("\"reason\""), "{m}")
                }
                other => panic!("{text:?} accepted: {other:?}"),
            }
        }
        assert!(check_free_text("reason", "Grüße, 東京 — rollback after 5xx ✓").is_ok());
        assert!(check_free_text("reason", "שלום عربى").is_ok(), "right-to-left text itself is fine");
    }
}
