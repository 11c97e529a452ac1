//! Single sign-on rules: which role an identity provider's groups give, how
//! a signed-in person's username is derived, how a workload token's claims
//! become groups, and what each sign-in failure tells the person.
//!
//! Until role bindings per environment replace it, the role of a person or
//! pipeline signing in through the identity provider comes from one mapping
//! of groups to roles (`SWITCHYARD_OIDC_ROLE_MAP`); `RoleMap::role_for` is
//! the one place that decides it.

use sha2::{Digest, Sha256};

use crate::access::Role;
use crate::DomainError;

/// Group → role, in the order given. The highest role any of a person's
/// groups maps to wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMap {
    entries: Vec<(String, Role)>,
}

/// The role a set of groups gives, and the group that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub role: Role,
    pub group: String,
}

impl RoleMap {
    /// Parses `"ml-admins=admin, ml-risk=approver"`. Blank is an empty map
    /// (nobody signs in through the provider). Refuses a pair without `=`,
    /// an empty group, an unknown role and a group named twice.
    pub fn parse(text: &str) -> Result<RoleMap, DomainError> {
        let mut entries: Vec<(String, Role)> = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((group, role)) = pair.rsplit_once('=') else {
                return Err(DomainError::Invalid(format!(
                    "role map entry {pair:?} is not group=role"
                )));
            };
            let group = group.trim();
            if group.is_empty() {
                return Err(DomainError::Invalid(format!(
                    "role map entry {pair:?} names no group"
                )));
            }
            let role: Role = role.trim().parse()?;
            if entries.iter().any(|(g, _)| g == group) {
                return Err(DomainError::Invalid(format!(
                    "role map names group {group:?} twice"
                )));
            }
            entries.push((group.to_owned(), role));
        }
        Ok(RoleMap { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[(String, Role)] {
        &self.entries
    }

    /// The highest role the groups map to (the first group listed in the
    /// map wins a tie), or none when no group is mapped.
    pub fn role_for(&self, groups: &[String]) -> Option<Granted> {
        let mut best: Option<Granted> = None;
        for (group, role) in &self.entries {
            if !groups.iter().any(|g| g == group) {
                continue;
            }
            if best.as_ref().is_none_or(|b| *role > b.role) {
                best = Some(Granted {
                    role: *role,
                    group: group.clone(),
                });
            }
        }
        best
    }
}

/// Longest username derived from the provider's claims.
pub const MAX_USERNAME_CHARS: usize = 48;

/// The username a person signing in for the first time is given: their
/// `preferred_username` (else the part of their e-mail before `@`, else the
/// subject), lower-cased, with anything but letters, digits, `.`, `_` and
/// `-` turned into `-`. Deterministic for the same claims.
pub fn base_username(preferred: Option<&str>, email: Option<&str>, subject: &str) -> String {
    let from_email = email.and_then(|e| e.split('@').next());
    let raw = [preferred, from_email, Some(subject)]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or("user");
    let mut name: String = raw
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_USERNAME_CHARS)
        .collect();
    name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        "user".to_owned()
    } else {
        name
    }
}

/// The username used instead when `base` is already someone else's (a local
/// user, or a person from another issuer): `base` and a suffix from the
/// issuer and subject, so it is the same at every sign-in and never takes
/// over an existing account.
pub fn disambiguated_username(base: &str, issuer: &str, subject: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(issuer.as_bytes());
    hash.update([0]);
    hash.update(subject.as_bytes());
    let digest = hex::encode(hash.finalize());
    format!("{base}-{}", &digest[..8])
}

