//! Model ids, version names and the `model:version` full id.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DomainError;

/// `[a-z0-9][a-z0-9._-]{0,63}`
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelId(String);

/// `[A-Za-z0-9][A-Za-z0-9._+-]{0,63}`, never `latest` (in any letter case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionName(String);

/// `model_id:version`, globally unique and immutable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FullId {
    pub model_id: ModelId,
    pub version: VersionName,
}

/// Longest model id or version name, in characters (all of them ASCII).
pub const MAX_NAME_LEN: usize = 64;

fn check_chars(
    s: &str,
    what: &str,
    first_ok: impl Fn(char) -> bool,
    rest_ok: impl Fn(char) -> bool,
    rule: &str,
) -> Result<(), DomainError> {
    let invalid = |why: String| {
        Err(DomainError::Invalid(format!(
            "{what} {why}: it must match {rule}"
        )))
    };
    let Some(first) = s.chars().next() else {
        return invalid("is empty".into());
    };
    // Only ASCII is ever allowed, so counting chars here also bounds the bytes.
    let len = s.chars().count();
    if len > MAX_NAME_LEN {
        return invalid(format!(
            "is {len} characters long, more than {MAX_NAME_LEN}"
        ));
    }
    if !first_ok(first) {
        return invalid(format!("{s:?} cannot start with {first:?}"));
    }
    if let Some(bad) = s.chars().find(|c| !rest_ok(*c)) {
        return invalid(format!("{s:?} contains {bad:?}"));
    }
    Ok(())
}

impl ModelId {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let lower_digit = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        check_chars(
            s,
            "model id",
            lower_digit,
            |c| lower_digit(c) || matches!(c, '.' | '_' | '-'),
            "[a-z0-9][a-z0-9._-]{0,63}",
        )?;
        Ok(ModelId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl VersionName {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.eq_ignore_ascii_case("latest") {
            return Err(DomainError::Invalid(
                "\"latest\" is not a version: versions are explicit and immutable; \
                 register a concrete version such as v2.1.3"
                    .into(),
            ));
        }
        check_chars(
            s,
            "version",
            |c| c.is_ascii_alphanumeric(),
            |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'),
            "[A-Za-z0-9][A-Za-z0-9._+-]{0,63}",
        )?;
        Ok(VersionName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FullId {
    pub fn new(model_id: ModelId, version: VersionName) -> Self {
        FullId { model_id, version }
    }

    /// Parses `model:version`. `model:latest` is refused here: it is a
    /// reference (see [`VersionRef`]), never an id.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let not_full_id = |why: &str| {
            DomainError::Invalid(format!(
                "{s:?} is not a full id ({why}): expected model_id:version, e.g. chat:v2.1.3"
            ))
        };
        let Some((m, v)) = s.split_once(':') else {
            return Err(not_full_id("no colon"));
        };
        if v.contains(':') {
            return Err(not_full_id("more than one colon"));
        }
        if v.eq_ignore_ascii_case("latest") {
            return Err(DomainError::Invalid(format!(
                "{s:?} is a reference, not a version: \"latest\" names no fixed version; \
                 use {m}:<version>, e.g. {m}:v2.1.3"
            )));
        }
        Ok(FullId {
            model_id: ModelId::parse(m)?,
            version: VersionName::parse(v)?,
        })
    }
}

/// What a client asks `resolve` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRef {
    /// `chat`: through the environment's pin.
    Pinned(ModelId),
    /// `chat:v2.1.3`: exactly that version.
    Exact(FullId),
    /// `chat:latest`: the newest non-retired version, where the environment allows it.
    Latest(ModelId),
}

impl VersionRef {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s.split_once(':') {
            None => Ok(VersionRef::Pinned(ModelId::parse(s)?)),
            // `latest` is never a version name, in any case, so `chat:LATEST`
            // can only mean the newest version.
            Some((m, v)) if v.eq_ignore_ascii_case("latest") => {
                Ok(VersionRef::Latest(ModelId::parse(m)?))
            }
            Some(_) => Ok(VersionRef::Exact(FullId::parse(s)?)),
        }
    }

    pub fn model_id(&self) -> &ModelId {
        match self {
            VersionRef::Pinned(m) | VersionRef::Latest(m) => m,
            VersionRef::Exact(f) => &f.model_id,
        }
    }
}

macro_rules! string_newtype_impls {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_newtype_impls!(ModelId);
string_newtype_impls!(VersionName);

impl fmt::Display for FullId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.model_id, self.version)
    }
}

