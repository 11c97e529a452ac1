use leptos::prelude::*;
use leptos_meta::Title;
use switchyard_domain::access::{Grants, Role};
use switchyard_domain::diff::{has_changes, DiffLine};
use switchyard_domain::policy::Requirement;
use switchyard_domain::promotion::{approvals_still_needed, is_expired, Promotion, PromotionStatus};
use switchyard_domain::{FullId, Stage, Timestamp};


use crate::api::approve_promotion::ApprovePromotion;
use crate::api::get_approvals::get_approvals;
use crate::api::reject_promotion::RejectPromotion;
use crate::api::withdraw_promotion::WithdrawPromotion;

use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::data::{Approvals, PendingPromotion};
use crate::format::utc;
use crate::session::csrf_token;


/// Why `username` (with `grants`) may not approve `p` now, or none if they may.
/// The server decides again (`promotion::check_approval`); this only greys
/// out the button with the reason in words.
pub fn approve_refusal(
    p: &Promotion,
    username: &str,
    grants: &Grants,
    now: Timestamp,
) -> Option<String> {
    let bound = grants.check(
        Role::Approver,
        Some(&p.environment),
        &format!("Approving in {}", p.environment),
    );
    if is_expired(p, now) {
        Some(format!(
            "This request expired at {}; it must be requested again.",
            utc(p.expires_at)
        ))
    } else if p.requested_by == username {
        Some("You requested this; someone else must approve it".to_owned())
    } else if let Err(missing) = bound {
        Some(format!("{missing}."))
    } else if p.approvals.iter().any(|a| a.approver == username) {
        Some("You approved this already; it needs another approver.".to_owned())
    } else {
        None
    }
}

/// Why someone with `grants` may not reject `p` now, or none if they may.
pub fn reject_refusal(p: &Promotion, grants: &Grants, now: Timestamp) -> Option<String> {
    let bound = grants.check(
        Role::Approver,
        Some(&p.environment),
        &format!("Rejecting in {}", p.environment),
    );
    if is_expired(p, now) {
        Some(format!(
            "This request expired at {}; there is nothing to reject.",
            utc(p.expires_at)
        ))
    } else if let Err(missing) = bound {
        Some(format!("{missing}."))
    } else {
        None
    }
}

/// "1 of 2 approvals: bob", "none of 2 approvals yet".
pub fn approvals_summary(p: &Promotion) -> String {
    let needed = format!(
        "{} approval{}",
        p.required_approvals,
        if p.required_approvals == 1 { "" } else { "s" }
    );
    if p.approvals.is_empty() {
        format!("none of {needed} yet")
    } else {
        let who: Vec<&str> = p.approvals.iter().map(|a| a.approver.as_str()).collect();
        format!("{} of {needed}: {}", p.approvals.len(), who.join(", "))
    }
}

/// What approving will do, said before the button: the last approval
/// needed applies the promotion at once — the stage move, the pin, and the
/// deprecation of the version in production now (its retirement clock
/// starts).
pub fn approval_effects(p: &Promotion, production: Option<&FullId>) -> String {
    let left = approvals_still_needed(p);
    if left > 1 {
        return format!(
            "The next approval leaves {} more needed; the last one applies the promotion at once.",
            left - 1
        );
    }
    let groups: Vec<String> = p
        .evaluate()
        .into_iter()
        .filter(|r| !r.met)
        .filter_map(|r| r.group)
        .collect();
    let mut text = if groups.is_empty() {
        format!(
            "The next approval is the last one needed: it applies the promotion at once — {} becomes {} and is pinned in {}",
            p.full_id, p.to_stage, p.environment
        )
    } else {
        format!(
            "The next approval from {} meets the policy: it applies the promotion at once — {} becomes {} and is pinned in {}",
            groups.join(" or "),
            p.full_id,
            p.to_stage,
            p.environment
        )
    };
    if let Some(current) = production.filter(|c| *c != &p.full_id) {
        if p.to_stage == Stage::Production {
            text.push_str(&format!(
                ", and {current} is deprecated (retired when its deprecation period ends)"
            ));
        }
    }
    text.push('.');
    text
}

