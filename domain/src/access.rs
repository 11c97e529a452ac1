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

#[cfg(test)]
mod tests {
    use super::*;

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
