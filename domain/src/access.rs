//! Roles and what each may do. Ordered: each role can do what the ones
//! before it can.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Registers versions, requests promotions, runs operations and rollbacks
    /// on non-production clusters.
    Deployer,
    /// Approves or rejects promotions; rolls back production.
    Approver,
    /// Users, tokens, environments, clusters, early retirement.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Deployer, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = crate::DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                crate::DomainError::Invalid(format!(
                    "unknown role {s:?}: expected viewer, deployer, approver or admin"
                ))
            })
    }
}

/// Who may move a version by hand: deployers between development and
/// staging; approvers out of production (deprecation) and into retirement
/// once the period has passed; admins retire early. (To production only a
/// promotion moves a version, whatever the role.)
pub fn role_for_stage_move(to: crate::Stage, early: bool) -> Role {
    use crate::Stage;
    match to {
        Stage::Development | Stage::Staging | Stage::Production => Role::Deployer,
        Stage::Deprecated => Role::Approver,
        Stage::Retired if early => Role::Admin,
        Stage::Retired => Role::Approver,
    }
}

/// Who may run an operation (or a rollback) on a cluster: deployers outside
/// production; in a production-policy environment approvers, who are the
/// ones trusted with production.
pub fn role_for_operation(production: bool) -> Role {
    if production {
        Role::Approver
    } else {
        Role::Deployer
    }
}

/// Whom a binding grants its role: one user, or everyone in an identity
/// provider group (`user_groups`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Subject {
    User(String),
    Group(String),
}

impl Subject {
    /// `user` or `group`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::User(_) => "user",
            Subject::Group(_) => "group",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Subject::User(n) | Subject::Group(n) => n,
        }
    }

    /// From its stored kind and name; names are trimmed and may not be empty.
    pub fn parse(kind: &str, name: &str) -> Result<Subject, crate::DomainError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(crate::DomainError::Invalid(format!(
                "a binding's {kind} name must be 1 to 200 characters without control characters"
            )));
        }
        match kind {
            "user" => Ok(Subject::User(name.to_owned())),
            "group" => Ok(Subject::Group(name.to_owned())),
            _ => Err(crate::DomainError::Invalid(format!(
                "unknown binding subject {kind:?}: expected user or group"
            ))),
        }
    }

    /// Whether this subject is the user `username` or one of `groups`.
    pub fn covers(&self, username: &str, groups: &[String]) -> bool {
        match self {
            Subject::User(u) => u == username,
            Subject::Group(g) => groups.iter().any(|x| x == g),
        }
    }
}

/// Where a binding holds: one environment, or all of them (and every action
/// that is not tied to an environment: users, tokens, clusters, subscriptions…).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    All,
    Environment(String),
}

impl Scope {
    /// The stored form: `*` for all, else the environment's name.
    pub const ALL_STORED: &'static str = "*";

    pub fn stored(&self) -> &str {
        match self {
            Scope::All => Self::ALL_STORED,
            Scope::Environment(e) => e,
        }
    }

    pub fn from_stored(s: &str) -> Scope {
        if s == Self::ALL_STORED {
            Scope::All
        } else {
            Scope::Environment(s.to_owned())
        }
    }

    /// From what a person writes: nothing, `all` or `*` for all, else an
    /// environment name (checked for its shape).
    pub fn parse(s: Option<&str>) -> Result<Scope, crate::DomainError> {
        match s.map(str::trim) {
            None | Some("") | Some("all") | Some("*") => Ok(Scope::All),
            Some(e) => crate::policy::parse_environment_name(e).map(Scope::Environment),
        }
    }

    /// The environment, or `None` for all.
    pub fn environment(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Environment(e) => Some(e),
        }
    }

    /// Whether this scope reaches `environment` (`None`: an action tied to
    /// no environment, which only `All` reaches).
    pub fn reaches(&self, environment: Option<&str>) -> bool {
        match (self, environment) {
            (Scope::All, _) => true,
            (Scope::Environment(e), Some(env)) => e == env,
            (Scope::Environment(_), None) => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("all"),
            Scope::Environment(e) => f.write_str(e),
        }
    }
}

