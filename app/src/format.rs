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
    }

    #[test]
    fn hashes_are_shortened_to_twelve_hex_digits() {
        assert_eq!(short_hash("sha256:0123456789abcdef0123"), "0123456789ab");
    }
}
