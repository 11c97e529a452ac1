//! Lifecycle stages and the moves allowed between them.
//!
//! development → staging → production → deprecated → retired, plus
//! staging → development (sent back) and deprecated → production (un-deprecate
//! for a rollback, through a promotion).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DomainError, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Development,
    Staging,
    Production,
    Deprecated,
    Retired,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Development,
        Stage::Staging,
        Stage::Production,
        Stage::Deprecated,
        Stage::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Development => "development",
            Stage::Staging => "staging",
            Stage::Production => "production",
            Stage::Deprecated => "deprecated",
            Stage::Retired => "retired",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "unknown stage {s:?}: expected one of development, staging, production, deprecated, retired"
                ))
            })
    }
}

/// Who or what asks for a move; some moves are only open to some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveVia {
    /// A person through the stage endpoint or a board button.
    Manual { is_admin: bool },
    /// An approved promotion being applied.
    Promotion,
    /// Automatic: a newer version of the model was promoted to production.
    Superseded,
    /// The background job retiring versions whose deprecation period passed.
    System,
}

/// Deprecation period bounds, in days.
pub const DEPRECATION_DAYS_DEFAULT: u32 = 30;
pub const DEPRECATION_DAYS_MIN: u32 = 30;
pub const DEPRECATION_DAYS_MAX: u32 = 90;

/// Validates a configured deprecation period.
pub fn deprecation_days(days: u32) -> Result<u32, DomainError> {
    if (DEPRECATION_DAYS_MIN..=DEPRECATION_DAYS_MAX).contains(&days) {
        Ok(days)
    } else {
        Err(DomainError::Invalid(format!(
            "the deprecation period must be between {DEPRECATION_DAYS_MIN} and {DEPRECATION_DAYS_MAX} days, not {days}"
        )))
    }
}

/// When a version deprecated at `deprecated_at` may be retired.
pub fn retires_at(deprecated_at: Timestamp, deprecation_days: u32) -> Timestamp {
    deprecated_at.plus_days(i64::from(deprecation_days))
}

/// Everything a move decision needs besides the two stages.
#[derive(Debug, Clone, Copy)]
pub struct MoveContext {
    pub via: MoveVia,
    pub now: Timestamp,
    /// When the version entered `deprecated` (only read for deprecated → retired).
    pub deprecated_at: Option<Timestamp>,
    pub deprecation_days: u32,
    /// Whether a non-empty reason was given.
    pub has_reason: bool,
}

/// The moves out of `from`, each with how it is made, for error messages and
/// for the buttons on the lifecycle board.
pub fn allowed_moves(from: Stage) -> &'static [(Stage, &'static str)] {
    match from {
        Stage::Development => &[(Stage::Staging, "feature complete")],
        Stage::Staging => &[
            (Stage::Production, "only through an approved promotion"),
            (Stage::Development, "sent back"),
        ],
        Stage::Production => &[(
            Stage::Deprecated,
            "by hand, or automatically when a newer version is promoted",
        )],
        Stage::Deprecated => &[
            (
                Stage::Retired,
                "after the deprecation period; earlier only by an admin with a reason",
            ),
            (Stage::Production, "un-deprecate, only through an approved promotion"),
        ],
        Stage::Retired => &[],
    }
}

fn describe_allowed(from: Stage) -> String {
    let moves = allowed_moves(from);
    if moves.is_empty() {
        return format!("a {from} version never moves again");
    }
    let list: Vec<String> = moves
        .iter()
        .map(|(to, how)| format!("{from} → {to} ({how})"))
        .collect();
    format!("allowed moves from {from}: {}", list.join("; "))
}

/// Decides whether `from → to` may happen in `ctx`.
pub fn check_move(from: Stage, to: Stage, ctx: &MoveContext) -> Result<(), DomainError> {
    use Stage::*;
    let refuse = |why: &str| {
        Err(DomainError::IllegalMove(format!(
            "{from} → {to} is not allowed{why}; {}",
            describe_allowed(from)
        )))
    };
    match (from, to, ctx.via) {
        (Development, Staging, MoveVia::Manual { .. })
        | (Staging, Development, MoveVia::Manual { .. }) => Ok(()),
        (Staging, Production, MoveVia::Promotion) | (Deprecated, Production, MoveVia::Promotion) => {
            Ok(())
        }
        (Staging | Deprecated, Production, _) => refuse(
            " here: request a promotion (POST /api/v1/promotions) and have it approved",
        ),
        (Production, Deprecated, MoveVia::Manual { .. } | MoveVia::Superseded) => Ok(()),
        (Deprecated, Retired, via @ (MoveVia::Manual { .. } | MoveVia::System)) => {
            let due = ctx
                .deprecated_at
                .map(|at| retires_at(at, ctx.deprecation_days));
            match due {
                Some(due) if ctx.now >= due => Ok(()),
                _ => match via {
                    MoveVia::Manual { is_admin: true } if ctx.has_reason => Ok(()),
                    MoveVia::Manual { is_admin: true } => Err(DomainError::Invalid(
                        "retiring before the deprecation period ends needs a reason".into(),
                    )),
                    _ => {
                        let when = due.map(|d| d.to_rfc3339()).unwrap_or_else(|| "unknown".into());
                        refuse(&format!(
                            " yet: the deprecation period ends at {when}; only an admin may retire earlier, with a reason"
                        ))
                    }
                },
            }
        }
        _ if from == to => Err(DomainError::IllegalMove(format!(
            "the version is already {to}; {}",
            describe_allowed(from)
        ))),
        _ => refuse(""),
    }
}
