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

fn check_chars(
    s: &str,
    what: &str,
    first_ok: impl Fn(char) -> bool,
    rest_ok: impl Fn(char) -> bool,
    rule: &str,
) -> Result<(), DomainError> {
    let mut chars = s.chars();
    let valid = match chars.next() {
        None => false,
        Some(c) => first_ok(c) && chars.all(&rest_ok) && s.len() <= 64,
    };
    if valid {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "{what} {s:?} is not valid: it must match {rule}"
        )))
    }
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
        let Some((m, v)) = s.split_once(':') else {
            return Err(DomainError::Invalid(format!(
                "{s:?} is not a full id: expected model_id:version, e.g. chat:v2.1.3"
            )));
        };
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
            Some((m, v)) if v == "latest" => Ok(VersionRef::Latest(ModelId::parse(m)?)),
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