/// A role binding: `subject` has `role` in `scope`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Binding {
    pub subject: Subject,
    pub role: Role,
    pub scope: Scope,
}

impl Binding {
    pub fn new(subject: Subject, role: Role, scope: Scope) -> Binding {
        Binding {
            subject,
            role,
            scope,
        }
    }
}

/// "deployer on staging (group platform)"; a user's own binding names no subject.
impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.role, self.scope)?;
        if let Subject::Group(g) = &self.subject {
            write!(f, " (group {g})")?;
        }
        Ok(())
    }
}

/// The bindings among `bindings` that apply to `username` with `groups`,
/// in a stable order (scope all first, then by environment, role, subject).
pub fn bindings_of<'a>(
    bindings: &'a [Binding],
    username: &str,
    groups: &[String],
) -> Vec<&'a Binding> {
    let mut mine: Vec<&Binding> = bindings
        .iter()
        .filter(|b| b.subject.covers(username, groups))
        .collect();
    mine.sort_by(|a, b| (&a.scope, a.role, &a.subject).cmp(&(&b.scope, b.role, &b.subject)));
    mine.dedup();
    mine
}

/// The role the bindings give `username` (with `groups`) in `environment`
/// (`None`: for actions tied to no environment, where only bindings on all
/// count). The highest applicable role wins; `None` when nothing applies.
pub fn role_in(
    bindings: &[Binding],
    username: &str,
    groups: &[String],
    environment: Option<&str>,
) -> Option<Role> {
    bindings
        .iter()
        .filter(|b| b.subject.covers(username, groups) && b.scope.reaches(environment))
        .map(|b| b.role)
        .max()
}

/// The highest role the user holds anywhere (for showing, never for deciding).
pub fn highest_role(bindings: &[Binding], username: &str, groups: &[String]) -> Option<Role> {
    bindings
        .iter()
        .filter(|b| b.subject.covers(username, groups))
        .map(|b| b.role)
        .max()
}

/// A refusal naming the binding that is missing and the bindings the user has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What was asked, e.g. "running an operation on prod-eu (environment production)".
    pub what: String,
    pub needed: Role,
    /// The environment the action concerns; `None`: tied to none (needs all).
    pub environment: Option<String>,
    /// The lower bar checked before the environment is known: the role in
    /// some environment or on all.
    pub somewhere: bool,
    pub username: String,
    /// The user's bindings, as `Binding`'s display writes them.
    pub has: Vec<String>,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.environment {
            None if self.somewhere => write!(
                f,
                "{} needs {} {} binding for some environment or all",
                self.what,
                article(self.needed),
                self.needed
            )?,
            Some(env) => write!(
                f,
                "{} needs {} {} binding for {env} or all",
                self.what,
                article(self.needed),
                self.needed
            )?,
            None => write!(
                f,
                "{} needs {} {} binding for all",
                self.what,
                article(self.needed),
                self.needed
            )?,
        }
        if self.has.is_empty() {
            write!(f, "; {} has no bindings", self.username)
        } else {
            write!(f, "; {} has: {}", self.username, self.has.join(", "))
        }
    }
}

fn article(role: Role) -> &'static str {
    if role == Role::Admin || role == Role::Approver {
        "an"
    } else {
        "a"
    }
}

impl From<Missing> for crate::DomainError {
    fn from(m: Missing) -> Self {
        crate::DomainError::Forbidden(m.to_string())
    }
}

/// Whether `username` (in `groups`) may do `what`, which needs `needed` in
/// `environment` (`None`: an action tied to no environment, which needs the
/// role on all). Reading (`Viewer` with no environment) needs any binding at
/// all: a person bound anywhere may read everything.
pub fn check(
    bindings: &[Binding],
    username: &str,
    groups: &[String],
    needed: Role,
    environment: Option<&str>,
    what: &str,
) -> Result<(), Missing> {
    let allowed = if needed == Role::Viewer && environment.is_none() {
        highest_role(bindings, username, groups).is_some()
    } else {
        role_in(bindings, username, groups, environment).is_some_and(|r| r.allows(needed))
    };
    if allowed {
        return Ok(());
    }
    Err(Missing {
        what: what.to_owned(),
        needed,
        environment: environment.map(str::to_owned),
        somewhere: false,
        username: username.to_owned(),
        has: bindings_of(bindings, username, groups)
            .into_iter()
            .map(ToString::to_string)
            .collect(),
    })
}

