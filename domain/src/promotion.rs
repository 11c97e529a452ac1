//! Promotions: a request to bring a version into an environment (and into
//! the stage that environment requires), approved by other people.
//!
//! The rules here are pure: the store calls them inside the transaction that
//! holds the ledger head, so the state they judge cannot change underneath.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::lifecycle::{check_move, MoveContext, MoveVia};
use crate::policy::{all_met, ApprovalPolicy, EnvPolicy, Requirement, Vote};
use crate::types::Version;
use crate::{DomainError, FullId, Stage, Timestamp};

/// How long a request waits for its approvals before it expires, unless
/// the environment's policy says otherwise (`EnvPolicy::expiry_hours`).
pub const DEFAULT_EXPIRY_HOURS: i64 = crate::policy::DEFAULT_EXPIRY_HOURS as i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromotionStatus {
    Pending,
    Applied,
    Rejected,
    Expired,
    /// Taken back by the person who requested it, before it was decided.
    Withdrawn,
}

impl PromotionStatus {
    pub const ALL: [PromotionStatus; 5] = [
        PromotionStatus::Pending,
        PromotionStatus::Applied,
        PromotionStatus::Rejected,
        PromotionStatus::Expired,
        PromotionStatus::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PromotionStatus::Pending => "pending",
            PromotionStatus::Applied => "applied",
            PromotionStatus::Rejected => "rejected",
            PromotionStatus::Expired => "expired",
            PromotionStatus::Withdrawn => "withdrawn",
        }
    }
}

impl fmt::Display for PromotionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PromotionStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PromotionStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "unknown promotion status {s:?}: expected pending, applied, rejected, expired or withdrawn"
                ))
            })
    }
}

/// One person's approval, bound to the config it approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The user who approved (the two-person rule compares users).
    pub approver: String,
    /// The ledger actor: the user, or the token they used.
    pub actor: String,
    pub config_hash: String,
    pub reason: Option<String>,
    pub at: Timestamp,
    /// The approver's groups when they approved (what required groups count).
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: i64,
    pub full_id: FullId,
    pub environment: String,
    /// The stage the version is in once the promotion is applied.
    pub to_stage: Stage,
    /// The config the request (and every approval) is about.
    pub config_hash: String,
    pub reason: String,
    pub requested_by: String,
    /// The requester's groups when they asked.
    #[serde(default)]
    pub requester_groups: Vec<String>,
    pub requested_at: Timestamp,
    pub expires_at: Timestamp,
    /// `policy.required_approvals`, kept for older clients.
    pub required_approvals: u32,
    /// The environment's approval policy when the promotion was requested:
    /// the one it is judged by, and the one recorded when it is applied.
    pub policy: ApprovalPolicy,
    /// Each requirement of `policy`, met or open with the approvals so far
    /// (computed when read; see `Promotion::evaluate`).
    #[serde(default)]
    pub requirements: Vec<Requirement>,
    pub status: PromotionStatus,
    pub approvals: Vec<Approval>,
    pub decided_at: Option<Timestamp>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
}

impl Promotion {
    /// The approvals of the config the promotion is about, as the policy sees them.
    fn votes(&self) -> Vec<Vote<'_>> {
        self.approvals
            .iter()
            .filter(|a| a.config_hash == self.config_hash)
            .map(|a| Vote {
                approver: &a.approver,
                groups: &a.groups,
            })
            .collect()
    }

    /// Each requirement of the policy, met or open with the approvals so far.
    pub fn evaluate(&self) -> Vec<Requirement> {
        self.policy
            .evaluate(&self.requested_by, &self.requester_groups, &self.votes())
    }

    /// Recomputes `requirements` (after reading or adding an approval).
    pub fn refresh_requirements(&mut self) {
        self.requirements = self.evaluate();
    }

    /// Whether the approvals so far meet every requirement of the policy.
    pub fn is_fully_approved(&self) -> bool {
        all_met(&self.evaluate())
    }
}

