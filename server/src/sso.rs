//! Single sign-on configuration and the identity provider as this server
//! knows it: the OpenID Connect relying party (discovered from the issuer
//! at start-up, and again lazily while the provider is down or after its
//! keys rotate) and the workload-identity JWT verifier of the REST API.
//!
//! The HTTP handlers are in `auth::oidc` (browser sign-in) and
//! `auth::workload` (pipelines' JWTs); the rules (role map, usernames,
//! failure messages) are plain functions in `switchyard_domain::sso`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, ProviderMetadataWithLogout, RedirectUrl,
};
use switchyard_domain::sso::RoleMap;
use tokio::sync::{Mutex, RwLock};

use crate::auth::workload::JwtVerifier;

/// How long discovery, token and JWKS requests to the provider may take.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The provider's keys are fetched again on an unknown key id at most this often.
pub const KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// How long a started sign-in waits for the person to come back.
pub const PENDING_MINUTES: i64 = 10;

/// `SWITCHYARD_OIDC_*`: the console's sign-in through an identity provider.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// `SWITCHYARD_OIDC_ISSUER`, e.g. `https://idp.example.com/realms/acme`.
    pub issuer: String,
    /// `SWITCHYARD_OIDC_CLIENT_ID`.
    pub client_id: String,
    /// `SWITCHYARD_OIDC_CLIENT_SECRET` or the file `SWITCHYARD_OIDC_CLIENT_SECRET_FILE` names.
    pub client_secret: String,
    /// `SWITCHYARD_OIDC_SCOPES`, space-separated; default `openid profile email groups`.
    pub scopes: Vec<String>,
    /// `SWITCHYARD_OIDC_GROUPS_CLAIM`, default `groups`.
    pub groups_claim: String,
    /// `SWITCHYARD_OIDC_REDIRECT_URL`: `https://<switchyard>/auth/oidc/callback`.
    pub redirect_url: String,
    /// `SWITCHYARD_OIDC_NAME`: the button says "Sign in with <name>"; default `SSO`.
    pub name: String,
}

/// `SWITCHYARD_JWT_*`: pipelines' access tokens accepted by the REST API.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// `SWITCHYARD_JWT_ISSUER`: the `iss` tokens must carry.
    pub issuer: String,
    /// `SWITCHYARD_JWT_AUDIENCE`: the `aud` tokens must carry.
    pub audience: String,
    /// `SWITCHYARD_JWT_JWKS_URL`; default: the `jwks_uri` of the issuer's discovery document.
    pub jwks_url: Option<String>,
    /// `SWITCHYARD_JWT_SUBJECT_CLAIM`, default `sub`: the caller is `jwt:<its value>`.
    pub subject_claim: String,
    /// `SWITCHYARD_JWT_GROUP_CLAIMS`, comma-separated: each claim's values become
    /// groups `<claim>:<value>` (e.g. `repository:acme/models`).
    pub group_claims: Vec<String>,
    /// `SWITCHYARD_JWT_LEEWAY_SECONDS`, default 60: clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
}

#[derive(Debug, Clone)]
pub struct SsoSettings {
    pub oidc: Option<OidcSettings>,
    pub jwt: Option<JwtSettings>,
    /// `SWITCHYARD_OIDC_ROLE_MAP`: `group=role,…`, for people and pipelines alike.
    pub role_map: RoleMap,
    /// `SWITCHYARD_LOCAL_SIGNIN=off` turns the username/password form off.
    pub local_sign_in: bool,
}

impl Default for SsoSettings {
    fn default() -> Self {
        SsoSettings {
            oidc: None,
            jwt: None,
            role_map: RoleMap::default(),
            local_sign_in: true,
        }
    }
}

