//! Workload identity: the REST API accepts, besides Switchyard's own API
//! tokens, JWT access tokens from one configured issuer (a CI system's or
//! the identity provider's), verified with `jsonwebtoken` against the
//! issuer's published keys: signature (asymmetric algorithms only), `iss`,
//! `aud`, `exp`, `nbf`. The keys are cached and fetched again when a token
//! names an unknown key id (rotation), at most every `KEY_REFETCH_INTERVAL`.
//!
//! A verified token becomes an `Identity` named `jwt:<subject claim>`, with
//! groups `<claim>:<value>` from the configured claims, the role bindings
//! Switchyard holds on those groups (as for any user's groups), and the role
//! the role map gives them.

use std::time::Instant;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use switchyard_domain::sso::{claim_groups, RoleMap};
use tokio::sync::{Mutex, RwLock};

use crate::sso::{JwtSettings, KEY_REFETCH_INTERVAL};
use crate::store::identity::Identity;

/// The algorithms a token may be signed with: public-key ones only, so a
/// token "signed" with a public key as an HMAC secret, or not at all, fails.
const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a JWT was refused: the 401's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtRefusal {
    #[error("the JWT is malformed: {0}")]
    Malformed(String),
    #[error(
        "the JWT is not signed (alg none); only tokens signed with the issuer's keys are accepted"
    )]
    Unsigned,
    #[error("the JWT's algorithm {0} is refused; accepted: RS*, PS*, ES256, ES384, EdDSA")]
    AlgorithmRefused(String),
    #[error("the JWT names no key id (kid)")]
    NoKeyId,
    #[error("the JWT is signed with an unknown key {0:?}: not in the issuer's JWKS")]
    UnknownKey(String),
    #[error("the issuer's keys cannot be fetched: {0}")]
    KeysUnavailable(String),
    #[error("the JWT's signature does not verify with the issuer's key {0:?}")]
    BadSignature(String),
    #[error("the JWT has expired")]
    Expired,
    #[error("the JWT is not valid yet (nbf)")]
    NotYetValid,
    #[error("the JWT is for another audience; this server accepts aud {0:?}")]
    WrongAudience(String),
    #[error("the JWT comes from another issuer; this server accepts iss {0:?}")]
    WrongIssuer(String),
    #[error("the JWT lacks the claim {0:?}")]
    MissingClaim(String),
    #[error("the JWT was refused: {0}")]
    Other(String),
}

/// What a verified token says about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub subject: String,
    pub groups: Vec<String>,
}

struct Keys {
    set: JwkSet,
    fetched: Option<Instant>,
}

pub struct JwtVerifier {
    settings: JwtSettings,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    /// Serialises fetches, so a burst of unknown kids makes one request.
    fetching: Mutex<()>,
}

impl JwtVerifier {
    pub fn new(settings: JwtSettings, http: reqwest::Client) -> JwtVerifier {
        JwtVerifier {
            settings,
            http,
            keys: RwLock::new(Keys {
                set: JwkSet { keys: Vec::new() },
                fetched: None,
            }),
            fetching: Mutex::new(()),
        }
    }

    /// Verifies `token` and names its caller; `Err` says what failed.
    pub async fn verify(&self, token: &str) -> Result<Workload, JwtRefusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| header_refusal(token, &e))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(JwtRefusal::AlgorithmRefused(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(JwtRefusal::NoKeyId)?;
        // Bound first: the read guard must be gone before a refetch writes.
        let cached = self.keys.read().await.set.find(&kid).cloned();
        let jwk = match cached {
            Some(jwk) => jwk,
            None => {
                self.refetch().await?;
                self.keys
                    .read()
                    .await
                    .set
                    .find(&kid)
                    .cloned()
                    .ok_or_else(|| JwtRefusal::UnknownKey(kid.clone()))?
            }
        };
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| JwtRefusal::Other(format!("the issuer's key {kid:?} is unusable: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway_seconds;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|e| self.refusal(&kid, &e))?;
        let claims = data.claims;
        let subject = match claims.get(&self.settings.subject_claim) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            _ => {
                return Err(JwtRefusal::MissingClaim(
                    self.settings.subject_claim.clone(),
                ))
            }
        };
        let mut groups: Vec<String> = self
            .settings
            .group_claims
            .iter()
            .filter_map(|c| claims.get(c).map(|v| claim_groups(c, v)))
            .flatten()
            .collect();
        groups.sort();
        groups.dedup();
        Ok(Workload { subject, groups })
    }

    fn refusal(&self, kid: &str, e: &jsonwebtoken::errors::Error) -> JwtRefusal {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature | K::Crypto(_) => JwtRefusal::BadSignature(kid.to_owned()),
            K::ExpiredSignature => JwtRefusal::Expired,
            K::ImmatureSignature => JwtRefusal::NotYetValid,
            K::InvalidAudience => JwtRefusal::WrongAudience(self.settings.audience.clone()),
            K::InvalidIssuer => JwtRefusal::WrongIssuer(self.settings.issuer.clone()),
            K::MissingRequiredClaim(c) => JwtRefusal::MissingClaim(c.clone()),
            K::InvalidAlgorithm => JwtRefusal::AlgorithmRefused("(not the key's)".into()),
            K::Base64(_) | K::Json(_) | K::Utf8(_) | K::InvalidToken => {
                JwtRefusal::Malformed(e.to_string())
            }
            _ => JwtRefusal::Other(e.to_string()),
        }
    }

    /// Fetches the issuer's keys again, unless they were fetched less than
    /// `KEY_REFETCH_INTERVAL` ago (then the cached ones stand).
    async fn refetch(&self) -> Result<(), JwtRefusal> {
        let _one = self.fetching.lock().await;
        if self
            .keys
            .read()
            .await
            .fetched
            .is_some_and(|t| t.elapsed() < KEY_REFETCH_INTERVAL)
        {
            return Ok(());
        }
        let fetched = self.fetch().await;
        let mut keys = self.keys.write().await;
        keys.fetched = Some(Instant::now());
        match fetched {
            Ok(set) => {
                tracing::info!(issuer = %self.settings.issuer, keys = set.keys.len(), "workload identity keys fetched");
                keys.set = set;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(issuer = %self.settings.issuer, error = %e, "cannot fetch the workload identity keys");
                Err(JwtRefusal::KeysUnavailable(e))
            }
        }
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let jwks_url = match &self.settings.jwks_url {
            Some(url) => url.clone(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    self.settings.issuer.trim_end_matches('/')
                );
                let doc: serde_json::Value = self.get_json(&discovery).await?;
                doc.get("jwks_uri")
                    .and_then(|u| u.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{discovery} names no jwks_uri"))?
            }
        };
        self.get_json(&jwks_url).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("{url} answered {}", res.status()));
        }
        res.json::<T>()
            .await
            .map_err(|e| format!("{url} answered something unusable: {e}"))
    }
}

