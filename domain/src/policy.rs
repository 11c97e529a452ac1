//! Environments and their policies: may `latest` be used, how many approvals a
//! promotion needs, and the lowest stage a pinned or deployed version may be in.

use serde::{Deserialize, Serialize};

use crate::{DomainError, FullId, Stage};

/// An environment name: same shape as a model id.
pub fn parse_environment_name(s: &str) -> Result<String, DomainError> {
    crate::ModelId::parse(s)
        .map(|m| m.as_str().to_owned())
        .map_err(|_| {
            DomainError::Invalid(format!(
                "environment name {s:?} is not valid: it must match [a-z0-9][a-z0-9._-]{{0,63}}"
            ))
        })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvPolicy {
    pub allow_latest: bool,
    /// The approval policy's minimum number of distinct approvers (never the requester).
    pub required_approvals: u32,
    pub min_stage: Stage,
    /// Groups from each of which at least one approval is required (e.g.
    /// `ml-risk` and `platform`); the approver's groups at approval time count.
    #[serde(default)]
    pub required_groups: Vec<String>,
    /// Whether someone who shares a group with the requester may approve.
    #[serde(default = "yes")]
    pub requester_group_may_approve: bool,
    /// Hours a request waits for its approvals before it expires.
    #[serde(default = "default_expiry_hours")]
    pub expiry_hours: u32,
}

fn yes() -> bool {
    true
}

fn default_expiry_hours() -> u32 {
    DEFAULT_EXPIRY_HOURS
}

/// How long a request waits for its approvals unless the policy says otherwise.
pub const DEFAULT_EXPIRY_HOURS: u32 = 72;
/// Longest expiry a policy may set (30 days).
pub const MAX_EXPIRY_HOURS: u32 = 720;

impl EnvPolicy {
    /// The defaults for the three standard environments.
    pub fn default_for(env: &str) -> EnvPolicy {
        match env {
            "production" => EnvPolicy {
                allow_latest: false,
                min_stage: Stage::Production,
                ..EnvPolicy::approvals(2)
            },
            "staging" => EnvPolicy {
                allow_latest: false,
                min_stage: Stage::Staging,
                ..EnvPolicy::approvals(1)
            },
            _ => EnvPolicy {
                allow_latest: true,
                min_stage: Stage::Development,
                ..EnvPolicy::approvals(1)
            },
        }
    }

    /// A development-like policy needing `n` distinct approvers, no groups,
    /// the default expiry.
    pub fn approvals(n: u32) -> EnvPolicy {
        EnvPolicy {
            allow_latest: true,
            required_approvals: n,
            min_stage: Stage::Development,
            required_groups: Vec::new(),
            requester_group_may_approve: true,
            expiry_hours: DEFAULT_EXPIRY_HOURS,
        }
    }

    /// Whether this is a production-policy environment (its pins must name
    /// production-stage versions).
    pub fn is_production(&self) -> bool {
        self.min_stage == Stage::Production
    }

    /// Whether a version in `stage` satisfies this policy's minimum stage.
    ///
    /// Stages are ranked development < staging < production. Deprecated
    /// versions keep serving existing clients but are not for new adoption,
    /// so they satisfy only a development minimum; retired satisfies nothing.
    pub fn admits(&self, stage: Stage) -> bool {
        fn rank(s: Stage) -> u8 {
            match s {
                Stage::Development | Stage::Deprecated => 0,
                Stage::Staging => 1,
                Stage::Production => 2,
                Stage::Retired => u8::MAX,
            }
        }
        stage != Stage::Retired && rank(stage) >= rank(self.min_stage)
    }

    /// The stages this policy admits, in lifecycle order.
    pub fn accepted_stages(&self) -> Vec<Stage> {
        Stage::ALL.into_iter().filter(|s| self.admits(*s)).collect()
    }

    /// Checks that `full_id`, currently in `stage`, may be pinned (or deployed)
    /// in environment `env` under this policy.
    pub fn check_pin(&self, env: &str, full_id: &FullId, stage: Stage) -> Result<(), DomainError> {
        if stage == Stage::Retired {
            return Err(DomainError::Retired(format!(
                "{full_id} is retired and can never be pinned or deployed"
            )));
        }
        if !self.admits(stage) {
            let why = if stage == Stage::Deprecated {
                " (a deprecated version keeps serving where it is already pinned, \
                 but is not pinned anew)"
            } else {
                ""
            };
            return Err(DomainError::PolicyViolation(format!(
                "environment {env} only accepts versions in stage {}; {full_id} is {stage}{why}",
                or_list(&self.accepted_stages())
            )));
        }
        Ok(())
    }

    /// Checks a policy an admin sets on an environment.
    pub fn validate(&self) -> Result<(), DomainError> {
        if !matches!(
            self.min_stage,
            Stage::Development | Stage::Staging | Stage::Production
        ) {
            return Err(DomainError::Invalid(format!(
                "min_stage must be development, staging or production, not {}",
                self.min_stage
            )));
        }
        if !(1..=MAX_REQUIRED_APPROVALS).contains(&self.required_approvals) {
            return Err(DomainError::Invalid(format!(
                "required_approvals must be between 1 and {MAX_REQUIRED_APPROVALS}, not {}",
                self.required_approvals
            )));
        }
        if !(1..=MAX_EXPIRY_HOURS).contains(&self.expiry_hours) {
            return Err(DomainError::Invalid(format!(
                "expiry_hours must be between 1 and {MAX_EXPIRY_HOURS}, not {}",
                self.expiry_hours
            )));
        }
        if self.required_groups.len() > MAX_REQUIRED_GROUPS {
            return Err(DomainError::Invalid(format!(
                "at most {MAX_REQUIRED_GROUPS} required groups, not {}",
                self.required_groups.len()
            )));
        }
        let mut seen: Vec<&str> = Vec::new();
        for g in &self.required_groups {
            check_group_name(g)?;
            if seen.contains(&g.as_str()) {
                return Err(DomainError::Invalid(format!(
                    "required group {g} is listed twice"
                )));
            }
            seen.push(g);
        }
        Ok(())
    }

    /// Checks that this policy can ever be satisfied by the people who may
    /// approve: `approvers` are (username, groups) of the enabled users whose
    /// role may approve. Each required group needs a member among them, and
    /// there must be at least `required_approvals` of them. Called when an
    /// admin saves a policy, so that releases are never blocked for good.
    pub fn check_satisfiable(
        &self,
        env: &str,
        approvers: &[(String, Vec<String>)],
    ) -> Result<(), DomainError> {
        for g in &self.required_groups {
            if !approvers.iter().any(|(_, groups)| groups.contains(g)) {
                return Err(DomainError::PolicyViolation(format!(
                    "the policy for {env} can never be satisfied: it requires an approval from group {g}, \
                     but no user who may approve is in {g}; add someone to the group first"
                )));
            }
        }
        let n = approvers.len();
        if n < self.required_approvals as usize {
            return Err(DomainError::PolicyViolation(format!(
                "the policy for {env} can never be satisfied: it needs {} distinct approvers, \
                 but only {n} user{} may approve",
                self.required_approvals,
                if n == 1 { "" } else { "s" }
            )));
        }
        Ok(())
    }
}

/// Most groups a policy may require approvals from.
pub const MAX_REQUIRED_GROUPS: usize = 10;

/// A group name as identity providers send them: 1 to 128 characters, no
/// control characters or commas (the CLI separates groups with commas),
/// no surrounding spaces.
pub fn check_group_name(g: &str) -> Result<(), DomainError> {
    if g.is_empty()
        || g.chars().count() > 128
        || g.trim() != g
        || g.chars().any(|c| c.is_control() || c == ',')
    {
        return Err(DomainError::Invalid(format!(
            "group name {g:?} is not valid: 1 to 128 characters, no commas, control characters or surrounding spaces"
        )));
    }
    Ok(())
}

/// One requirement of an approval policy and whether a promotion meets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    /// What is required, e.g. "2 distinct approvers" or "one approval from ml-risk".
    pub requirement: String,
    pub met: bool,
    /// How it stands: "2 of 2: bob, carol", "met by carol", "open".
    pub status: String,
    /// The group, for a required-group requirement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// The approval policy a promotion is judged by: the environment's, as it
/// was when the promotion was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    pub required_approvals: u32,
    #[serde(default)]
    pub required_groups: Vec<String>,
    #[serde(default = "yes")]
    pub requester_group_may_approve: bool,
    #[serde(default = "default_expiry_hours")]
    pub expiry_hours: u32,
}