/// Groups from a workload token's claim: `repository: "acme/models"` →
/// `repository:acme/models`; an array gives one group per string.
pub fn claim_groups(claim: &str, value: &serde_json::Value) -> Vec<String> {
    let one = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) if !s.trim().is_empty() => {
            Some(format!("{claim}:{}", s.trim()))
        }
        serde_json::Value::Number(n) => Some(format!("{claim}:{n}")),
        serde_json::Value::Bool(b) => Some(format!("{claim}:{b}")),
        _ => None,
    };
    match value {
        serde_json::Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// Why a single sign-on attempt failed, as the sign-in page's `?error=` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoFailure {
    /// Single sign-on is not configured.
    NotConfigured,
    /// The provider could not be reached or answered something unusable.
    ProviderUnavailable,
    /// The callback named no sign-in this server started, or one already used or expired.
    UnknownState,
    /// The provider refused (the person cancelled, or the request was bad).
    ProviderRefused,
    /// The code could not be exchanged for tokens.
    ExchangeFailed,
    /// The ID token failed verification (signature, nonce, or it is malformed).
    BadIdToken,
    /// The ID token had expired when it arrived.
    IdTokenExpired,
    /// The ID token (or the callback's `iss`) names another issuer than the configured one.
    IdTokenWrongIssuer,
    /// The ID token was issued for another client.
    IdTokenWrongAudience,
    /// None of the person's groups maps to a role.
    NoRole,
    /// The account exists but is disabled.
    Disabled,
    /// The store failed.
    Unavailable,
}

impl SsoFailure {
    pub const ALL: [SsoFailure; 12] = [
        SsoFailure::NotConfigured,
        SsoFailure::ProviderUnavailable,
        SsoFailure::UnknownState,
        SsoFailure::ProviderRefused,
        SsoFailure::ExchangeFailed,
        SsoFailure::BadIdToken,
        SsoFailure::IdTokenExpired,
        SsoFailure::IdTokenWrongIssuer,
        SsoFailure::IdTokenWrongAudience,
        SsoFailure::NoRole,
        SsoFailure::Disabled,
        SsoFailure::Unavailable,
    ];