/// Why the header could not be read: `alg: none` (and other algorithms the
/// library does not know) are named, the rest is malformed.
fn header_refusal(token: &str, e: &jsonwebtoken::errors::Error) -> JwtRefusal {
    use base64::Engine as _;
    // Only to name the refusal: the header is not trusted for anything else.
    let alg = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
    match alg {
        Some(a) if a.eq_ignore_ascii_case("none") => JwtRefusal::Unsigned,
        Some(a) if !a.is_empty() => JwtRefusal::AlgorithmRefused(a),
        _ => JwtRefusal::Malformed(e.to_string()),
    }
}

/// The identity a verified workload speaks as: `jwt:<subject>`, with the
/// role bindings Switchyard holds on its groups — read by the store exactly
/// as a session's or an API token's are (`IdentityStore::caller_identity`) —
/// plus, when the role map gives its groups a role, that role on all.
/// `Ok(None)`: its groups neither map to a role nor have a binding.
pub async fn identity(
    workload: &Workload,
    role_map: &RoleMap,
    store: &dyn crate::store::Store,
) -> crate::store::StoreResult<Option<Identity>> {
    let username = format!("jwt:{}", workload.subject);
    let stored = store.caller_identity(&username, &workload.groups).await?;
    Ok(with_mapped_role(stored, role_map))
}

/// `stored` with the role map's grant added as a binding on all; `None` when
/// it ends up with no binding at all.
fn with_mapped_role(mut id: Identity, role_map: &RoleMap) -> Option<Identity> {
    if let Some(granted) = role_map.role_for(&id.groups) {
        id.bindings.push(switchyard_domain::access::Binding::new(
            switchyard_domain::access::Subject::User(id.username.clone()),
            granted.role,
            switchyard_domain::access::Scope::All,
        ));
        id.role = Identity::summary_role(&id.username, &id.groups, &id.bindings);
    }
    (!id.bindings.is_empty()).then_some(id)
}

/// The 403's message for a valid JWT that nothing grants a role.
pub fn no_role(workload: &Workload) -> String {
    format!(
        "the JWT of {:?} is valid, but its groups [{}] map to no role (SWITCHYARD_OIDC_ROLE_MAP) \
         and no role binding names them (add one with `switchyard binding add --group …`)",
        workload.subject,
        workload.groups.join(", ")
    )
}

/// Whether a bearer token is a JWT rather than a Switchyard API token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && !token.starts_with(crate::auth::secret::TOKEN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_domain::access::Role;

    #[test]
    fn unsigned_and_unknown_algorithms_are_named() {
        // {"alg":"none","typ":"JWT"} . {"sub":"x"} .
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.";
        let e = jsonwebtoken::decode_header(none).expect_err("alg none is no Algorithm");
        assert_eq!(header_refusal(none, &e), JwtRefusal::Unsigned);
        assert!(matches!(
            header_refusal("garbage", &e),
            JwtRefusal::Malformed(_)
        ));
        assert!(looks_like_jwt(none));
        assert!(!looks_like_jwt("sy_abc.def.ghi"));
        assert!(!looks_like_jwt("sy_abcdef"));
    }

    #[test]
    fn the_role_map_adds_a_binding_on_all_to_what_the_store_holds() {
        use switchyard_domain::access::{Binding, Scope, Subject};
        let map = RoleMap::parse("repository:acme/models=deployer").expect("map");
        let stored = |groups: &[&str], bindings: Vec<Binding>| Identity {
            username: "jwt:ci".into(),
            role: Role::Viewer,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            token: None,
            bindings,
        };
        let id =
            with_mapped_role(stored(&["repository:acme/models"], vec![]), &map).expect("mapped");
        assert_eq!(id.role, Role::Deployer);
        assert!(id.check(Role::Deployer, Some("production"), "x").is_ok());
        let staging = Binding::new(
            Subject::Group("repository:acme/data".into()),
            Role::Deployer,
            Scope::Environment("staging".into()),
        );
        let id = with_mapped_role(stored(&["repository:acme/data"], vec![staging]), &map)
            .expect("bound");
        assert_eq!(id.role, Role::Viewer, "no role on all");
        assert!(id.check(Role::Deployer, Some("staging"), "x").is_ok());
        assert!(id.check(Role::Deployer, Some("production"), "x").is_err());
        assert!(with_mapped_role(stored(&["repository:acme/website"], vec![]), &map).is_none());
    }
}