impl EnvPolicy {
    /// The approval part of this policy.
    pub fn approval_policy(&self) -> ApprovalPolicy {
        ApprovalPolicy {
            required_approvals: self.required_approvals,
            required_groups: self.required_groups.clone(),
            requester_group_may_approve: self.requester_group_may_approve,
            expiry_hours: self.expiry_hours,
        }
    }
}

/// One approval as the policy sees it: who, and their groups at approval time.
#[derive(Debug, Clone, Copy)]
pub struct Vote<'a> {
    pub approver: &'a str,
    pub groups: &'a [String],
}

/// The groups two people share, sorted.
fn shared_groups<'a>(a: &'a [String], b: &[String]) -> Vec<&'a str> {
    let mut g: Vec<&str> = a
        .iter()
        .filter(|x| b.contains(x))
        .map(String::as_str)
        .collect();
    g.sort_unstable();
    g.dedup();
    g
}

impl ApprovalPolicy {
    /// Refuses `approver` (with `approver_groups`) if the policy forbids
    /// people of the requester's groups from approving and they share one.
    pub fn check_approver(
        &self,
        requester: &str,
        requester_groups: &[String],
        approver: &str,
        approver_groups: &[String],
    ) -> Result<(), DomainError> {
        if self.requester_group_may_approve {
            return Ok(());
        }
        let shared = shared_groups(approver_groups, requester_groups);
        if shared.is_empty() {
            return Ok(());
        }
        Err(DomainError::Forbidden(format!(
            "the policy forbids approvals from the requester's groups: {approver} shares {} with {requester}",
            shared.join(", ")
        )))
    }