/// The lower bar of an action whose environment is not known yet (an
/// operation, a promotion before it is read): `needed` in some environment
/// or on all. The action is checked again in its environment.
pub fn check_somewhere(
    bindings: &[Binding],
    username: &str,
    groups: &[String],
    needed: Role,
    what: &str,
) -> Result<(), Missing> {
    if highest_role(bindings, username, groups).is_some_and(|r| r.allows(needed)) {
        return Ok(());
    }
    Err(Missing {
        what: what.to_owned(),
        needed,
        environment: None,
        somewhere: true,
        username: username.to_owned(),
        has: bindings_of(bindings, username, groups)
            .into_iter()
            .map(ToString::to_string)
            .collect(),
    })
}

/// Whether the action needs `needed` in every one of `environments`; with
/// none, on all. Refuses naming the first environment that is missing.
pub fn check_each(
    bindings: &[Binding],
    username: &str,
    groups: &[String],
    needed: Role,
    environments: &[String],
    what: &str,
) -> Result<(), Missing> {
    if environments.is_empty() {
        return check(bindings, username, groups, needed, None, what);
    }
    for env in environments {
        check(bindings, username, groups, needed, Some(env), what)?;
    }
    Ok(())
}

/// A person and the bindings that apply to them: what the console carries to
/// grey out what they may not do (the server decides again).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    pub username: String,
    pub groups: Vec<String>,
    pub bindings: Vec<Binding>,
}

impl Grants {
    pub fn check(
        &self,
        needed: Role,
        environment: Option<&str>,
        what: &str,
    ) -> Result<(), Missing> {
        check(
            &self.bindings,
            &self.username,
            &self.groups,
            needed,
            environment,
            what,
        )
    }

    pub fn check_somewhere(&self, needed: Role, what: &str) -> Result<(), Missing> {
        check_somewhere(&self.bindings, &self.username, &self.groups, needed, what)
    }

    pub fn check_each(
        &self,
        needed: Role,
        environments: &[String],
        what: &str,
    ) -> Result<(), Missing> {
        check_each(
            &self.bindings,
            &self.username,
            &self.groups,
            needed,
            environments,
            what,
        )
    }

    /// The role in `environment` (`None`: on all).
    pub fn role_in(&self, environment: Option<&str>) -> Option<Role> {
        role_in(&self.bindings, &self.username, &self.groups, environment)
    }