/// One requirement of the approval policy as a line: a mark that is text
/// (not only colour), what is required, and how it stands.
pub fn requirement_line(r: &Requirement) -> String {
    format!(
        "{} {} — {}",
        if r.met { "✓" } else { "○" },
        r.requirement,
        r.status
    )
}

/// The policy's requirements, met or open.
#[component]
fn Requirements(requirements: Vec<Requirement>) -> impl IntoView {
    view! {
        <ul class="requirements">
            {requirements.into_iter().map(|r| {
                let class = if r.met { "requirement met" } else { "requirement open" };
                view! { <li class=class>{requirement_line(&r)}</li> }
            }).collect_view()}
        </ul>
    }
}

/// What an approval did, in a sentence for the page.
fn approved_outcome(p: &Promotion) -> String {
    if p.status == PromotionStatus::Applied {
        format!(
            "Promotion {} applied: {} is now {} and pinned in {}.",
            p.id, p.full_id, p.to_stage, p.environment
        )
    } else {
        format!(
            "Approved promotion {} of {} ({}).",
            p.id,
            p.full_id,
            approvals_summary(p)
        )
    }
}

fn withdrawn_outcome(p: &Promotion) -> String {
    format!("Withdrew promotion {} of {}.", p.id, p.full_id)
}

/// What a plain form post (no JavaScript) did, said on the page it lands
/// on: `?requested=N`, `?approved=N` or `?rejected=N` with the promotion as
/// it stands now. None for anything else (an id that is not listed says
/// nothing rather than something wrong).
pub fn posted_outcome(query: &[(&str, &str)], pending: &[Promotion], decided: &[Promotion]) -> Option<(String, Option<String>)> {
    let find = |id: &str| {
        let id: i64 = id.parse().ok()?;
        pending.iter().chain(decided).find(|p| p.id == id)
    };
    query.iter().find_map(|(k, v)| match *k {
        "requested" => find(v).map(|p| {
            let needed = approvals_still_needed(p);
            (
                format!(
                    "Requested: promotion {} of {} to {} needs {needed} more approval{}.",
                    p.id,
                    p.full_id,
                    p.environment,
                    if needed == 1 { "" } else { "s" }
                ),
                None,
            )
        }),
        "approved" => find(v).map(|p| {
            let next = (p.status == PromotionStatus::Applied).then(|| p.environment.clone());
            (approved_outcome(p), next)
        }),
        "rejected" => find(v).map(|p| (format!("Rejected promotion {} of {}.", p.id, p.full_id), None)),
        "withdrawn" => find(v).map(|p| (withdrawn_outcome(p), None)),
        _ => None,
    })
}

