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
        Stage::Development => &[(
            Stage::Staging,
            "feature complete: by hand or through a promotion",
        )],
        Stage::Staging => &[
            (Stage::Production, "only through an approved promotion"),
            (Stage::Development, "sent back, by hand"),
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
            (
                Stage::Production,
                "un-deprecate, only through an approved promotion",
            ),
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

fn describe_via(via: MoveVia) -> &'static str {
    match via {
        MoveVia::Manual { .. } => "by hand",
        MoveVia::Promotion => "through a promotion",
        MoveVia::Superseded => "because a newer version was promoted",
        MoveVia::System => "by the retirement job",
    }
}

/// Decides whether `from → to` may happen in `ctx`.
pub fn check_move(from: Stage, to: Stage, ctx: &MoveContext) -> Result<(), DomainError> {
    use MoveVia::{Manual, Promotion, Superseded, System};
    use Stage::{Deprecated, Development, Production, Retired, Staging};

    let illegal = |why: String| {
        Err(DomainError::IllegalMove(format!(
            "{why}; {}",
            describe_allowed(from)
        )))
    };
    let wrong_via = || {
        illegal(format!(
            "{from} → {to} cannot be made {}",
            describe_via(ctx.via)
        ))
    };

    match (from, to) {
        (Development, Staging) => match ctx.via {
            Manual { .. } | Promotion => Ok(()),
            Superseded | System => wrong_via(),
        },
        (Staging, Development) => match ctx.via {
            Manual { .. } => Ok(()),
            Promotion | Superseded | System => wrong_via(),
        },
        (Staging | Deprecated, Production) => match ctx.via {
            Promotion => Ok(()),
            Manual { .. } | Superseded | System => illegal(format!(
                "{from} → {to} is only made through an approved promotion: \
                 request one (POST /api/v1/promotions) and have it approved"
            )),
        },
        (Production, Deprecated) => match ctx.via {
            Manual { .. } | Superseded => Ok(()),
            Promotion | System => wrong_via(),
        },
        (Deprecated, Retired) => check_retirement(ctx, illegal),
        _ if from == to => illegal(format!("the version is already {to}")),
        _ => illegal(format!("{from} → {to} is not allowed")),
    }
}