    /// Refuses a request that this policy could never let through because
    /// of who asks: a required group the requester is in, when the
    /// requester's groups may not approve.
    pub fn check_requester(&self, requester: &str, groups: &[String]) -> Result<(), DomainError> {
        if self.requester_group_may_approve {
            return Ok(());
        }
        if let Some(g) = self.required_groups.iter().find(|g| groups.contains(g)) {
            return Err(DomainError::PolicyViolation(format!(
                "the policy requires an approval from group {g} but forbids approvals from the requester's groups, \
                 and {requester} is in {g}: someone outside {g} must request this promotion"
            )));
        }
        Ok(())
    }

    /// Judges the approvals given so far: each requirement met or open.
    /// Only approvals this policy admits count (distinct approvers, none
    /// from the requester, none from the requester's groups when forbidden).
    pub fn evaluate(
        &self,
        requester: &str,
        requester_groups: &[String],
        votes: &[Vote<'_>],
    ) -> Vec<Requirement> {
        let counted = self.counted(requester, requester_groups, votes);
        let n = self.required_approvals;
        let have = counted.len();
        let names: Vec<&str> = counted.iter().map(|v| v.approver).collect();
        let mut out = vec![Requirement {
            requirement: format!("{n} distinct approver{}", if n == 1 { "" } else { "s" }),
            met: have >= n as usize,
            status: if names.is_empty() {
                format!("0 of {n}")
            } else {
                format!("{have} of {n}: {}", names.join(", "))
            },
            group: None,
        }];
        for g in &self.required_groups {
            let by: Vec<&str> = counted
                .iter()
                .filter(|v| v.groups.contains(g))
                .map(|v| v.approver)
                .collect();
            out.push(Requirement {
                requirement: format!("one approval from {g}"),
                met: !by.is_empty(),
                status: if by.is_empty() {
                    "open".to_owned()
                } else {
                    format!("met by {}", by.join(", "))
                },
                group: Some(g.clone()),
            });
        }
        if !self.requester_group_may_approve {
            let groups = if requester_groups.is_empty() {
                "none".to_owned()
            } else {
                requester_groups.join(", ")
            };
            out.push(Requirement {
                requirement: format!("no approval from the requester's groups ({groups})"),
                met: true,
                status: "enforced at each approval".to_owned(),
                group: None,
            });
        }
        out
    }
}

impl ApprovalPolicy {
    /// The votes this policy counts: distinct approvers, none from the
    /// requester, none from the requester's groups when forbidden.
    fn counted<'a>(
        &self,
        requester: &str,
        requester_groups: &[String],
        votes: &[Vote<'a>],
    ) -> Vec<Vote<'a>> {
        let mut counted: Vec<Vote<'a>> = Vec::new();
        for v in votes {
            if v.approver == requester
                || counted.iter().any(|c| c.approver == v.approver)
                || self
                    .check_approver(requester, requester_groups, v.approver, v.groups)
                    .is_err()
            {
                continue;
            }
            counted.push(*v);
        }
        counted
    }

