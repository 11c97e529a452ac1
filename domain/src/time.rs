//! Instants in UTC with microsecond precision, stored as integer microseconds
//! since the Unix epoch in both databases so that ordering is exact.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_micros())
    }

    /// Parses RFC 3339. A timestamp without a zone (`2026-03-03T14:00:00`) is
    /// refused: "14:00" means different instants in different places.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|d| Timestamp(d.with_timezone(&Utc).timestamp_micros()))
            .map_err(|_| {
                DomainError::Invalid(format!(
                    "{s:?} is not an RFC 3339 timestamp with a time zone, \
                     e.g. 2026-03-03T14:00:00Z or 2026-03-03T15:00:00+01:00"
                ))
            })
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    pub fn plus_days(self, days: i64) -> Self {
        Timestamp(self.0 + days * 86_400_000_000)
    }

    pub fn plus_hours(self, hours: i64) -> Self {
        Timestamp(self.0 + hours * 3_600_000_000)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}