/// deprecated → retired: anyone (or the retirement job) once the deprecation
/// period is over; before that only an admin, and only with a reason.
fn check_retirement(
    ctx: &MoveContext,
    illegal: impl Fn(String) -> Result<(), DomainError>,
) -> Result<(), DomainError> {
    use MoveVia::{Manual, Promotion, Superseded, System};

    let due = ctx
        .deprecated_at
        .map(|at| retires_at(at, ctx.deprecation_days));
    let period_over = due.is_some_and(|due| ctx.now >= due);
    let period_end = due.map_or_else(
        || "an unknown time (no deprecation is recorded)".to_owned(),
        |d| d.to_rfc3339(),
    );
    match ctx.via {
        Promotion | Superseded => illegal(format!(
            "deprecated → retired cannot be made {}",
            describe_via(ctx.via)
        )),
        Manual { .. } | System if period_over => Ok(()),
        Manual { is_admin: true } if ctx.has_reason => Ok(()),
        Manual { is_admin: true } => Err(DomainError::Invalid(format!(
            "retiring before the deprecation period ends (at {period_end}) needs a reason"
        ))),
        Manual { is_admin: false } | System => illegal(format!(
            "deprecated → retired is not allowed yet: the deprecation period ends at \
             {period_end}; to retire earlier, an admin sends `\"early\": true` with a reason"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stage::*;

    const DAY: i64 = 86_400_000_000;
    const VIAS: [MoveVia; 5] = [
        MoveVia::Manual { is_admin: false },
        MoveVia::Manual { is_admin: true },
        MoveVia::Promotion,
        MoveVia::Superseded,
        MoveVia::System,
    ];

    fn deprecated_at() -> Timestamp {
        Timestamp::from_micros(1_000 * DAY)
    }

    /// A context in which any deprecation period has passed and a reason was given.
    fn settled(via: MoveVia) -> MoveContext {
        MoveContext {
            via,
            now: deprecated_at().plus_days(91),
            deprecated_at: Some(deprecated_at()),
            deprecation_days: DEPRECATION_DAYS_DEFAULT,
            has_reason: true,
        }
    }

    fn retiring(via: MoveVia, days_after: i64, has_reason: bool) -> MoveContext {
        MoveContext {
            via,
            now: deprecated_at().plus_days(days_after),
            deprecated_at: Some(deprecated_at()),
            deprecation_days: DEPRECATION_DAYS_DEFAULT,
            has_reason,
        }
    }

    fn expected_allowed(from: Stage, to: Stage, via: MoveVia) -> bool {
        use MoveVia::*;
        matches!(
            (from, to, via),
            (Development, Staging, Manual { .. } | Promotion)
                | (Staging, Development, Manual { .. })
                | (Staging, Production, Promotion)
                | (Production, Deprecated, Manual { .. } | Superseded)
                | (Deprecated, Retired, Manual { .. } | System)
                | (Deprecated, Production, Promotion)
        )
    }

    #[test]
    fn exactly_the_moves_the_product_allows_are_allowed_for_every_pair_and_way() {
        let mut allowed = 0;
        for from in Stage::ALL {
            for to in Stage::ALL {
                for via in VIAS {
                    let result = check_move(from, to, &settled(via));
                    if expected_allowed(from, to, via) {
                        allowed += 1;
                        assert_eq!(
                            result,
                            Ok(()),
                            "{from} → {to} via {via:?} should be allowed"
                        );
                    } else {
                        match result {
                            Err(DomainError::IllegalMove(msg)) => {
                                let names_moves = msg
                                    .contains(&format!("allowed moves from {from}:"))
                                    || (from == Retired && msg.contains("never moves again"));
                                assert!(names_moves, "{from} → {to} via {via:?}: {msg}");
                            }
                            other => panic!(
                                "{from} → {to} via {via:?}: expected IllegalMove, got {other:?}"
                            ),
                        }
                    }
                }
            }
        }
        assert_eq!(allowed, 13, "(from, to, via) triples allowed");
    }

    #[test]
    fn a_refused_move_lists_each_allowed_move_with_how_it_is_made() {
        let Err(DomainError::IllegalMove(msg)) = check_move(
            Staging,
            Retired,
            &settled(MoveVia::Manual { is_admin: true }),
        ) else {
            panic!("staging → retired must be refused");
        };
        assert_eq!(
            msg,
            "staging → retired is not allowed; allowed moves from staging: \
             staging → production (only through an approved promotion); \
             staging → development (sent back, by hand)"
        );
    }

    #[test]
    fn promoting_to_production_by_hand_is_refused_with_directions_to_request_a_promotion() {
        for from in [Staging, Deprecated] {
            let Err(DomainError::IllegalMove(msg)) = check_move(
                from,
                Production,
                &settled(MoveVia::Manual { is_admin: true }),
            ) else {
                panic!("{from} → production by hand must be refused");
            };
            assert!(msg.contains("POST /api/v1/promotions"), "{msg}");
        }
    }

    #[test]
    fn moving_to_the_current_stage_is_refused_saying_it_is_already_there() {
        let Err(DomainError::IllegalMove(msg)) =
            check_move(Production, Production, &settled(MoveVia::Promotion))
        else {
            panic!("production → production must be refused");
        };
        assert!(
            msg.starts_with("the version is already production"),
            "{msg}"
        );
    }

    #[test]
    fn a_retired_version_never_moves_again() {
        for to in Stage::ALL {
            for via in VIAS {
                let Err(DomainError::IllegalMove(msg)) = check_move(Retired, to, &settled(via))
                else {
                    panic!("retired → {to} must be refused");
                };
                assert!(msg.contains("a retired version never moves again"), "{msg}");
            }
        }
    }

    #[test]
    fn the_retirement_job_retires_once_the_default_30_day_period_has_passed() {
        assert_eq!(
            check_move(Deprecated, Retired, &retiring(MoveVia::System, 30, false)),
            Ok(())
        );
        assert_eq!(
            check_move(
                Deprecated,
                Retired,
                &retiring(MoveVia::Manual { is_admin: false }, 30, false)
            ),
            Ok(())
        );
    }

    #[test]
    fn the_retirement_job_cannot_retire_a_day_early_and_says_when_the_period_ends() {
        let ctx = retiring(MoveVia::System, 29, true);
        let Err(DomainError::IllegalMove(msg)) = check_move(Deprecated, Retired, &ctx) else {
            panic!("early retirement by the job must be refused");
        };
        let due = deprecated_at().plus_days(30).to_rfc3339();
        assert!(
            msg.contains(&format!("the deprecation period ends at {due}")),
            "{msg}"
        );
    }

    #[test]
    fn one_microsecond_before_the_period_ends_is_still_too_early() {
        let mut ctx = retiring(MoveVia::System, 30, false);
        ctx.now = Timestamp::from_micros(ctx.now.micros() - 1);
        assert!(check_move(Deprecated, Retired, &ctx).is_err());
    }

    #[test]
    fn a_longer_configured_period_is_respected() {
        let mut ctx = retiring(MoveVia::System, 45, false);
        ctx.deprecation_days = 60;
        assert!(check_move(Deprecated, Retired, &ctx).is_err());
        ctx.now = deprecated_at().plus_days(60);
        assert_eq!(check_move(Deprecated, Retired, &ctx), Ok(()));
    }

    #[test]
    fn a_non_admin_cannot_retire_early_even_with_a_reason() {
        let ctx = retiring(MoveVia::Manual { is_admin: false }, 1, true);
        assert!(matches!(
            check_move(Deprecated, Retired, &ctx),
            Err(DomainError::IllegalMove(_))
        ));
    }

    #[test]
    fn a_refused_early_retirement_names_the_flag_that_asks_for_it() {
        let ctx = retiring(MoveVia::Manual { is_admin: false }, 1, true);
        let Err(DomainError::IllegalMove(msg)) = check_move(Deprecated, Retired, &ctx) else {
            panic!("early retirement without the flag must be refused");
        };
        assert!(msg.contains(r#""early": true"#), "{msg}");
    }

    #[test]
    fn an_admin_can_retire_early_with_a_reason() {
        let ctx = retiring(MoveVia::Manual { is_admin: true }, 1, true);
        assert_eq!(check_move(Deprecated, Retired, &ctx), Ok(()));
    }

    #[test]
    fn an_admin_retiring_early_without_a_reason_is_asked_for_one() {
        let ctx = retiring(MoveVia::Manual { is_admin: true }, 1, false);
        let Err(DomainError::Invalid(msg)) = check_move(Deprecated, Retired, &ctx) else {
            panic!("early retirement without a reason must be refused");
        };
        assert!(msg.contains("needs a reason"), "{msg}");
    }

    #[test]
    fn without_a_recorded_deprecation_time_only_an_admin_with_a_reason_may_retire() {
        let mut ctx = retiring(MoveVia::System, 365, false);
        ctx.deprecated_at = None;
        let Err(DomainError::IllegalMove(msg)) = check_move(Deprecated, Retired, &ctx) else {
            panic!("the job must not retire without a deprecation time");
        };
        assert!(msg.contains("unknown time"), "{msg}");
        ctx.via = MoveVia::Manual { is_admin: true };
        ctx.has_reason = true;
        assert_eq!(check_move(Deprecated, Retired, &ctx), Ok(()));
    }

    #[test]
    fn the_deprecation_period_is_configurable_from_30_to_90_days_only() {
        assert_eq!(deprecation_days(30), Ok(30));
        assert_eq!(deprecation_days(90), Ok(90));
        for bad in [0, 29, 91] {
            let Err(DomainError::Invalid(msg)) = deprecation_days(bad) else {
                panic!("{bad} days must be refused");
            };
            assert!(msg.contains("between 30 and 90 days"), "{msg}");
        }
    }

    #[test]
    fn a_version_retires_the_configured_number_of_days_after_deprecation() {
        assert_eq!(
            retires_at(deprecated_at(), 30),
            Timestamp::from_micros(1_030 * DAY)
        );
    }

    #[test]
    fn stages_read_and_print_as_lowercase_words() {
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse::<Stage>(), Ok(stage));
            assert_eq!(
                serde_json::to_string(&stage).expect("serialises"),
                format!("\"{stage}\"")
            );
        }
        assert!("Production".parse::<Stage>().is_err());
    }
}
