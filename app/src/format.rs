//! How times and hashes are written on the pages: always in UTC, and said so.

use switchyard_domain::Timestamp;

/// `2026-03-03 14:00 UTC`
pub fn utc(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `2026-03-03 14:00:05 UTC`, where seconds matter (the ledger).
pub fn utc_seconds(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `2026-03-03`
pub fn date(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d").to_string()
}

/// `2026-03` (`short`: `Mar 03`), the timeline's tick labels.
pub fn month_or_day(t: Timestamp, short: bool) -> String {
    let format = if short { "%b %d" } else { "%Y-%m" };
    t.to_datetime().format(format).to_string()
}

/// `14:00`: the hour of an instant (UTC), for hour marks.
pub fn hour(t: Timestamp) -> String {
    t.to_datetime().format("%H:%M").to_string()
}

/// `1.2 s`: the time from `from` to `to` in seconds to a tenth, rounded
/// half up (counted in whole tenths, so 1.25 s is 1.3 s).
pub fn seconds_between(from: Timestamp, to: Timestamp) -> String {
    let tenths = ((to.micros() - from.micros()).max(0) + 50_000) / 100_000;
    format!("{}.{} s", tenths / 10, tenths % 10)
}

/// `42.50 ms`: a latency to a hundredth of a millisecond.
pub fn milliseconds(ms: f64) -> String {
    if ms.is_finite() {
        format!("{ms:.2} ms")
    } else {
        "not recorded".to_owned()
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
        assert_eq!(
            utc(Timestamp::parse("2026-12-31T23:59:59Z").expect("valid")),
            "2026-12-31 23:59 UTC"
        );
        assert_eq!(month_or_day(t, true), "Mar 03");
        assert_eq!(month_or_day(t, false), "2026-03");
    }

    #[test]
    fn durations_are_written_in_seconds_to_a_tenth() {
        let at = |micros: i64| Timestamp::from_micros(1_700_000_000_000_000 + micros);
        assert_eq!(seconds_between(at(0), at(1_249_999)), "1.2 s");
        assert_eq!(seconds_between(at(0), at(1_250_000)), "1.3 s");
        assert_eq!(seconds_between(at(0), at(61_000_000)), "61.0 s");
        assert_eq!(seconds_between(at(5), at(0)), "0.0 s");
    }

    #[test]
    fn latencies_are_written_in_milliseconds_to_a_hundredth() {
        assert_eq!(milliseconds(42.5), "42.50 ms");
        assert_eq!(milliseconds(0.004), "0.00 ms");
        assert_eq!(milliseconds(1234.567), "1234.57 ms");
        assert_eq!(milliseconds(-0.5), "-0.50 ms");
        assert_eq!(milliseconds(f64::NAN), "not recorded");
    }

    #[test]
    fn hashes_are_shortened_to_twelve_hex_digits() {
        assert_eq!(short_hash("sha256:0123456789abcdef0123"), "0123456789ab");
    }
}