/// Who can still usefully approve `p`, by name, among `candidates` (the
/// people bound to approve in its environment, with their groups): those
/// whose approval the policy would count and that would lower the approvals
/// still needed (`ApprovalPolicy::would_advance`). Once only required-group
/// approvals remain, that is only the people of the groups still open.
pub fn remaining_approvers(p: &Promotion, candidates: &[(String, Vec<String>)]) -> Vec<String> {
    let votes = p.votes();
    let mut names: Vec<String> = candidates
        .iter()
        .filter(|(name, groups)| {
            p.policy.would_advance(
                &p.requested_by,
                &p.requester_groups,
                &votes,
                Vote {
                    approver: name,
                    groups,
                },
            )
        })
        .map(|(name, _)| name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Approvals the promotion still needs at least: the distinct approvers
/// missing, or the required groups still open if those are more (only
/// approvals the policy counts, of the config the promotion is about).
pub fn approvals_still_needed(p: &Promotion) -> u32 {
    p.policy
        .still_needed(&p.requested_by, &p.requester_groups, &p.votes())
}

fn promotion_context(now: Timestamp) -> MoveContext {
    MoveContext {
        via: MoveVia::Promotion,
        now,
        deprecated_at: None,
        deprecation_days: crate::lifecycle::DEPRECATION_DAYS_DEFAULT,
        has_reason: true,
    }
}

/// The stage `v` must reach to be pinned in `env`: its own if the policy
/// admits it, else the policy's minimum, reached through a promotion move.
/// Retired versions can never be promoted.
pub fn target_stage(
    v: &Version,
    env: &str,
    policy: &EnvPolicy,
    now: Timestamp,
) -> Result<Stage, DomainError> {
    if v.stage == Stage::Retired {
        return Err(DomainError::Retired(format!(
            "{} is retired and can never be promoted",
            v.full_id
        )));
    }
    if policy.check_pin(env, &v.full_id, v.stage).is_ok() {
        return Ok(v.stage);
    }
    check_move(v.stage, policy.min_stage, &promotion_context(now))?;
    Ok(policy.min_stage)
}

/// A request must give a reason.
pub fn check_reason(reason: &str) -> Result<(), DomainError> {
    if reason.trim().is_empty() {
        return Err(DomainError::Invalid(
            "a promotion needs a reason: say in `reason` why this version should be promoted (the ledger keeps it)"
                .into(),
        ));
    }
    crate::text::check_free_text("reason", reason)
}

fn check_open(p: &Promotion, now: Timestamp) -> Result<(), DomainError> {
    if p.status != PromotionStatus::Pending {
        return Err(DomainError::Conflict(format!(
            "promotion {} is {}; only pending promotions can be approved, rejected or withdrawn",
            p.id, p.status
        )));
    }
    if now >= p.expires_at {
        return Err(expired_error(p));
    }
    Ok(())
}

/// Why an expired request cannot be approved or rejected.
pub fn expired_error(p: &Promotion) -> DomainError {
    DomainError::Conflict(format!(
        "promotion {} expired at {}; request it again",
        p.id,
        p.expires_at.to_rfc3339()
    ))
}

/// Whether `p` has passed its expiry while still pending.
pub fn is_expired(p: &Promotion, now: Timestamp) -> bool {
    p.status == PromotionStatus::Pending && now >= p.expires_at
}

/// Checks that `approver` may approve `p` now, for a version whose config is
/// `current_config_hash`.
pub fn check_approval(
    p: &Promotion,
    approver: &str,
    approver_groups: &[String],
    current_config_hash: &str,
    now: Timestamp,
) -> Result<(), DomainError> {
    check_open(p, now)?;
    if p.requested_by == approver {
        return Err(DomainError::Forbidden(format!(
            "{approver} requested promotion {} and cannot approve it; another approver must",
            p.id
        )));
    }
    if p.approvals.iter().any(|a| a.approver == approver) {
        return Err(DomainError::Conflict(format!(
            "{approver} has already approved promotion {}; it needs approvals from {} different people",
            p.id, p.required_approvals
        )));
    }
    if p.config_hash != current_config_hash {
        return Err(DomainError::Conflict(format!(
            "promotion {} was requested for config {}, but {} now has {}: reject this request and \
             request the promotion again, so that approvers review the config that would run",
            p.id, p.config_hash, p.full_id, current_config_hash
        )));
    }
    p.policy.check_approver(
        &p.requested_by,
        &p.requester_groups,
        approver,
        approver_groups,
    )
}

/// Checks that `p` may be rejected now (with a non-empty reason).
pub fn check_rejection(p: &Promotion, reason: &str, now: Timestamp) -> Result<(), DomainError> {
    check_open(p, now)?;
    if reason.trim().is_empty() {
        return Err(DomainError::Invalid(
            "a rejection needs a reason: say in `reason` what must change before it is requested again"
                .into(),
        ));
    }
    crate::text::check_free_text("reason", reason)
}

/// Whether `by` may withdraw `p` now: only the person who requested it,
/// only while it waits, and with a reason (others reject it instead).
pub fn check_withdrawal(
    p: &Promotion,
    by: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), DomainError> {
    check_open(p, now)?;
    if p.requested_by != by {
        return Err(DomainError::Forbidden(format!(
            "only {}, who requested promotion {}, may withdraw it; an approver may reject it instead",
            p.requested_by, p.id
        )));
    }
    if reason.trim().is_empty() {
        return Err(DomainError::Invalid(
            "withdrawing a promotion needs a reason: say in `reason` why the request is withdrawn (the ledger keeps it)".into(),
        ));
    }
    crate::text::check_free_text("reason", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(stage: Stage) -> Version {
        let full_id = FullId::parse("chat:v2").expect("full id");
        Version {
            model_id: full_id.model_id.clone(),
            version: full_id.version.clone(),
            full_id,
            stage,
            config_hash: "sha256:aa".into(),
            config: serde_json::json!({}),
            artifact_uri: None,
            labels: None,
            created_at: Timestamp::from_micros(0),
            created_by: "ci".into(),
            stage_since: Timestamp::from_micros(0),
        }
    }

    fn pending() -> Promotion {
        Promotion {
            id: 1,
            full_id: FullId::parse("chat:v2").expect("full id"),
            environment: "production".into(),
            to_stage: Stage::Production,
            config_hash: "sha256:aa".into(),
            reason: "ready".into(),
            requested_by: "dave".into(),
            requester_groups: vec!["ml-eng".into()],
            requested_at: Timestamp::from_micros(0),
            expires_at: Timestamp::from_micros(0).plus_hours(DEFAULT_EXPIRY_HOURS),
            required_approvals: 2,
            policy: EnvPolicy::default_for("production").approval_policy(),
            requirements: vec![],
            status: PromotionStatus::Pending,
            approvals: vec![],
            decided_at: None,
            decided_by: None,
            decision_reason: None,
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_micros(0).plus_hours(1)
    }

    #[test]
    fn production_needs_staging_or_deprecated_versions_to_move_to_production() {
        let prod = EnvPolicy::default_for("production");
        for stage in [Stage::Staging, Stage::Deprecated, Stage::Production] {
            assert_eq!(
                target_stage(&version(stage), "production", &prod, now()),
                Ok(Stage::Production)
            );
        }
        assert!(matches!(
            target_stage(&version(Stage::Development), "production", &prod, now()),
            Err(DomainError::IllegalMove(_))
        ));
    }

    #[test]
    fn a_retired_version_can_never_be_promoted_anywhere() {
        for env in ["development", "staging", "production"] {
            let policy = EnvPolicy::default_for(env);
            assert!(matches!(
                target_stage(&version(Stage::Retired), env, &policy, now()),
                Err(DomainError::Retired(_))
            ));
        }
    }

    #[test]
    fn the_requester_cannot_approve_their_own_request() {
        assert!(matches!(
            check_approval(&pending(), "dave", &[], "sha256:aa", now()),
            Err(DomainError::Forbidden(_))
        ));
        assert_eq!(
            check_approval(&pending(), "bob", &[], "sha256:aa", now()),
            Ok(())
        );
    }

    #[test]
    fn one_approval_per_person() {
        let mut p = pending();
        p.approvals.push(Approval {
            approver: "bob".into(),
            actor: "bob".into(),
            config_hash: "sha256:aa".into(),
            reason: None,
            at: now(),
            groups: vec![],
        });
        assert!(matches!(
            check_approval(&p, "bob", &[], "sha256:aa", now()),
            Err(DomainError::Conflict(_))
        ));
    }

    #[test]
    fn approvals_are_bound_to_the_requested_config() {
        assert!(matches!(
            check_approval(&pending(), "bob", &[], "sha256:bb", now()),
            Err(DomainError::Conflict(_))
        ));
    }

    #[test]
    fn expired_and_decided_requests_cannot_be_approved_or_rejected() {
        let late = pending().expires_at;
        assert!(
            matches!(check_approval(&pending(), "bob", &[], "sha256:aa", late), Err(DomainError::Conflict(m)) if m.contains("expired"))
        );
        let mut rejected = pending();
        rejected.status = PromotionStatus::Rejected;
        assert!(check_approval(&rejected, "bob", &[], "sha256:aa", now()).is_err());
        assert!(check_rejection(&rejected, "no", now()).is_err());
    }

    #[test]
    fn only_the_requester_withdraws_a_waiting_promotion_and_says_why() {
        let p = pending();
        let requester = p.requested_by.clone();
        assert!(check_withdrawal(&p, &requester, "not ready after all", now()).is_ok());
        assert!(matches!(
            check_withdrawal(&p, "bob", "mine now", now()),
            Err(DomainError::Forbidden(m)) if m.contains(&format!("only {requester}")) && m.contains("reject")
        ));
        assert!(matches!(
            check_withdrawal(&p, &requester, "  ", now()),
            Err(DomainError::Invalid(m)) if m.contains("reason")
        ));
        let late = p.expires_at;
        assert!(matches!(
            check_withdrawal(&p, &requester, "late", late),
            Err(DomainError::Conflict(m)) if m.contains("expired")
        ));
        let mut withdrawn = pending();
        withdrawn.status = PromotionStatus::Withdrawn;
        assert!(matches!(
            check_withdrawal(&withdrawn, &requester, "again", now()),
            Err(DomainError::Conflict(m)) if m.contains("is withdrawn")
        ));
        assert!(check_approval(&withdrawn, "bob", &[], "sha256:aa", now()).is_err());
        assert!(matches!(
            "withdrawn".parse::<PromotionStatus>(),
            Ok(PromotionStatus::Withdrawn)
        ));
    }

    #[test]
    fn a_rejection_needs_a_reason() {
        assert!(matches!(
            check_rejection(&pending(), " ", now()),
            Err(DomainError::Invalid(_))
        ));
    }

    fn people(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(n, g)| ((*n).to_owned(), g.iter().map(|g| (*g).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn the_approvers_named_are_those_who_may_still_approve() {
        let candidates = people(&[("dave", &[]), ("carol", &[]), ("bob", &[])]);
        let mut p = pending();
        assert_eq!(
            remaining_approvers(&p, &candidates),
            ["bob", "carol"],
            "not the requester dave"
        );
        assert_eq!(approvals_still_needed(&p), p.required_approvals);
        p.approvals.push(Approval {
            approver: "carol".into(),
            actor: "carol".into(),
            config_hash: "sha256:aa".into(),
            reason: None,
            at: Timestamp::from_micros(1),
            groups: vec![],
        });
        assert_eq!(remaining_approvers(&p, &candidates), ["bob"]);
        assert_eq!(approvals_still_needed(&p), p.required_approvals - 1);
    }

    #[test]
    fn once_only_required_group_approvals_remain_only_their_members_are_named() {
        let candidates = people(&[
            ("bob", &["platform"]),
            ("carol", &["platform"]),
            ("rita", &["ml-risk"]),
            ("paul", &["ml-risk", "platform"]),
            ("otto", &[]),
        ]);
        // 2 of N with ml-risk and platform required: two approvals are
        // needed and both must come from the open groups, so someone in
        // neither would count without bringing the promotion closer.
        let mut p = two_of_n_with_ml_risk();
        p.policy.required_groups = vec!["ml-risk".into(), "platform".into()];
        assert_eq!(approvals_still_needed(&p), 2);
        assert_eq!(
            remaining_approvers(&p, &candidates),
            ["bob", "carol", "paul", "rita"],
            "not otto"
        );
        // platform is met by bob; one more is needed, from ml-risk.
        p.approvals.push(approval("bob", &["platform"]));
        assert_eq!(approvals_still_needed(&p), 1);
        assert_eq!(remaining_approvers(&p, &candidates), ["paul", "rita"]);
        p.approvals.push(approval("rita", &["ml-risk"]));
        assert!(p.is_fully_approved());
        assert!(remaining_approvers(&p, &candidates).is_empty());
    }

    #[test]
    fn anyone_counted_is_named_while_more_approvers_than_open_groups_are_missing() {
        let candidates = people(&[("rita", &["ml-risk"]), ("otto", &[])]);
        let mut p = two_of_n_with_ml_risk();
        p.policy.required_approvals = 3;
        // 3 needed, 1 group open: otto's approval helps (3 → 2).
        assert_eq!(remaining_approvers(&p, &candidates), ["otto", "rita"]);
        p.approvals.push(approval("bob", &[]));
        p.approvals.push(approval("carol", &[]));
        // 1 needed, and it must be ml-risk's.
        assert_eq!(approvals_still_needed(&p), 1);
        assert_eq!(remaining_approvers(&p, &candidates), ["rita"]);
    }

    #[test]
    fn people_of_the_requesters_groups_are_not_named_when_the_policy_forbids_them() {
        let candidates = people(&[("rita", &["ml-risk"]), ("bob", &["platform"])]);
        let mut p = two_of_n_with_ml_risk();
        p.policy.required_groups = vec![];
        p.policy.requester_group_may_approve = false;
        p.requester_groups = vec!["platform".into()];
        assert_eq!(remaining_approvers(&p, &candidates), ["rita"]);
        // An approval of another config does not count, so nobody drops out.
        let mut stale = approval("rita", &["ml-risk"]);
        stale.config_hash = "sha256:old".into();
        p.approvals.push(stale);
        assert_eq!(approvals_still_needed(&p), 2);
        assert_eq!(remaining_approvers(&p, &candidates), ["rita"]);
    }

    fn approval(who: &str, groups: &[&str]) -> Approval {
        Approval {
            approver: who.into(),
            actor: who.into(),
            config_hash: "sha256:aa".into(),
            reason: Some("ok".into()),
            at: now(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    fn two_of_n_with_ml_risk() -> Promotion {
        let mut p = pending();
        p.policy.required_approvals = 2;
        p.policy.required_groups = vec!["ml-risk".into()];
        p
    }

    #[test]
    fn two_of_n_with_a_required_group_needs_both_the_count_and_the_group() {
        let mut p = two_of_n_with_ml_risk();
        let r = p.evaluate();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].requirement.as_str(), r[0].met, r[0].status.as_str()),
            ("2 distinct approvers", false, "0 of 2")
        );
        assert_eq!(
            (r[1].requirement.as_str(), r[1].met, r[1].status.as_str()),
            ("one approval from ml-risk", false, "open")
        );
        p.approvals.push(approval("bob", &["platform"]));
        p.approvals.push(approval("carol", &["platform"]));
        let r = p.evaluate();
        assert!(r[0].met, "two approvers: {r:?}");
        assert!(!r[1].met, "but nobody from ml-risk");
        assert!(!p.is_fully_approved());
        assert_eq!(approvals_still_needed(&p), 1);
        p.approvals.push(approval("rita", &["ml-risk"]));
        let r = p.evaluate();
        assert_eq!(r[0].status, "3 of 2: bob, carol, rita");
        assert_eq!(r[1].status, "met by rita");
        assert!(p.is_fully_approved());
        assert_eq!(approvals_still_needed(&p), 0);
    }

    #[test]
    fn one_person_in_the_required_group_counts_once_towards_the_count() {
        let mut p = two_of_n_with_ml_risk();
        p.approvals.push(approval("rita", &["ml-risk"]));
        assert!(!p.is_fully_approved(), "1 of 2 approvers");
        p.approvals.push(approval("rita", &["ml-risk"]));
        assert!(!p.is_fully_approved(), "the same person twice is still one");
        p.approvals.push(approval("bob", &[]));
        assert!(p.is_fully_approved());
    }

    #[test]
    fn approvals_for_another_config_do_not_count() {
        let mut p = two_of_n_with_ml_risk();
        p.approvals.push(approval("rita", &["ml-risk"]));
        let mut stale = approval("bob", &[]);
        stale.config_hash = "sha256:bb".into();
        p.approvals.push(stale);
        assert!(!p.is_fully_approved());
        assert_eq!(p.evaluate()[0].status, "1 of 2: rita");
    }

    #[test]
    fn the_requester_never_counts_even_if_in_the_required_group() {
        let mut p = two_of_n_with_ml_risk();
        p.approvals.push(approval("dave", &["ml-risk"]));
        p.approvals.push(approval("bob", &[]));
        assert_eq!(p.evaluate()[1].status, "open");
        assert!(matches!(
            check_approval(&p, "dave", &["ml-risk".into()], "sha256:aa", now()),
            Err(DomainError::Forbidden(_))
        ));
    }

    #[test]
    fn when_the_requesters_groups_may_not_approve_a_colleague_is_refused_and_not_counted() {
        let mut p = pending();
        p.policy.requester_group_may_approve = false;
        let refused = check_approval(
            &p,
            "erin",
            &["ml-eng".into(), "ops".into()],
            "sha256:aa",
            now(),
        );
        assert_eq!(
            refused,
            Err(DomainError::Forbidden(
                "the policy forbids approvals from the requester's groups: erin shares ml-eng with dave".into()
            ))
        );
        assert_eq!(
            check_approval(&p, "bob", &["ops".into()], "sha256:aa", now()),
            Ok(())
        );
        p.approvals.push(approval("erin", &["ml-eng"]));
        p.approvals.push(approval("bob", &["ops"]));
        assert!(!p.is_fully_approved(), "erin does not count");
        let last = p.evaluate().pop().expect("requirement");
        assert_eq!(
            last.requirement,
            "no approval from the requester's groups (ml-eng)"
        );
        // Allowed by default.
        let mut p = pending();
        p.approvals.push(approval("erin", &["ml-eng"]));
        p.approvals.push(approval("bob", &["ops"]));
        assert!(p.is_fully_approved());
    }

    #[test]
    fn a_request_the_policy_could_never_let_through_is_refused() {
        let mut policy = EnvPolicy::default_for("production").approval_policy();
        policy.required_groups = vec!["ml-risk".into()];
        assert_eq!(policy.check_requester("rita", &["ml-risk".into()]), Ok(()));
        policy.requester_group_may_approve = false;
        assert!(matches!(
            policy.check_requester("rita", &["ml-risk".into()]),
            Err(DomainError::PolicyViolation(m)) if m.contains("someone outside ml-risk")
        ));
        assert_eq!(policy.check_requester("dave", &["ml-eng".into()]), Ok(()));
    }

    #[test]
    fn expiry_follows_the_policys_hours() {
        let mut p = pending();
        p.expires_at = Timestamp::from_micros(0).plus_hours(4);
        assert!(!is_expired(&p, Timestamp::from_micros(0).plus_hours(3)));
        assert!(is_expired(&p, Timestamp::from_micros(0).plus_hours(4)));
        assert!(matches!(
            check_approval(&p, "bob", &[], "sha256:aa", Timestamp::from_micros(0).plus_hours(5)),
            Err(DomainError::Conflict(m)) if m.contains("expired")
        ));
    }
}
