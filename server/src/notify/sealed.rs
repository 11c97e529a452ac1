//! Signing secrets at rest: sealed with AES-256-GCM (ring) under the key in
//! `SWITCHYARD_SECRETS_KEY` (32 bytes, base64), so a copy of the database
//! alone cannot forge webhooks. Without a key they are stored as given (a
//! warning is logged when the server starts). A stored value is either a
//! plain `whsec_…` or `sealed:v1:` + base64(nonce ‖ ciphertext ‖ tag).

use std::sync::Arc;

use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

const PREFIX: &str = "sealed:v1:";
const AAD: &[u8] = b"switchyard webhook signing secret";

/// The key secrets are sealed with.
#[derive(Clone)]
pub struct SecretsKey(Arc<LessSafeKey>);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(…)")
    }
}

impl SecretsKey {
    /// A key from its base64 text (32 bytes, e.g. `openssl rand -base64 32`).
    pub fn parse(text: &str) -> Result<SecretsKey, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| {
                "SWITCHYARD_SECRETS_KEY must be base64 (openssl rand -base64 32)".to_owned()
            })?;
        if bytes.len() != 32 {
            return Err(format!(
                "SWITCHYARD_SECRETS_KEY must be 32 bytes in base64, not {} bytes",
                bytes.len()
            ));
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| "SWITCHYARD_SECRETS_KEY is not a valid AES-256 key".to_owned())?;
        Ok(SecretsKey(Arc::new(LessSafeKey::new(key))))
    }

    /// The key in `SWITCHYARD_SECRETS_KEY`, if set.
    pub fn from_env() -> Result<Option<SecretsKey>, String> {
        match std::env::var("SWITCHYARD_SECRETS_KEY") {
            Ok(v) if !v.trim().is_empty() => SecretsKey::parse(&v).map(Some),
            _ => Ok(None),
        }
    }
}

/// What to store for `secret`: sealed under `key`, or as given without one.
pub fn seal(key: Option<&SecretsKey>, secret: &str) -> String {
    let Some(key) = key else {
        return secret.to_owned();
    };
    let nonce: [u8; NONCE_LEN] = rand::random();
    let mut sealed = secret.as_bytes().to_vec();
    // Sealing fails only for inputs beyond GCM's limit (64 GiB); a secret is 50 bytes.
    if key
        .0
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut sealed,
        )
        .is_err()
    {
        return secret.to_owned();
    }
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(out)
    )
}

/// The secret a stored value holds.
pub fn open(key: Option<&SecretsKey>, stored: &str) -> Result<String, String> {
    let Some(sealed) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.to_owned());
    };
    let key = key.ok_or_else(|| {
        "the signing secret is sealed, and this server has no SWITCHYARD_SECRETS_KEY".to_owned()
    })?;
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|_| "a stored signing secret is damaged".to_owned())?;
    if bytes.len() < NONCE_LEN {
        return Err("a stored signing secret is damaged".to_owned());
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&bytes[..NONCE_LEN]);
    let plain = key
        .0
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut bytes[NONCE_LEN..],
        )
        .map_err(|_| {
            "a stored signing secret does not open with SWITCHYARD_SECRETS_KEY (another key?)"
                .to_owned()
        })?;
    String::from_utf8(plain.to_vec()).map_err(|_| "a stored signing secret is damaged".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretsKey {
        let bytes: [u8; 32] = rand::random();
        SecretsKey::parse(&base64::engine::general_purpose::STANDARD.encode(bytes)).expect("key")
    }

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let (k, other) = (key(), key());
        let secret = crate::notify::new_secret();
        let stored = seal(Some(&k), &secret);
        assert!(
            stored.starts_with(PREFIX) && !stored.contains(&secret[6..]),
            "{stored}"
        );
        assert_ne!(stored, seal(Some(&k), &secret), "a fresh nonce each time");
        assert_eq!(open(Some(&k), &stored).expect("opens"), secret);
        assert!(open(Some(&other), &stored)
            .expect_err("other key")
            .contains("another key"));
        assert!(open(None, &stored)
            .expect_err("no key")
            .contains("SWITCHYARD_SECRETS_KEY"));
        let mut damaged = stored.clone();
        damaged.pop();
        damaged.push(if stored.ends_with('A') { 'B' } else { 'A' });
        assert!(open(Some(&k), &damaged).is_err());
    }

    #[test]
    fn without_a_key_secrets_are_stored_as_given() {
        let secret = crate::notify::new_secret();
        assert_eq!(seal(None, &secret), secret);
        assert_eq!(open(Some(&key()), &secret).expect("plain"), secret);
    }

    #[test]
    fn a_key_must_be_32_bytes_of_base64() {
        assert!(SecretsKey::parse("not base64!").is_err());
        assert!(SecretsKey::parse("c2hvcnQ=")
            .expect_err("short")
            .contains("32 bytes"));
    }
}
