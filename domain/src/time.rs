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
    /// Offsets are normalised to UTC; digits beyond microseconds are dropped.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        if let Ok(d) = DateTime::parse_from_rfc3339(s) {
            return Ok(Timestamp(d.with_timezone(&Utc).timestamp_micros()));
        }
        // With a zone added it would read: then only the zone is missing.
        // (Not NaiveDateTime::parse_from_str: strftime parsing costs the
        // browser's wasm bundle about 10 KB for this error message.)
        let zoneless = ["Z", ":00Z"]
            .iter()
            .any(|zone| DateTime::parse_from_rfc3339(&format!("{s}{zone}")).is_ok());
        let why = if zoneless {
            "has no time zone, and 14:00 is a different instant in every zone"
        } else {
            "is not an RFC 3339 timestamp"
        };
        Err(DomainError::Invalid(format!(
            "{s:?} {why}: write e.g. 2026-03-03T14:00:00Z or 2026-03-03T15:00:00+01:00"
        )))
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Saturates at the ends of time rather than overflowing.
    pub fn plus_days(self, days: i64) -> Self {
        Timestamp(self.0.saturating_add(days.saturating_mul(86_400_000_000)))
    }

    /// Saturates at the ends of time rather than overflowing.
    pub fn plus_hours(self, hours: i64) -> Self {
        Timestamp(self.0.saturating_add(hours.saturating_mul(3_600_000_000)))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-03T14:00:00Z
    const MARCH_3_14H: i64 = 1_772_546_400_000_000;

    fn parsed(s: &str) -> i64 {
        Timestamp::parse(s)
            .map(Timestamp::micros)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_utc_timestamp_is_read_to_the_microsecond() {
        assert_eq!(parsed("2026-03-03T14:00:00Z"), MARCH_3_14H);
        assert_eq!(parsed("2026-03-03T14:00:00.000001Z"), MARCH_3_14H + 1);
        assert_eq!(parsed("2026-03-03T14:00:00.5Z"), MARCH_3_14H + 500_000);
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        assert_eq!(parsed("2026-03-03T15:00:00+01:00"), MARCH_3_14H);
        assert_eq!(parsed("2026-03-03T09:30:00-04:30"), MARCH_3_14H);
        assert_eq!(parsed("2026-03-03T14:00:00+00:00"), MARCH_3_14H);
    }

    #[test]
    fn digits_beyond_microseconds_are_dropped() {
        assert_eq!(parsed("2026-03-03T14:00:00.000001999Z"), MARCH_3_14H + 1);
    }

    #[test]
    fn a_timestamp_without_a_zone_is_refused_saying_the_zone_is_missing() {
        for s in [
            "2026-03-03T14:00:00",
            "2026-03-03T14:00:00.123",
            "2026-03-03 14:00:00",
            "2026-03-03T14:00",
        ] {
            match Timestamp::parse(s) {
                Err(DomainError::Invalid(m)) => assert!(m.contains("has no time zone"), "{s}: {m}"),
                other => panic!("{s}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn text_that_is_no_timestamp_at_all_is_refused_with_an_example() {
        for s in [
            "",
            "yesterday",
            "2026-03-03",
            "2026-13-03T14:00:00Z",
            "1772546400",
        ] {
            match Timestamp::parse(s) {
                Err(DomainError::Invalid(m)) => {
                    assert!(m.contains("2026-03-03T14:00:00Z"), "{s}: {m}")
                }
                other => panic!("{s}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn timestamps_are_written_in_utc_with_microseconds_and_z() {
        assert_eq!(
            Timestamp::from_micros(MARCH_3_14H).to_rfc3339(),
            "2026-03-03T14:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_micros(MARCH_3_14H + 123_456).to_string(),
            "2026-03-03T14:00:00.123456Z"
        );
        assert_eq!(
            Timestamp::from_micros(0).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn a_written_timestamp_reads_back_as_the_same_instant() {
        for us in [
            0,
            1,
            -1,
            MARCH_3_14H,
            MARCH_3_14H + 999_999,
            -86_400_000_001,
        ] {
            let t = Timestamp::from_micros(us);
            assert_eq!(Timestamp::parse(&t.to_rfc3339()), Ok(t), "{us}");
            let json = serde_json::to_string(&t).expect("serialises");
            assert_eq!(serde_json::from_str::<Timestamp>(&json).expect("parses"), t);
        }
    }

    #[test]
    fn json_timestamps_without_a_zone_are_refused() {
        assert!(serde_json::from_str::<Timestamp>("\"2026-03-03T14:00:00\"").is_err());
    }

    #[test]
    fn adding_days_and_hours_moves_by_whole_days_and_hours() {
        let t = Timestamp::from_micros(MARCH_3_14H);
        assert_eq!(t.plus_days(30).to_string(), "2026-04-02T14:00:00.000000Z");
        assert_eq!(t.plus_hours(72), t.plus_days(3));
        assert_eq!(
            Timestamp::from_micros(i64::MAX - 1).plus_days(1).micros(),
            i64::MAX
        );
    }
}