    /// The user's bindings as words ("viewer on all, deployer on staging (group platform)").
    pub fn describe(&self) -> String {
        let mine = bindings_of(&self.bindings, &self.username, &self.groups);
        if mine.is_empty() {
            "no bindings".to_owned()
        } else {
            mine.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// The policy minimum stage of the environments a hand move to `to` concerns:
/// a move to development or staging concerns the environments that take
/// development or staging versions; deprecation and retirement concern the
/// production-policy environments the version leaves. (Production is reached
/// only by a promotion, which is checked in its own environment.)
pub fn stage_move_concerns(to: crate::Stage) -> crate::Stage {
    use crate::Stage;
    match to {
        Stage::Development => Stage::Development,
        Stage::Staging => Stage::Staging,
        Stage::Production | Stage::Deprecated | Stage::Retired => Stage::Production,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, role: Role, scope: Scope) -> Binding {
        Binding::new(Subject::User(name.into()), role, scope)
    }
    fn group(name: &str, role: Role, scope: Scope) -> Binding {
        Binding::new(Subject::Group(name.into()), role, scope)
    }
    fn env(e: &str) -> Scope {
        Scope::Environment(e.into())
    }

    #[test]
    fn the_highest_applicable_role_wins_and_all_applies_everywhere() {
        let b = vec![
            user("alice", Role::Viewer, Scope::All),
            group("platform", Role::Deployer, env("staging")),
            user("alice", Role::Approver, env("production")),
            user("bob", Role::Admin, Scope::All),
        ];
        let g = vec!["platform".to_string()];
        assert_eq!(
            role_in(&b, "alice", &g, Some("staging")),
            Some(Role::Deployer)
        );
        assert_eq!(
            role_in(&b, "alice", &[], Some("staging")),
            Some(Role::Viewer)
        );
        assert_eq!(
            role_in(&b, "alice", &g, Some("production")),
            Some(Role::Approver)
        );
        assert_eq!(role_in(&b, "alice", &g, Some("dev")), Some(Role::Viewer));
        assert_eq!(role_in(&b, "alice", &g, None), Some(Role::Viewer));
        assert_eq!(
            role_in(&b, "carol", &g, Some("staging")),
            Some(Role::Deployer)
        );
        assert_eq!(role_in(&b, "carol", &[], Some("staging")), None);
        assert_eq!(role_in(&b, "bob", &[], Some("anything")), Some(Role::Admin));
    }

    #[test]
    fn a_deployer_in_staging_operates_there_and_not_in_production() {
        let b = vec![group("platform", Role::Deployer, env("staging"))];
        let g = vec!["platform".to_string()];
        assert!(check(&b, "alice", &g, Role::Deployer, Some("staging"), "x").is_ok());
        assert!(check(&b, "alice", &g, Role::Deployer, Some("production"), "x").is_err());
        assert!(check(&b, "alice", &g, Role::Approver, Some("staging"), "x").is_err());
    }

    #[test]
    fn the_refusal_names_the_missing_binding_and_what_the_user_has() {
        let b = vec![
            user("alice", Role::Viewer, Scope::All),
            group("platform", Role::Deployer, env("staging")),
            user("bob", Role::Admin, Scope::All),
        ];
        let g = vec!["platform".to_string()];
        let refused = check(
            &b,
            "alice",
            &g,
            Role::Deployer,
            Some("production"),
            "running an operation on prod-eu (environment production)",
        )
        .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "running an operation on prod-eu (environment production) needs a deployer binding \
             for production or all; alice has: viewer on all, deployer on staging (group platform)"
        );
        let none = check(&[], "dave", &[], Role::Admin, None, "creating a user").unwrap_err();
        assert_eq!(
            none.to_string(),
            "creating a user needs an admin binding for all; dave has no bindings"
        );
    }

    #[test]
    fn actions_tied_to_no_environment_need_the_role_on_all() {
        let b = vec![user("alice", Role::Admin, env("staging"))];
        assert!(check(&b, "alice", &[], Role::Admin, None, "creating a token").is_err());
        assert!(check(&b, "alice", &[], Role::Admin, Some("staging"), "x").is_ok());
        let b = vec![user("alice", Role::Admin, Scope::All)];
        assert!(check(&b, "alice", &[], Role::Admin, None, "creating a token").is_ok());
    }

    #[test]
    fn any_binding_lets_a_person_read_and_none_does_not() {
        let b = vec![user("alice", Role::Deployer, env("staging"))];
        assert!(check(&b, "alice", &[], Role::Viewer, None, "reading").is_ok());
        assert!(check(&b, "bob", &[], Role::Viewer, None, "reading").is_err());
    }

    #[test]
    fn a_group_binding_holds_only_for_members_of_that_group() {
        let b = vec![group("ml-risk", Role::Approver, Scope::All)];
        assert_eq!(
            role_in(&b, "alice", &["ml-risk".into()], Some("production")),
            Some(Role::Approver)
        );
        assert_eq!(
            role_in(&b, "alice", &["platform".into()], Some("production")),
            None
        );
        // A user named like the group is not in it.
        assert_eq!(role_in(&b, "ml-risk", &[], Some("production")), None);
    }

    #[test]
    fn the_lower_bar_takes_the_role_in_any_environment() {
        let b = vec![user("alice", Role::Deployer, env("staging"))];
        assert!(check_somewhere(&b, "alice", &[], Role::Deployer, "pausing").is_ok());
        let refused = check_somewhere(&b, "alice", &[], Role::Approver, "approving").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "approving needs an approver binding for some environment or all; alice has: deployer on staging"
        );
    }

    #[test]
    fn check_each_needs_every_environment_and_all_when_there_are_none() {
        let b = vec![user("alice", Role::Approver, env("prod-eu"))];
        let both = vec!["prod-eu".to_string(), "prod-us".to_string()];
        let refused =
            check_each(&b, "alice", &[], Role::Approver, &both, "deprecating").unwrap_err();
        assert_eq!(refused.environment.as_deref(), Some("prod-us"));
        assert!(check_each(&b, "alice", &[], Role::Approver, &both[..1], "deprecating").is_ok());
        assert!(check_each(&b, "alice", &[], Role::Approver, &[], "deprecating").is_err());
    }

    #[test]
    fn scopes_parse_all_and_environment_names_and_refuse_bad_names() {
        assert_eq!(Scope::parse(None), Ok(Scope::All));
        assert_eq!(Scope::parse(Some("all")), Ok(Scope::All));
        assert_eq!(Scope::parse(Some("*")), Ok(Scope::All));
        assert_eq!(Scope::parse(Some("staging")), Ok(env("staging")));
        assert!(Scope::parse(Some("Prod EU")).is_err());
        assert_eq!(Scope::from_stored(Scope::All.stored()), Scope::All);
        assert_eq!(Scope::from_stored(env("staging").stored()), env("staging"));
    }

    #[test]
    fn subjects_parse_their_kind_and_refuse_empty_or_unknown() {
        assert_eq!(
            Subject::parse("user", " alice "),
            Ok(Subject::User("alice".into()))
        );
        assert_eq!(
            Subject::parse("group", "ml-risk"),
            Ok(Subject::Group("ml-risk".into()))
        );
        assert!(Subject::parse("team", "x").is_err());
        assert!(Subject::parse("user", "  ").is_err());
        assert!(Subject::parse("user", "a\nb").is_err());
    }

    #[test]
    fn hand_moves_concern_the_environments_of_the_stage_they_touch() {
        use crate::Stage;
        assert_eq!(stage_move_concerns(Stage::Staging), Stage::Staging);
        assert_eq!(stage_move_concerns(Stage::Development), Stage::Development);
        assert_eq!(stage_move_concerns(Stage::Deprecated), Stage::Production);
        assert_eq!(stage_move_concerns(Stage::Retired), Stage::Production);
    }

    #[test]
    fn each_role_includes_the_roles_below_it_and_not_above() {
        assert!(Role::Admin.allows(Role::Approver));
        assert!(Role::Approver.allows(Role::Deployer));
        assert!(Role::Deployer.allows(Role::Viewer));
        assert!(!Role::Deployer.allows(Role::Approver));
        assert!(!Role::Viewer.allows(Role::Deployer));
    }

    #[test]
    fn deployers_move_between_development_and_staging_approvers_deprecate_and_admins_retire_early()
    {
        use crate::Stage;
        assert_eq!(role_for_stage_move(Stage::Staging, false), Role::Deployer);
        assert_eq!(
            role_for_stage_move(Stage::Development, false),
            Role::Deployer
        );
        assert_eq!(
            role_for_stage_move(Stage::Deprecated, false),
            Role::Approver
        );
        assert_eq!(role_for_stage_move(Stage::Retired, false), Role::Approver);
        assert_eq!(role_for_stage_move(Stage::Retired, true), Role::Admin);
    }

    #[test]
    fn roles_parse_from_their_names_and_unknown_names_are_refused() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn deployers_operate_outside_production_and_approvers_in_it() {
        assert_eq!(role_for_operation(false), Role::Deployer);
        assert_eq!(role_for_operation(true), Role::Approver);
    }
}