    /// Approvals still needed at least: the distinct approvers missing, or
    /// the required groups still open (each needs one more approval) if
    /// those are more.
    pub fn still_needed(
        &self,
        requester: &str,
        requester_groups: &[String],
        votes: &[Vote<'_>],
    ) -> u32 {
        let counted = self.counted(requester, requester_groups, votes).len();
        let counted = u32::try_from(counted).unwrap_or(u32::MAX);
        let groups_open = self
            .evaluate(requester, requester_groups, votes)
            .iter()
            .filter(|r| !r.met && r.group.is_some())
            .count();
        let groups_open = u32::try_from(groups_open).unwrap_or(u32::MAX);
        self.required_approvals
            .saturating_sub(counted)
            .max(groups_open)
    }

    /// Whether `candidate`'s approval would bring the promotion closer to
    /// meeting this policy: it lowers `still_needed`. Not so for the
    /// requester, someone who approved already, someone of the requester's
    /// groups when forbidden — nor for someone outside every open required
    /// group once only required-group approvals remain (their approval
    /// would count, but leave the same approvals to gather).
    pub fn would_advance(
        &self,
        requester: &str,
        requester_groups: &[String],
        votes: &[Vote<'_>],
        candidate: Vote<'_>,
    ) -> bool {
        let now = self.still_needed(requester, requester_groups, votes);
        let mut with = votes.to_vec();
        with.push(candidate);
        self.still_needed(requester, requester_groups, &with) < now
    }
}

/// Whether every requirement is met.
pub fn all_met(requirements: &[Requirement]) -> bool {
    requirements.iter().all(|r| r.met)
}

/// Most approvals an environment may require: more could never be gathered
/// in a small team and would block releases for good.
pub const MAX_REQUIRED_APPROVALS: u32 = 10;

/// "a", "a or b", "a, b or c".
pub(crate) fn or_list(stages: &[Stage]) -> String {
    match stages {
        [] => String::new(),
        [only] => only.to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(|s| s.as_str()).collect();
            format!("{} or {last}", init.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stage::*;

    fn id(s: &str) -> FullId {
        FullId::parse(s).expect("valid full id")
    }

    fn violation(r: Result<(), DomainError>) -> String {
        match r {
            Err(DomainError::PolicyViolation(m)) => m,
            other => panic!("expected PolicyViolation, got {other:?}"),
        }
    }

    #[test]
    fn production_by_default_refuses_latest_needs_two_approvals_and_production_versions() {
        let p = EnvPolicy::default_for("production");
        assert!(!p.allow_latest);
        assert_eq!(p.required_approvals, 2);
        assert_eq!(p.min_stage, Production);
        assert!(p.is_production());
    }

    #[test]
    fn staging_by_default_refuses_latest_and_needs_staging_versions() {
        let p = EnvPolicy::default_for("staging");
        assert!(!p.allow_latest);
        assert_eq!(p.min_stage, Staging);
        assert!(!p.is_production());
    }

    #[test]
    fn development_and_other_environments_by_default_allow_latest() {
        for env in ["development", "sandbox"] {
            let p = EnvPolicy::default_for(env);
            assert!(p.allow_latest, "{env}");
            assert_eq!(p.min_stage, Development, "{env}");
        }
    }

    #[test]
    fn every_default_policy_is_valid() {
        for env in ["production", "staging", "development"] {
            assert_eq!(EnvPolicy::default_for(env).validate(), Ok(()), "{env}");
        }
    }

    #[test]
    fn a_production_environment_pins_only_production_versions_and_says_so() {
        let p = EnvPolicy::default_for("production");
        assert_eq!(
            p.check_pin("production", &id("chat:v3"), Production),
            Ok(())
        );
        assert_eq!(
            violation(p.check_pin("production", &id("chat:v2"), Staging)),
            "environment production only accepts versions in stage production; chat:v2 is staging"
        );
        assert!(p
            .check_pin("production", &id("chat:v1"), Development)
            .is_err());
    }

    #[test]
    fn a_production_environment_does_not_pin_a_deprecated_version_anew() {
        let p = EnvPolicy::default_for("production");
        let msg = violation(p.check_pin("production", &id("chat:v1"), Deprecated));
        assert!(msg.contains("chat:v1 is deprecated"), "{msg}");
        assert!(msg.contains("not pinned anew"), "{msg}");
    }

    #[test]
    fn a_staging_environment_pins_staging_or_production_versions() {
        let p = EnvPolicy::default_for("staging");
        assert_eq!(p.check_pin("staging", &id("chat:v2"), Staging), Ok(()));
        assert_eq!(p.check_pin("staging", &id("chat:v2"), Production), Ok(()));
        assert_eq!(
            violation(p.check_pin("staging", &id("chat:v4"), Development)),
            "environment staging only accepts versions in stage staging or production; chat:v4 is development"
        );
        assert!(p.check_pin("staging", &id("chat:v1"), Deprecated).is_err());
    }

    #[test]
    fn a_development_environment_pins_anything_not_retired_including_deprecated() {
        let p = EnvPolicy::default_for("development");
        for stage in [Development, Staging, Production, Deprecated] {
            assert_eq!(
                p.check_pin("development", &id("chat:v1"), stage),
                Ok(()),
                "{stage}"
            );
        }
    }

    #[test]
    fn a_retired_version_is_never_pinned_anywhere() {
        for env in ["production", "staging", "development"] {
            let p = EnvPolicy::default_for(env);
            match p.check_pin(env, &id("chat:v0"), Retired) {
                Err(DomainError::Retired(m)) => assert!(m.contains("chat:v0 is retired"), "{m}"),
                other => panic!("{env}: expected Retired, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_accepted_stages_follow_the_minimum_stage() {
        assert_eq!(
            EnvPolicy::default_for("production").accepted_stages(),
            vec![Production]
        );
        assert_eq!(
            EnvPolicy::default_for("staging").accepted_stages(),
            vec![Staging, Production]
        );
        assert_eq!(
            EnvPolicy::default_for("development").accepted_stages(),
            vec![Development, Staging, Production, Deprecated]
        );
    }

    #[test]
    fn a_policy_with_a_deprecated_or_retired_minimum_or_no_approvals_is_refused() {
        let mut p = EnvPolicy::default_for("staging");
        p.min_stage = Deprecated;
        assert!(matches!(p.validate(), Err(DomainError::Invalid(m)) if m.contains("min_stage")));
        p.min_stage = Retired;
        assert!(p.validate().is_err());
        let mut p = EnvPolicy::default_for("production");
        p.required_approvals = 0;
        assert!(
            matches!(p.validate(), Err(DomainError::Invalid(m)) if m.contains("required_approvals"))
        );
        p.required_approvals = MAX_REQUIRED_APPROVALS + 1;
        assert!(p.validate().is_err());
    }

    #[test]
    fn environment_names_follow_the_model_id_rule() {
        assert_eq!(parse_environment_name("eu-prod"), Ok("eu-prod".to_owned()));
        for bad in ["", "Prod", "prod/eu", "-prod"] {
            assert!(parse_environment_name(bad).is_err(), "{bad:?}");
        }
    }

    fn approvers(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(u, g)| ((*u).to_owned(), g.iter().map(|x| (*x).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn a_policy_requiring_a_group_nobody_is_in_is_refused_on_save() {
        let mut p = EnvPolicy::default_for("production");
        p.required_groups = vec!["ml-risk".into(), "platform".into()];
        assert_eq!(p.validate(), Ok(()));
        let people = approvers(&[("bob", &["platform"]), ("carol", &["ml-risk", "platform"])]);
        assert_eq!(p.check_satisfiable("production", &people), Ok(()));
        let people = approvers(&[("bob", &["platform"]), ("carol", &["platform"])]);
        match p.check_satisfiable("production", &people) {
            Err(DomainError::PolicyViolation(m)) => {
                assert!(m.contains("requires an approval from group ml-risk"), "{m}");
                assert!(m.contains("no user who may approve is in ml-risk"), "{m}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_policy_needing_more_approvers_than_there_are_is_refused_on_save() {
        let mut p = EnvPolicy::default_for("production");
        p.required_approvals = 3;
        let people = approvers(&[("bob", &[]), ("carol", &[])]);
        assert!(matches!(
            p.check_satisfiable("production", &people),
            Err(DomainError::PolicyViolation(m)) if m.contains("needs 3 distinct approvers, but only 2 users may approve")
        ));
        p.required_approvals = 2;
        assert_eq!(p.check_satisfiable("production", &people), Ok(()));
    }

    #[test]
    fn expiry_and_group_names_are_checked() {
        let mut p = EnvPolicy::default_for("staging");
        assert_eq!(p.expiry_hours, DEFAULT_EXPIRY_HOURS);
        p.expiry_hours = 0;
        assert!(matches!(p.validate(), Err(DomainError::Invalid(m)) if m.contains("expiry_hours")));
        p.expiry_hours = MAX_EXPIRY_HOURS + 1;
        assert!(p.validate().is_err());
        p.expiry_hours = 4;
        assert_eq!(p.validate(), Ok(()));
        for bad in ["", " ml-risk", "a,b", "x\ny"] {
            p.required_groups = vec![bad.to_owned()];
            assert!(p.validate().is_err(), "{bad:?}");
        }
        p.required_groups = vec!["ml-risk".into(), "ml-risk".into()];
        assert!(matches!(p.validate(), Err(DomainError::Invalid(m)) if m.contains("twice")));
    }

    #[test]
    fn a_policy_without_the_new_fields_reads_with_their_defaults() {
        let p: EnvPolicy = serde_json::from_value(serde_json::json!({
            "allow_latest": false, "required_approvals": 2, "min_stage": "production"
        }))
        .expect("old policy JSON");
        assert_eq!(p, EnvPolicy::default_for("production"));
    }
}