    pub fn code(self) -> &'static str {
        match self {
            SsoFailure::NotConfigured => "sso_not_configured",
            SsoFailure::ProviderUnavailable => "sso_provider_unavailable",
            SsoFailure::UnknownState => "sso_unknown_state",
            SsoFailure::ProviderRefused => "sso_refused",
            SsoFailure::ExchangeFailed => "sso_exchange_failed",
            SsoFailure::BadIdToken => "sso_bad_id_token",
            SsoFailure::IdTokenExpired => "sso_id_token_expired",
            SsoFailure::IdTokenWrongIssuer => "sso_id_token_wrong_issuer",
            SsoFailure::IdTokenWrongAudience => "sso_id_token_wrong_audience",
            SsoFailure::NoRole => "sso_no_role",
            SsoFailure::Disabled => "sso_disabled",
            SsoFailure::Unavailable => "unavailable",
        }
    }

    pub fn from_code(code: &str) -> Option<SsoFailure> {
        SsoFailure::ALL.into_iter().find(|f| f.code() == code)
    }

    /// What the sign-in page says.
    pub fn message(self) -> &'static str {
        match self {
            SsoFailure::NotConfigured => "Single sign-on is not configured on this server.",
            SsoFailure::ProviderUnavailable => {
                "The identity provider cannot be reached or gave an unusable answer. Try again later; local sign-in still works."
            }
            SsoFailure::UnknownState => {
                "This sign-in was not started here, was already used, or took too long. Start again."
            }
            SsoFailure::ProviderRefused => "The identity provider did not sign you in.",
            SsoFailure::ExchangeFailed => {
                "The identity provider did not confirm the sign-in (the code exchange failed). Start again."
            }
            SsoFailure::BadIdToken => {
                "The identity provider's answer failed verification (its signature or nonce); nobody was signed in."
            }
            SsoFailure::IdTokenExpired => {
                "The identity provider's ID token had expired when it arrived (a clock on the provider or on this server may be wrong); nobody was signed in. Start again."
            }
            SsoFailure::IdTokenWrongIssuer => {
                "The sign-in answer came from another identity provider than the one this server trusts; nobody was signed in."
            }
            SsoFailure::IdTokenWrongAudience => {
                "The ID token was issued for another application, not for this Switchyard; nobody was signed in."
            }
            SsoFailure::NoRole => {
                "You signed in at the identity provider, but none of your groups gives a role in Switchyard. Ask an admin to map one of them."
            }
            SsoFailure::Disabled => "Your Switchyard account is disabled.",
            SsoFailure::Unavailable => "Signing in is not possible right now; the server log has the details.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(gs: &[&str]) -> Vec<String> {
        gs.iter().map(|g| (*g).to_owned()).collect()
    }

    #[test]
    fn role_map_parses_and_highest_role_wins() {
        let map = RoleMap::parse(
            "ml-admins=admin, ml-risk=approver,platform=approver , data-science=deployer",
        )
        .expect("valid");
        assert_eq!(map.entries().len(), 4);
        let got = map
            .role_for(&groups(&["data-science", "ml-admins"]))
            .expect("mapped");
        assert_eq!((got.role, got.group.as_str()), (Role::Admin, "ml-admins"));
        let got = map
            .role_for(&groups(&["platform", "ml-risk"]))
            .expect("mapped");
        assert_eq!((got.role, got.group.as_str()), (Role::Approver, "ml-risk"));
        assert_eq!(
            map.role_for(&groups(&["data-science"])).map(|g| g.role),
            Some(Role::Deployer)
        );
        assert_eq!(map.role_for(&groups(&["marketing"])), None);
        assert_eq!(map.role_for(&[]), None);
        // Group names are exact: no prefix or case folding.
        assert_eq!(map.role_for(&groups(&["ML-admins", "ml-admin"])), None);
    }

    #[test]
    fn role_map_refuses_bad_entries() {
        for bad in ["ml-admins", "=admin", "ml-admins=root", "a=admin,a=viewer"] {
            assert!(
                matches!(RoleMap::parse(bad), Err(DomainError::Invalid(_))),
                "{bad} accepted"
            );
        }
        assert!(RoleMap::parse("").expect("blank").is_empty());
        // A group name may contain '=' (the role is after the last one).
        let map = RoleMap::parse("repository:acme/m=x=deployer").expect("valid");
        assert_eq!(map.entries()[0].0, "repository:acme/m=x");
    }

    #[test]
    fn usernames_are_derived_deterministically() {
        assert_eq!(base_username(Some("Alice"), None, "s1"), "alice");
        assert_eq!(
            base_username(None, Some("Bob.Smith@x.test"), "s1"),
            "bob.smith"
        );
        assert_eq!(base_username(Some("  "), None, "00u1 abc"), "00u1-abc");
        assert_eq!(base_username(None, None, "ünï"), "n");
        assert_eq!(base_username(None, None, "üï"), "user");
        assert_eq!(
            base_username(Some(&"x".repeat(100)), None, "s").len(),
            MAX_USERNAME_CHARS
        );
        let a = disambiguated_username("alice", "https://idp.test", "alice");
        assert_eq!(
            a,
            disambiguated_username("alice", "https://idp.test", "alice")
        );
        assert_ne!(
            a,
            disambiguated_username("alice", "https://other.test", "alice")
        );
        assert!(a.starts_with("alice-") && a.len() == "alice-".len() + 8);
    }

    #[test]
    fn claims_become_groups() {
        let v = serde_json::json!("acme/models");
        assert_eq!(
            claim_groups("repository", &v),
            vec!["repository:acme/models"]
        );
        let v = serde_json::json!(["a", "", 3, {"x": 1}]);
        assert_eq!(claim_groups("team", &v), vec!["team:a", "team:3"]);
        assert!(claim_groups("team", &serde_json::Value::Null).is_empty());
    }

    #[test]
    fn failure_codes_round_trip() {
        for f in SsoFailure::ALL {
            assert_eq!(SsoFailure::from_code(f.code()), Some(f));
            assert!(!f.message().is_empty());
        }
        assert_eq!(SsoFailure::from_code("invalid"), None);
    }
}