impl Serialize for FullId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FullId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FullId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRef::Pinned(m) => write!(f, "{m}"),
            VersionRef::Exact(full_id) => write!(f, "{full_id}"),
            VersionRef::Latest(m) => write!(f, "{m}:latest"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_message(r: Result<impl fmt::Debug, DomainError>) -> String {
        match r {
            Err(DomainError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn model_ids_of_lowercase_letters_digits_dots_underscores_and_dashes_are_accepted() {
        for ok in ["chat", "0", "a", "chat-v2", "fraud_model.v3", "9lives"] {
            assert_eq!(
                ModelId::parse(ok).map(|m| m.to_string()),
                Ok(ok.to_owned()),
                "{ok}"
            );
        }
    }

    #[test]
    fn model_ids_with_capitals_a_leading_symbol_or_other_characters_are_refused() {
        for bad in [
            "Chat", "-chat", ".chat", "_chat", "chat:v1", "chat/x", "chat v", " chat", "chat+1",
        ] {
            assert!(ModelId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn an_empty_model_id_is_refused_with_a_message_saying_it_is_empty() {
        assert!(invalid_message(ModelId::parse("")).contains("model id is empty"));
    }

    #[test]
    fn a_model_id_of_64_characters_is_accepted_and_65_is_refused_with_its_length() {
        assert!(ModelId::parse(&"a".repeat(64)).is_ok());
        let msg = invalid_message(ModelId::parse(&"a".repeat(65)));
        assert!(msg.contains("65 characters"), "{msg}");
    }

    #[test]
    fn non_ascii_names_are_refused_even_when_short_enough_in_bytes() {
        assert!(ModelId::parse("chät").is_err());
        assert!(VersionName::parse("v1é").is_err());
        // 32 two-byte letters: 64 bytes, but not allowed characters.
        assert!(ModelId::parse(&"é".repeat(32)).is_err());
    }

    #[test]
    fn the_invalid_character_is_named_in_the_message() {
        let msg = invalid_message(ModelId::parse("chat/x"));
        assert!(msg.contains("'/'"), "{msg}");
        assert!(msg.contains("[a-z0-9][a-z0-9._-]{0,63}"), "{msg}");
    }

    #[test]
    fn version_names_allow_capitals_and_plus_signs() {
        for ok in ["v2.1.3", "V2", "1.0.0+build.5", "rc-1_final", "2026.03.03"] {
            assert_eq!(
                VersionName::parse(ok).map(|v| v.to_string()),
                Ok(ok.to_owned()),
                "{ok}"
            );
        }
        assert!(VersionName::parse(&"v".repeat(64)).is_ok());
        assert!(VersionName::parse(&"v".repeat(65)).is_err());
    }

    #[test]
    fn version_names_with_a_leading_symbol_or_a_colon_or_slash_are_refused() {
        for bad in ["", ".v1", "+v1", "-v1", "v1:2", "v1/2", "v 1"] {
            assert!(
                VersionName::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn latest_is_never_a_version_name_in_any_letter_case() {
        for bad in ["latest", "LATEST", "Latest", "lAtEsT"] {
            let msg = invalid_message(VersionName::parse(bad));
            assert!(msg.contains("latest"), "{msg}");
        }
        // Names that merely contain the word are fine.
        assert!(VersionName::parse("latest-2").is_ok());
    }

    #[test]
    fn a_full_id_splits_at_its_one_colon_and_prints_back_the_same() {
        let id = FullId::parse("chat:v2.1.3").expect("valid");
        assert_eq!(id.model_id.as_str(), "chat");
        assert_eq!(id.version.as_str(), "v2.1.3");
        assert_eq!(id.to_string(), "chat:v2.1.3");
    }

    #[test]
    fn a_full_id_with_two_colons_is_refused_naming_the_extra_colon() {
        let msg = invalid_message(FullId::parse("a:b:c"));
        assert!(msg.contains("more than one colon"), "{msg}");
    }

    #[test]
    fn a_full_id_without_colon_or_with_an_empty_part_is_refused() {
        assert!(invalid_message(FullId::parse("chat")).contains("no colon"));
        assert!(invalid_message(FullId::parse(":v1")).contains("model id is empty"));
        assert!(invalid_message(FullId::parse("chat:")).contains("version is empty"));
        assert!(FullId::parse(":").is_err());
    }

    #[test]
    fn a_full_id_with_a_65_character_part_is_refused() {
        assert!(FullId::parse(&format!("{}:v1", "m".repeat(65))).is_err());
        assert!(FullId::parse(&format!("chat:{}", "v".repeat(65))).is_err());
        assert!(FullId::parse(&format!("{}:{}", "m".repeat(64), "v".repeat(64))).is_ok());
    }

    #[test]
    fn model_latest_is_refused_as_a_full_id_because_it_is_only_a_reference() {
        let msg = invalid_message(FullId::parse("chat:latest"));
        assert!(msg.contains("reference"), "{msg}");
        assert!(FullId::parse("chat:LATEST").is_err());
    }

    #[test]
    fn a_bare_model_reference_resolves_through_the_pin() {
        assert_eq!(
            VersionRef::parse("chat"),
            Ok(VersionRef::Pinned(ModelId::parse("chat").expect("valid")))
        );
    }

    #[test]
    fn a_model_version_reference_names_that_exact_version() {
        let r = VersionRef::parse("chat:v1").expect("valid");
        assert_eq!(
            r,
            VersionRef::Exact(FullId::parse("chat:v1").expect("valid"))
        );
        assert_eq!(r.model_id().as_str(), "chat");
    }

    #[test]
    fn model_latest_in_any_case_is_a_latest_reference() {
        for s in ["chat:latest", "chat:LATEST", "chat:Latest"] {
            assert_eq!(
                VersionRef::parse(s),
                Ok(VersionRef::Latest(ModelId::parse("chat").expect("valid"))),
                "{s}"
            );
        }
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in ["", "Chat", "chat:", ":latest", "chat:v1:v2", "a:b:c"] {
            assert!(VersionRef::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn references_print_as_they_were_written() {
        for s in ["chat", "chat:v1", "chat:latest"] {
            assert_eq!(VersionRef::parse(s).expect("valid").to_string(), s);
        }
    }

    #[test]
    fn ids_serialise_as_strings_and_are_validated_when_deserialised() {
        let id = FullId::parse("chat:v1").expect("valid");
        assert_eq!(
            serde_json::to_string(&id).expect("serialises"),
            "\"chat:v1\""
        );
        assert_eq!(
            serde_json::from_str::<FullId>("\"chat:v1\"").expect("parses"),
            id
        );
        assert!(serde_json::from_str::<FullId>("\"chat:latest\"").is_err());
        assert!(serde_json::from_str::<ModelId>("\"Chat\"").is_err());
        assert!(serde_json::from_str::<VersionName>("\"latest\"").is_err());
    }
}