impl SsoSettings {
    /// From the environment (documented in the README, "Connect your identity provider").
    pub fn from_env() -> anyhow::Result<SsoSettings> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// From `var` (tests pass a map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<SsoSettings> {
        let var = |k: &str| {
            var(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let oidc = match var("SWITCHYARD_OIDC_ISSUER") {
            None => None,
            Some(issuer) => {
                let need = |k: &str| {
                    var(k).with_context(|| {
                        format!("SWITCHYARD_OIDC_ISSUER is set, so {k} must be too")
                    })
                };
                let client_secret = match (
                    var("SWITCHYARD_OIDC_CLIENT_SECRET"),
                    var("SWITCHYARD_OIDC_CLIENT_SECRET_FILE"),
                ) {
                    (Some(s), None) => s,
                    (None, Some(file)) => std::fs::read_to_string(&file)
                        .with_context(|| format!("cannot read SWITCHYARD_OIDC_CLIENT_SECRET_FILE={file}"))?
                        .trim()
                        .to_owned(),
                    (Some(_), Some(_)) => anyhow::bail!(
                        "set SWITCHYARD_OIDC_CLIENT_SECRET or SWITCHYARD_OIDC_CLIENT_SECRET_FILE, not both"
                    ),
                    (None, None) => anyhow::bail!(
                        "SWITCHYARD_OIDC_ISSUER is set, so SWITCHYARD_OIDC_CLIENT_SECRET or SWITCHYARD_OIDC_CLIENT_SECRET_FILE must be too"
                    ),
                };
                IssuerUrl::new(issuer.clone())
                    .with_context(|| format!("SWITCHYARD_OIDC_ISSUER={issuer:?} is not a URL"))?;
                let redirect_url = need("SWITCHYARD_OIDC_REDIRECT_URL")?;
                RedirectUrl::new(redirect_url.clone()).with_context(|| {
                    format!("SWITCHYARD_OIDC_REDIRECT_URL={redirect_url:?} is not a URL")
                })?;
                let scopes = var("SWITCHYARD_OIDC_SCOPES")
                    .unwrap_or_else(|| "openid profile email groups".to_owned())
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                Some(OidcSettings {
                    issuer,
                    client_id: need("SWITCHYARD_OIDC_CLIENT_ID")?,
                    client_secret,
                    scopes,
                    groups_claim: var("SWITCHYARD_OIDC_GROUPS_CLAIM")
                        .unwrap_or_else(|| "groups".into()),
                    redirect_url,
                    name: var("SWITCHYARD_OIDC_NAME").unwrap_or_else(|| "SSO".into()),
                })
            }
        };
        let jwt = match var("SWITCHYARD_JWT_ISSUER") {
            None => None,
            Some(issuer) => Some(JwtSettings {
                audience: var("SWITCHYARD_JWT_AUDIENCE").context(
                    "SWITCHYARD_JWT_ISSUER is set, so SWITCHYARD_JWT_AUDIENCE must be too",
                )?,
                jwks_url: var("SWITCHYARD_JWT_JWKS_URL"),
                subject_claim: var("SWITCHYARD_JWT_SUBJECT_CLAIM").unwrap_or_else(|| "sub".into()),
                group_claims: var("SWITCHYARD_JWT_GROUP_CLAIMS")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                leeway_seconds: match var("SWITCHYARD_JWT_LEEWAY_SECONDS") {
                    None => 60,
                    Some(s) => s.parse().with_context(|| {
                        format!("SWITCHYARD_JWT_LEEWAY_SECONDS={s:?} is not a number of seconds")
                    })?,
                },
                issuer,
            }),
        };
        let role_map = RoleMap::parse(&var("SWITCHYARD_OIDC_ROLE_MAP").unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("SWITCHYARD_OIDC_ROLE_MAP: {e}"))?;
        let local_sign_in = match var("SWITCHYARD_LOCAL_SIGNIN").as_deref() {
            None | Some("on") => true,
            Some("off") => {
                if oidc.is_none() {
                    anyhow::bail!(
                        "SWITCHYARD_LOCAL_SIGNIN=off needs SWITCHYARD_OIDC_ISSUER: nobody could sign in"
                    );
                }
                false
            }
            Some(other) => anyhow::bail!("SWITCHYARD_LOCAL_SIGNIN={other:?}: expected on or off"),
        };
        Ok(SsoSettings {
            oidc,
            jwt,
            role_map,
            local_sign_in,
        })
    }
}

/// Claims beyond the standard ones (the groups claim is named by configuration).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for ExtraClaims {}

/// An ID token with every claim kept.
pub type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// The client as discovery leaves it: authorization endpoint set, token and
/// userinfo endpoints as the provider published them.
pub type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The provider as discovered.
pub struct Discovered {
    pub client: OidcClient,
    pub end_session: Option<openidconnect::EndSessionUrl>,
}

/// Single sign-on at run time; one per process, in `AppState`.
pub struct Sso {
    pub settings: SsoSettings,
    /// For the provider: no redirects followed (openidconnect's advice).
    pub http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
    /// When discovery was last tried (limits refetches on unknown keys).
    last_discovery: Mutex<Option<Instant>>,
    pub jwt: Option<JwtVerifier>,
}

impl Sso {
    pub fn new(settings: SsoSettings) -> anyhow::Result<Sso> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .context("cannot build the identity provider's HTTP client")?;
        let jwt = settings
            .jwt
            .clone()
            .map(|s| JwtVerifier::new(s, http.clone()));
        Ok(Sso {
            settings,
            http,
            discovered: RwLock::new(None),
            last_discovery: Mutex::new(None),
            jwt,
        })
    }