/// Pending promotions to approve or reject, and the recently decided ones.
#[component]
pub fn ApprovalsPage() -> impl IntoView {
    let refresh = RwSignal::new(0_u32);
    let outcome = RwSignal::new(None::<String>);
    // After an approval applied a promotion: the environment to deploy it in next.
    let next = RwSignal::new(None::<String>);
    let approvals = Resource::new(move || refresh.get(), |_| get_approvals());
    view! {
        <Title text="Approvals · Switchyard"/>
        <div class="page-head">
            <h1>"Approvals"</h1>
            <p class="lede">
                "Promotions waiting for approval. Nobody approves their own request; each approver counts once; "
                "the last approval needed applies the promotion."
            </p>
        </div>
        <p class="done" role="status">
            {move || outcome.get()}
            {move || next.get().map(|env| view! {
                " "
                <a class="next-step" href="/clusters">{format!("Next: deploy it on the {env} clusters →")}</a>
            })}
        </p>
        <Transition fallback=|| view! { <Loading what="the approvals"/> }>
            {move || Suspend::new(async move {
                match approvals.await {
                    Ok(a) => view! { <ApprovalsBody a refresh outcome next/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load the approvals" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ApprovalsBody(
    a: Approvals,
    refresh: RwSignal<u32>,
    outcome: RwSignal<Option<String>>,
    next: RwSignal<Option<String>>,
) -> impl IntoView {
    let Approvals {
        pending,
        decided,
        username,
        grants,
        now,
    } = a;
    let count = pending.len();
    // After a plain form post, the page it lands on says what was done.
    let query = leptos_router::hooks::use_query_map().get_untracked();
    let pairs: Vec<(&str, &str)> = ["requested", "approved", "rejected", "withdrawn"]
        .into_iter()
        .filter_map(|k| query.get_str(k).map(|v| (k, v)))
        .collect();
    let decided_promotions: Vec<Promotion> = decided.clone();
    let pending_promotions: Vec<Promotion> = pending.iter().map(|p| p.promotion.clone()).collect();
    let posted = posted_outcome(&pairs, &pending_promotions, &decided_promotions).map(|(text, next)| view! {
        <p class="done" role="status" data-posted="true">
            {text}
            {next.map(|env| view! {
                " "
                <a class="next-step" href="/clusters">{format!("Next: deploy it on the {env} clusters →")}</a>
            })}
        </p>
    });
    let pending_view = if pending.is_empty() {
        view! { <p class="empty">"Nothing is waiting for approval."</p> }.into_any()
    } else {
        view! {
            <ul class="promotions">
                {pending.into_iter().map(|p| {
                    let username = username.clone();
                    let grants = grants.clone();
                    view! { <PendingCard p username grants now refresh outcome next/> }
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        {posted}
        <h2 id="pending-heading">"Pending " <span class="count-badge">{count}</span></h2>
        {pending_view}
        <h2>"Recently decided"</h2>
        <Decided decided/>
    }
}

#[component]
fn PendingCard(
    p: PendingPromotion,
    username: String,
    grants: Grants,
    now: Timestamp,
    refresh: RwSignal<u32>,
    outcome: RwSignal<Option<String>>,
    next: RwSignal<Option<String>>,
) -> impl IntoView {
    let approve = ServerAction::<ApprovePromotion>::new();
    let reject = ServerAction::<RejectPromotion>::new();
    let withdraw = ServerAction::<WithdrawPromotion>::new();
    Effect::new(move |_| {
        if let Some(Ok(p)) = withdraw.value().get() {
            next.set(None);
            outcome.set(Some(withdrawn_outcome(&p)));
            refresh.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(p)) = approve.value().get() {
            outcome.set(Some(approved_outcome(&p)));
            next.set((p.status == PromotionStatus::Applied).then(|| p.environment.clone()));
            refresh.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(p)) = reject.value().get() {
            next.set(None);
            outcome.set(Some(format!(
                "Rejected promotion {} of {}.",
                p.id, p.full_id
            )));
            refresh.update(|n| *n += 1);
        }
    });
    let PendingPromotion {
        promotion: pr,
        production,
        compared_with,
        diff,
    } = p;
    let approve_refused = approve_refusal(&pr, &username, &grants, now);
    let reject_refused = reject_refusal(&pr, &grants, now);
    let id = pr.id.to_string();
    let full_id = pr.full_id.to_string();
    let heading_id = format!("promotion-{id}");
    let expired = is_expired(&pr, now);
    let changed = has_changes(&diff);
    let diff_heading = match &compared_with {
        Some(current) if current == &pr.full_id => {
            format!("Config: {full_id} is already what {} runs", pr.environment)
        }
        Some(current) => format!("Config against {} now ({current})", pr.environment),
        None => format!(
            "Config (nothing of this model is pinned in {} yet)",
            pr.environment
        ),
    };
    let (labelled_by, data_id, title_id, approve_id, reject_id) = (
        heading_id.clone(),
        id.clone(),
        format!("promotion {id}"),
        id.clone(),
        id.clone(),
    );
    let (version_href, target) = (
        format!("/versions/{full_id}"),
        format!(" → {} ", pr.environment),
    );
    let (approve_slug, reject_slug) = (format!("approve-{id}"), format!("reject-{id}"));
    // Errors that came back in the address (a form posted without JavaScript) name their promotion.
    let (approve_for, reject_for, withdraw_for) = (id.clone(), id.clone(), id.clone());
    // The requester may take their own waiting request back.
    let own = (pr.requested_by == username && pr.status == PromotionStatus::Pending && !expired).then(|| {
        let withdraw_id = id.clone();
        view! {
            <ActionForm action=withdraw attr:class="decision withdraw">
                <input type="hidden" name="id" value=withdraw_id/>
                <input type="hidden" name="csrf_token" value=csrf_token()/>
                <label class="reason">
                    <span>"Reason for withdrawing your request (required)"</span>
                    <input type="text" name="reason" autocomplete="off" required=true/>
                </label>
                <button type="submit" class="button secondary">"Withdraw"</button>
                {move || withdraw.pending().get().then(|| view! { <p class="loading" role="status">"Withdrawing…"</p> })}
                {move || withdraw.value().get().and_then(Result::err).filter(|e| e.concerns(&withdraw_for)).map(|e| view! {
                    <p class="error" role="alert">{format!("Not withdrawn: {}", e.message)}</p>
                })}
            </ActionForm>
        }
    });
    view! {
        <li class="promotion" aria-labelledby=labelled_by data-promotion=data_id>
            <h3 id=heading_id>
                <a class="version" href=version_href>{full_id}</a>
                {target}
                <span class="sub inline">{title_id}</span>
            </h3>
            <dl class="facts">
                <dt>"Config hash"</dt><dd><code class="wrap">{pr.config_hash.clone()}</code></dd>
                <dt>"Requested by"</dt><dd>{pr.requested_by.clone()}</dd>
                <dt>"Reason"</dt><dd>{pr.reason.clone()}</dd>
                <dt>"Requested"</dt><dd>{utc(pr.requested_at)}</dd>
                <dt>"Expires"</dt><dd>{if expired { format!("{} (expired)", utc(pr.expires_at)) } else { utc(pr.expires_at) }}</dd>
                <dt>"Approvals"</dt><dd class="approvals">{approvals_summary(&pr)}</dd>
                <dt>"Policy"</dt><dd><Requirements requirements=pr.requirements.clone()/></dd>
            </dl>
            <details class="diff" open=changed>
                <summary>{diff_heading}</summary>
                <ConfigDiff diff/>
            </details>
            {(pr.status == PromotionStatus::Pending && !expired).then(|| view! {
                <p class="effects">{approval_effects(&pr, production.as_ref())}</p>
            })}
            <div class="decide">
                <ActionForm action=approve attr:class="decision">
                    <input type="hidden" name="id" value=approve_id/>
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <label class="reason">
                        <span>"Reason for approving (required)"</span>
                        <input type="text" name="reason" autocomplete="off" required=true disabled=approve_refused.is_some()/>
                    </label>
                    <Decision label="Approve" class="button" refused=approve_refused slug=approve_slug/>
                    {move || approve.pending().get().then(|| view! { <p class="loading" role="status">"Approving…"</p> })}
                    {move || approve.value().get().and_then(Result::err).filter(|e| e.concerns(&approve_for)).map(|e| view! {
                        <p class="error" role="alert">{format!("Not approved: {}", e.message)}</p>
                    })}
                </ActionForm>
                <ActionForm action=reject attr:class="decision">
                    <input type="hidden" name="id" value=reject_id/>
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <label class="reason">
                        <span>"Reason for rejecting (required)"</span>
                        <input type="text" name="reason" autocomplete="off" disabled=reject_refused.is_some()/>
                    </label>
                    <Decision label="Reject" class="button secondary" refused=reject_refused slug=reject_slug/>
                    {move || reject.pending().get().then(|| view! { <p class="loading" role="status">"Rejecting…"</p> })}
                    {move || reject.value().get().and_then(Result::err).filter(|e| e.concerns(&reject_for)).map(|e| view! {
                        <p class="error" role="alert">{format!("Not rejected: {}", e.message)}</p>
                    })}
                </ActionForm>
                {own}
            </div>
        </li>
    }
}

/// A decision's submit button, disabled with the reason beside it.
#[component]
fn Decision(
    label: &'static str,
    class: &'static str,
    refused: Option<String>,
    slug: String,
) -> impl IntoView {
    let why_id = format!("why-{slug}");
    let disabled = refused.is_some();
    view! {
        <div class="move">
            <button class=class type="submit" disabled=disabled aria-describedby=disabled.then(|| why_id.clone())>
                {label}
            </button>
            {refused.map(|why| view! { <span class="why" id=why_id>{why}</span> })}
        </div>
    }
}

/// The config diff as lines marked `+` (only in the requested version) and
/// `-` (only in production); the marks are text, not just colour.
#[component]
fn ConfigDiff(diff: Vec<DiffLine>) -> impl IntoView {
    if !has_changes(&diff) && !diff.is_empty() {
        return view! { <p class="sub">"Same config as production."</p> }.into_any();
    }
    view! {
        <pre class="config diff-lines">
            {diff.into_iter().map(|l| view! {
                <span class=format!("diff-{}", l.kind.as_str())>{format!("{} {}\n", l.kind.marker(), l.text)}</span>
            }).collect_view()}
        </pre>
    }
    .into_any()
}

#[component]
fn Decided(decided: Vec<Promotion>) -> impl IntoView {
    if decided.is_empty() {
        return view! { <p class="empty">"No promotion has been decided yet."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="decided">
                <ColumnHeads names=&["Version", "Environment", "Outcome", "Decided", "Requested by", "Approvals", "Reason"]/>
                <tbody>
                    {decided.into_iter().map(|p| {
                        let decided = match (p.decided_at, p.decided_by.as_deref()) {
                            (Some(at), Some(by)) => format!("{} by {by}", utc(at)),
                            (Some(at), None) => utc(at),
                            _ => "—".to_owned(),
                        };
                        let reason = p.decision_reason.clone().unwrap_or_else(|| p.reason.clone());
                        view! {
                            <tr>
                                <td><a class="version" href=format!("/versions/{}", p.full_id)>{p.full_id.to_string()}</a></td>
                                <td>{p.environment.clone()}</td>
                                <td><span class=format!("outcome outcome-{}", p.status)>{p.status.as_str()}</span></td>
                                <td>{decided}</td>
                                <td>{p.requested_by.clone()}</td>
                                <td>{approvals_summary(&p)}<Requirements requirements=p.requirements.clone()/></td>
                                <td>{reason}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}


#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_domain::access::{Binding, Scope, Subject};
    use switchyard_domain::promotion::Approval;

    const HOUR: i64 = 3_600_000_000;

    fn pending() -> Promotion {
        Promotion {
            id: 7,
            full_id: FullId::parse("chat:v4").expect("valid"),
            environment: "production".into(),
            to_stage: Stage::Production,
            config_hash: "sha256:aa".into(),
            reason: "ready".into(),
            requested_by: "dave".into(),
            requested_at: Timestamp::from_micros(0),
            expires_at: Timestamp::from_micros(72 * HOUR),
            required_approvals: 2,
            requester_groups: vec![],
            policy: switchyard_domain::policy::EnvPolicy::default_for("production").approval_policy(),
            requirements: vec![],
            status: PromotionStatus::Pending,
            approvals: vec![],
            decided_at: None,
            decided_by: None,
            decision_reason: None,
        }
    }

    fn approved_by(mut p: Promotion, who: &str) -> Promotion {
        p.approvals.push(Approval {
            approver: who.into(),
            actor: who.into(),
            config_hash: "sha256:aa".into(),
            reason: None,
            at: Timestamp::from_micros(HOUR),
            groups: vec![],
        });
        p.refresh_requirements();
        p
    }

    fn now() -> Timestamp {
        Timestamp::from_micros(2 * HOUR)
    }

    fn bound(name: &str, role: Role, scope: Scope) -> Grants {
        Grants {
            username: name.into(),
            groups: vec![],
            bindings: vec![Binding::new(Subject::User(name.into()), role, scope)],
        }
    }

    #[test]
    fn the_requester_sees_their_request_but_may_not_approve_it_even_as_admin() {
        assert_eq!(
            approve_refusal(&pending(), "dave", &bound("dave", Role::Admin, Scope::All), now()).as_deref(),
            Some("You requested this; someone else must approve it")
        );
        assert_eq!(
            approve_refusal(&pending(), "bob", &bound("bob", Role::Approver, Scope::All), now()),
            None
        );
    }

    #[test]
    fn deployers_and_viewers_may_neither_approve_nor_reject() {
        for role in [Role::Viewer, Role::Deployer] {
            let erin = bound("erin", role, Scope::All);
            let why = approve_refusal(&pending(), "erin", &erin, now()).unwrap_or_default();
            assert!(why.contains("needs an approver binding for production or all"), "{why}");
            assert!(reject_refusal(&pending(), &erin, now()).is_some());
        }
        assert_eq!(
            reject_refusal(&pending(), &bound("bob", Role::Approver, Scope::All), now()),
            None
        );
    }

    #[test]
    fn an_approver_bound_elsewhere_may_not_approve_here_and_is_told_which_binding_is_missing() {
        let staging = bound("bob", Role::Approver, Scope::Environment("staging".into()));
        assert_eq!(
            approve_refusal(&pending(), "bob", &staging, now()).as_deref(),
            Some(
                "Approving in production needs an approver binding for production or all; \
                 bob has: approver on staging."
            )
        );
        assert!(reject_refusal(&pending(), &staging, now()).is_some());
        let here = bound("bob", Role::Approver, Scope::Environment("production".into()));
        assert_eq!(approve_refusal(&pending(), "bob", &here, now()), None);
    }

    #[test]
    fn the_last_approval_says_it_applies_at_once_and_deprecates_the_version_in_production() {
        let current = FullId::parse("chat:v3").expect("valid");
        let first = approval_effects(&pending(), Some(&current));
        assert!(first.contains("leaves 1 more needed"), "{first}");
        let last = approval_effects(&approved_by(pending(), "bob"), Some(&current));
        assert_eq!(
            last,
            "The next approval is the last one needed: it applies the promotion at once — chat:v4 becomes production \
             and is pinned in production, and chat:v3 is deprecated (retired when its deprecation period ends)."
        );
        let first_ever = approval_effects(&approved_by(pending(), "bob"), None);
        assert!(!first_ever.contains("deprecated"), "{first_ever}");
    }

    #[test]
    fn each_approver_counts_once() {
        let p = approved_by(pending(), "bob");
        assert!(approve_refusal(&p, "bob", &bound("bob", Role::Approver, Scope::All), now())
            .is_some_and(|w| w.contains("already")));
        assert_eq!(approve_refusal(&p, "carol", &bound("carol", Role::Approver, Scope::All), now()), None);
    }

    #[test]
    fn an_expired_request_can_be_neither_approved_nor_rejected() {
        let late = Timestamp::from_micros(73 * HOUR);
        assert!(approve_refusal(&pending(), "bob", &bound("bob", Role::Approver, Scope::All), late)
            .is_some_and(|w| w.contains("expired")));
        assert!(
            reject_refusal(&pending(), &bound("bob", Role::Approver, Scope::All), late).is_some_and(|w| w.contains("expired"))
        );
    }

    #[test]
    fn the_approvals_so_far_are_counted_and_named() {
        assert_eq!(approvals_summary(&pending()), "none of 2 approvals yet");
        assert_eq!(
            approvals_summary(&approved_by(pending(), "bob")),
            "1 of 2 approvals: bob"
        );
        let mut one = pending();
        one.required_approvals = 1;
        one.policy.required_approvals = 1;
        assert_eq!(
            approvals_summary(&approved_by(one, "carol")),
            "1 of 1 approval: carol"
        );
    }

    #[test]
    fn an_applying_approval_says_where_the_version_now_is() {
        let mut p = approved_by(approved_by(pending(), "bob"), "carol");
        assert_eq!(
            approved_outcome(&p),
            "Approved promotion 7 of chat:v4 (2 of 2 approvals: bob, carol)."
        );
        p.status = PromotionStatus::Applied;
        assert_eq!(
            approved_outcome(&p),
            "Promotion 7 applied: chat:v4 is now production and pinned in production."
        );
    }

    #[test]
    fn each_requirement_shows_whether_it_is_met_and_the_last_group_approval_is_named() {
        let mut p = pending();
        p.policy.required_groups = vec!["ml-risk".into()];
        let p = approved_by(approved_by(p, "bob"), "carol");
        let lines: Vec<String> = p.requirements.iter().map(requirement_line).collect();
        assert_eq!(
            lines,
            [
                "✓ 2 distinct approvers — 2 of 2: bob, carol",
                "○ one approval from ml-risk — open"
            ]
        );
        let next = approval_effects(&p, None);
        assert!(next.starts_with("The next approval from ml-risk meets the policy"), "{next}");
    }
}
