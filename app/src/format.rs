//! How times and hashes are written on the pages: always in UTC, and said so.

use chrono::{Datelike, Timelike};
use switchyard_domain::Timestamp;

// Written field by field rather than with chrono's `format("%Y…")`: strftime
// formatting and its parser add about 30 KB to the wasm bundle.

/// `2026-03-03 14:00 UTC`
pub fn utc(t: Timestamp) -> String {
    let d = t.to_datetime();
    format!("{} {:02}:{:02} UTC", date(t), d.hour(), d.minute())
}

/// `2026-03-03 14:00:05 UTC`, where seconds matter (the ledger).
pub fn utc_seconds(t: Timestamp) -> String {
    let d = t.to_datetime();
    format!("{} {:02}:{:02}:{:02} UTC", date(t), d.hour(), d.minute(), d.second())
}

/// `2026-03-03`
pub fn date(t: Timestamp) -> String {
    let d = t.to_datetime();
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// `2026-03` (`short`: `Mar 03`), the timeline's tick labels.
pub fn month_or_day(t: Timestamp, short: bool) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let d = t.to_datetime();
    if short {
        format!("{} {:02}", MONTHS[d.month0() as usize % 12], d.day())
    } else {
        format!("{:04}-{:02}", d.year(), d.month())
    }
}

/// The first 12 hex digits of a `sha256:` hash: enough to tell versions apart.
pub fn short_hash(h: &str) -> String {
    let hex = h.strip_prefix("sha256:").unwrap_or(h);
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc_and_say_so() {
        let t = Timestamp::parse("2026-03-03T15:00:05+01:00").expect("valid");
        assert_eq!(utc(t), "2026-03-03 14:00 UTC");
        assert_eq!(utc_seconds(t), "2026-03-03 14:00:05 UTC");
        assert_eq!(date(t), "2026-03-03");
        assert_eq!(utc(Timestamp::parse("2026-12-31T23:59:59Z").expect("valid")), "2026-12-31 23:59 UTC");
        assert_eq!(month_or_day(t, true), "Mar 03");
        assert_eq!(month_or_day(t, false), "2026-03");
    }

    #[test]
    fn hashes_are_shortened_to_twelve_hex_digits() {
        assert_eq!(short_hash("sha256:0123456789abcdef0123"), "0123456789ab");
    }
}