    /// No single sign-on, no workload identity: local sign-in only.
    pub fn disabled() -> Sso {
        Sso {
            settings: SsoSettings::default(),
            http: reqwest::Client::new(),
            discovered: RwLock::new(None),
            last_discovery: Mutex::new(None),
            jwt: None,
        }
    }

    pub fn oidc(&self) -> Option<&OidcSettings> {
        self.settings.oidc.as_ref()
    }

    /// The discovered provider, discovering it now if it was not yet (the
    /// provider was down at start-up). `None`: not configured or unreachable.
    pub async fn provider(&self) -> Option<Arc<Discovered>> {
        if let Some(d) = self.discovered.read().await.clone() {
            return Some(d);
        }
        self.discover(Duration::ZERO).await
    }

    /// Discovers the provider again (new keys), unless it was tried less
    /// than `min_interval` ago; answers what is known afterwards.
    pub async fn discover(&self, min_interval: Duration) -> Option<Arc<Discovered>> {
        let settings = self.settings.oidc.as_ref()?;
        let mut last = self.last_discovery.lock().await;
        if last.is_some_and(|t| t.elapsed() < min_interval) {
            return self.discovered.read().await.clone();
        }
        *last = Some(Instant::now());
        match discover(settings, &self.http).await {
            Ok(d) => {
                let d = Arc::new(d);
                *self.discovered.write().await = Some(d.clone());
                tracing::info!(issuer = %settings.issuer, "identity provider discovered");
                Some(d)
            }
            Err(e) => {
                tracing::warn!(issuer = %settings.issuer, error = %format!("{e:#}"), "cannot discover the identity provider");
                self.discovered.read().await.clone()
            }
        }
    }
}

async fn discover(settings: &OidcSettings, http: &reqwest::Client) -> anyhow::Result<Discovered> {
    let issuer = IssuerUrl::new(settings.issuer.clone()).context("the issuer is not a URL")?;
    let metadata = ProviderMetadataWithLogout::discover_async(issuer, http)
        .await
        .context("discovery failed")?;
    let end_session = metadata.additional_metadata().end_session_endpoint.clone();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(settings.client_id.clone()),
        Some(ClientSecret::new(settings.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(settings.redirect_url.clone()).context("redirect URL")?);
    Ok(Discovered {
        client,
        end_session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn settings_need_their_companions_and_say_which() {
        let none = SsoSettings::from_vars(vars(&[])).expect("nothing configured");
        assert!(none.oidc.is_none() && none.jwt.is_none() && none.local_sign_in);
        let err = SsoSettings::from_vars(vars(&[("SWITCHYARD_OIDC_ISSUER", "http://idp.test")]))
            .expect_err("no secret");
        assert!(format!("{err:#}").contains("SWITCHYARD_OIDC_CLIENT_SECRET"));
        let err = SsoSettings::from_vars(vars(&[("SWITCHYARD_LOCAL_SIGNIN", "off")]))
            .expect_err("nobody could sign in");
        assert!(format!("{err:#}").contains("SWITCHYARD_OIDC_ISSUER"));
        let err = SsoSettings::from_vars(vars(&[("SWITCHYARD_OIDC_ROLE_MAP", "a=root")]))
            .expect_err("bad role");
        assert!(format!("{err:#}").contains("SWITCHYARD_OIDC_ROLE_MAP"));
        let full = SsoSettings::from_vars(vars(&[
            ("SWITCHYARD_OIDC_ISSUER", "http://idp.test"),
            ("SWITCHYARD_OIDC_CLIENT_ID", "sy"),
            ("SWITCHYARD_OIDC_CLIENT_SECRET", "s"),
            (
                "SWITCHYARD_OIDC_REDIRECT_URL",
                "http://sy.test/auth/oidc/callback",
            ),
            ("SWITCHYARD_LOCAL_SIGNIN", "off"),
            ("SWITCHYARD_JWT_ISSUER", "http://idp.test"),
            ("SWITCHYARD_JWT_AUDIENCE", "switchyard"),
            ("SWITCHYARD_JWT_GROUP_CLAIMS", "repository, ref"),
        ]))
        .expect("valid");
        let oidc = full.oidc.expect("oidc");
        assert_eq!(oidc.scopes, ["openid", "profile", "email", "groups"]);
        assert_eq!(
            (oidc.groups_claim.as_str(), oidc.name.as_str()),
            ("groups", "SSO")
        );
        assert!(!full.local_sign_in);
        let jwt = full.jwt.expect("jwt");
        assert_eq!(jwt.group_claims, ["repository", "ref"]);
        assert_eq!(
            (jwt.subject_claim.as_str(), jwt.leeway_seconds),
            ("sub", 60)
        );
    }
}
