//! Random secrets (API tokens, session ids, CSRF tokens) and their hashes.
//! They carry 256 bits of entropy, so a fast hash is enough to store them:
//! argon2 is for the low-entropy secrets people choose.

use rand::RngCore;
use sha2::{Digest, Sha256};
use switchyard_domain::DomainError;

/// What every API token starts with, so secret scanners can find leaked ones.
pub const TOKEN_PREFIX: &str = "sy_";

/// A new random secret: 32 bytes as hex, after `prefix`.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// How a secret is stored and looked up.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A lifetime such as `90d` or `12h`.
pub fn parse_lifetime(s: &str) -> Result<std::time::Duration, DomainError> {
    let s = s.trim();
    let invalid = || DomainError::Invalid(format!("{s:?} is not a lifetime like 90d or 12h"));
    let (number, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let hours = match unit {
        "d" => n.checked_mul(24).ok_or_else(invalid)?,
        "h" => n,
        _ => return Err(invalid()),
    };
    if hours == 0 {
        return Err(invalid());
    }
    Ok(std::time::Duration::from_secs(
        hours.checked_mul(3600).ok_or_else(invalid)?,
    ))
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hash_to_hex() {
        let (a, b) = (generate(TOKEN_PREFIX), generate(TOKEN_PREFIX));
        assert_ne!(a, b);
        assert!(a.starts_with("sy_") && a.len() == 67);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a);
    }

    #[test]
    fn lifetimes_are_days_or_hours() {
        assert_eq!(parse_lifetime("90d").map(|d| d.as_secs()), Ok(90 * 86400));
        assert_eq!(parse_lifetime("12h").map(|d| d.as_secs()), Ok(12 * 3600));
        for bad in ["", "d", "0d", "12m", "-1d", "1.5d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn constant_time_comparison_is_equality() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
