use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use switchyard_domain::access::{role_for_stage_move, stage_move_concerns, Grants, Role};
use switchyard_domain::lifecycle::{allowed_moves, check_move, retires_at, MoveContext, MoveVia};
use switchyard_domain::policy::EnvPolicy;
use switchyard_domain::promotion::target_stage;
use switchyard_domain::types::Version;
use switchyard_domain::{Stage, Timestamp};

use crate::api::get_board::get_board;
use crate::api::move_stage::MoveStage;
use crate::api::request_promotion::RequestPromotion;

use crate::components::status::{ErrorNote, Loading};
use crate::data::Board;
use crate::format::{short_hash, utc};
use crate::session::csrf_token;

/// A move a card offers: where to, the button's words, why it is disabled
/// (if it is), and for a promotion the environments it may be requested for.
#[derive(Debug, Clone, PartialEq)]
pub struct MoveOption {
    pub to: Stage,
    pub label: &'static str,
    pub refused: Option<String>,
    /// For a move to production: the environments a promotion can bring
    /// the version into (production-stage environments), first the default.
    pub environments: Vec<String>,
}

fn move_label(from: Stage, to: Stage) -> &'static str {
    match (from, to) {
        (Stage::Development, Stage::Staging) => "Send to staging",
        (Stage::Staging, Stage::Development) => "Send back to development",
        (Stage::Deprecated, Stage::Production) => "Request un-deprecation",
        (_, Stage::Production) => "Request promotion",
        (_, Stage::Deprecated) => "Deprecate",
        (_, Stage::Retired) => "Retire",
        _ => "Move",
    }
}

/// The environments a promotion of `v` would move into the production stage
/// (as the promotion rules decide it: `promotion::target_stage`).
pub fn promotion_environments(
    v: &Version,
    environments: &[(String, EnvPolicy)],
    now: Timestamp,
) -> Vec<String> {
    environments
        .iter()
        .filter(|(env, policy)| target_stage(v, env, policy, now) == Ok(Stage::Production))
        .map(|(env, _)| env.clone())
        .collect()
}

/// The moves a person with `grants` may make on the board, decided by the
/// same rules the server applies (`access::role_for_stage_move` in the
/// environments `access::stage_move_concerns` names, `lifecycle::check_move`,
/// `promotion::target_stage`; a promotion request needs deployer in its
/// environment).
pub fn move_options(
    v: &Version,
    now: Timestamp,
    deprecation_days: u32,
    grants: &Grants,
    environments: &[(String, EnvPolicy)],
) -> Vec<MoveOption> {
    allowed_moves(v.stage)
        .iter()
        .map(|(to, _)| {
            let concerned: Vec<String> = environments
                .iter()
                .filter(|(_, p)| p.min_stage == stage_move_concerns(*to))
                .map(|(e, _)| e.clone())
                .collect();
            // An admin where it happens may retire before the deprecation
            // period ends, with a reason (the form asks for one; the server
            // refuses it without).
            let is_admin = grants.check_each(Role::Admin, &concerned, "").is_ok();
            let ctx = MoveContext {
                via: MoveVia::Manual { is_admin },
                now,
                deprecated_at: (v.stage == Stage::Deprecated).then_some(v.stage_since),
                deprecation_days,
                has_reason: is_admin,
            };
            let needed = role_for_stage_move(*to, false);
            let all_targets = if *to == Stage::Production { promotion_environments(v, environments, now) } else { vec![] };
            // Only where the user may request: deployer there (or on all).
            let targets: Vec<String> = all_targets
                .iter()
                .filter(|e| grants.check(Role::Deployer, Some(e), "").is_ok())
                .cloned()
                .collect();
            let refused = if *to == Stage::Production {
                if all_targets.is_empty() {
                    Some("No environment takes production versions, so there is nothing to promote to.".to_owned())
                } else if targets.is_empty() {
                    grants
                        .check(Role::Deployer, all_targets.first().map(String::as_str), "Requesting a promotion")
                        .err()
                        .map(|m| format!("{m}."))
                } else {
                    None
                }
            } else if let Err(missing) = grants.check_each(needed, &concerned, &format!("Moving to {to}")) {
                Some(format!("{missing}."))
            } else {
                check_move(v.stage, *to, &ctx).err().map(|e| match (v.stage, *to) {
                    (Stage::Deprecated, Stage::Retired) => format!(
                        "Can be retired from {}, when its {deprecation_days}-day deprecation period ends; earlier only by an admin.",
                        utc(retires_at(v.stage_since, deprecation_days))
                    ),
                    _ => e.to_string(),
                })
            };
            MoveOption { to: *to, label: move_label(v.stage, *to), refused, environments: targets }
        })
        .collect()
}


/// Columns per stage, a card per version, the allowed moves as buttons.
#[component]
pub fn BoardPage() -> impl IntoView {
    let query = use_query_map();
    let model = move || query.read().get("model").filter(|m| !m.is_empty());
    let refresh = RwSignal::new(0_u32);
    let board = Resource::new(move || (model(), refresh.get()), |(m, _)| get_board(m));

    view! {
        <Title text="Lifecycle board · Switchyard"/>
        <div class="page-head">
            <h1>"Lifecycle board"</h1>
            <p class="lede">"Each version as a card in its stage. The buttons are the moves the lifecycle rules allow now."</p>
        </div>
        <Transition fallback=|| view! { <Loading what="the board"/> }>
            {move || Suspend::new(async move {
                match board.await {
                    Ok(b) => view! { <BoardBody b refresh/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load the board" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn BoardBody(b: Board, refresh: RwSignal<u32>) -> impl IntoView {
    let Board {
        model_id,
        models,
        versions,
        now,
        deprecation_days,
        environments,
        grants,
    } = b;
    let environments = StoredValue::new(environments);
    let current = model_id.to_string();
    let selector = {
        let current = current.clone();
        view! {
            <form class="toolbar" method="get" action="/board">
                <label for="board-model">"Model"</label>
                <select id="board-model" name="model">
                    {models.into_iter().map(|m| {
                        let m = m.to_string();
                        let selected = m == current;
                        view! { <option value=m.clone() selected=selected>{m.clone()}</option> }
                    }).collect_view()}
                </select>
                <button class="button secondary" type="submit">"Show"</button>
                <a href=format!("/models/{current}")>"Timeline of " {current.clone()}</a>
            </form>
        }
    };
    let columns = Stage::ALL
        .into_iter()
        .map(|stage| {
            let cards: Vec<Version> = versions.iter().filter(|v| v.stage == stage).cloned().collect();
            let count = cards.len();
            let heading = format!("col-{stage}");
            let labelled_by = heading.clone();
            view! {
                <section class=format!("column col-stage-{stage}") aria-labelledby=labelled_by>
                    <h2 id=heading>{stage.as_str()} <span class="count-badge">{count}</span></h2>
                    {if cards.is_empty() {
                        view! { <p class="empty">"No versions."</p> }.into_any()
                    } else {
                        view! {
                            <ul class="cards">
                                {cards.into_iter().map(|v| view! {
                                    <Card v now deprecation_days grants=grants.clone() environments=environments.get_value() refresh/>
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                </section>
            }
        })
        .collect_view();
    view! {
        {selector}
        <div class="board">{columns}</div>
    }
}

#[component]
fn Card(
    v: Version,
    now: Timestamp,
    deprecation_days: u32,
    grants: Grants,
    environments: Vec<(String, EnvPolicy)>,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    let action = ServerAction::<MoveStage>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = action.value().get() {
            refresh.update(|n| *n += 1);
        }
    });
    let (promotion, options): (Vec<MoveOption>, Vec<MoveOption>) =
        move_options(&v, now, deprecation_days, &grants, &environments)
            .into_iter()
            .partition(|o| o.to == Stage::Production);
    let id = v.full_id.to_string();
    let slug = id.replace([':', '.'], "-");
    let has_moves = !options.is_empty();
    // Errors that came back in the address (a form posted without JavaScript) name their version.
    let error_for = id.clone();
    let buttons = options
        .into_iter()
        .map(|o| {
            let why_id = format!("why-{slug}-{}", o.to);
            let disabled = o.refused.is_some();
            view! {
                <div class="move">
                    <button
                        class=if o.to == Stage::Development || o.to == Stage::Retired { "button secondary" } else { "button" }
                        type="submit"
                        name="to"
                        value=o.to.as_str()
                        disabled=disabled
                        aria-describedby=disabled.then(|| why_id.clone())
                    >
                        {o.label}
                    </button>
                    {o.refused.map(|why| view! { <span class="why" id=why_id>{why}</span> })}
                </div>
            }
        })
        .collect_view();
    let promote = promotion.into_iter().next().map(|option| {
        let (id, slug) = (id.clone(), slug.clone());
        view! { <PromotionForm id slug option/> }
    });
    view! {
        <li class="card-v">
            <a class="version" href=format!("/versions/{id}")>{v.version.to_string()}</a>
            <span class="sub">{format!("config {} · by {}", short_hash(&v.config_hash), v.created_by)}</span>
            <span class="sub">{format!("{} since {}", v.stage, utc(v.stage_since))}</span>
            {promote}
            {has_moves.then(|| view! {
                <ActionForm action attr:class="moves">
                    <input type="hidden" name="full_id" value=id.clone()/>
                    // Posted without JavaScript, the form carries the CSRF token itself.
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <label class="reason">
                        <span>"Reason (required)"</span>
                        <input type="text" name="reason" autocomplete="off" required=true/>
                    </label>
                    {buttons}
                </ActionForm>
            })}
            {move || action.pending().get().then(|| view! { <p class="loading" role="status">"Moving…"</p> })}
            {move || action.value().get().and_then(Result::err).filter(|e| e.concerns(&error_for)).map(|e| view! {
                <p class="error" role="alert">{format!("Not moved: {}", e.message)}</p>
            })}
        </li>
    }
}

/// A promotion request from a card: the environment (production-stage
/// environments only), a reason, and the button — or the button disabled
/// with why. The version stays where it is until the approvals are in.
#[component]
fn PromotionForm(id: String, slug: String, option: MoveOption) -> impl IntoView {
    let action = ServerAction::<RequestPromotion>::new();
    let why_id = format!("why-{slug}-promote");
    let env_id = format!("env-{slug}");
    let disabled = option.refused.is_some();
    let error_for = id.clone();
    let fields = (!disabled).then(|| {
        let env_id = env_id.clone();
        view! {
            <label class="reason" for=env_id.clone()>
                <span>"Environment"</span>
            </label>
            <select id=env_id name="environment">
                {option.environments.into_iter().map(|e| view! { <option value=e.clone()>{e.clone()}</option> }).collect_view()}
            </select>
            <label class="reason">
                <span>"Reason for the promotion"</span>
                <input type="text" name="reason" autocomplete="off" required=true/>
            </label>
        }
    });
    view! {
        <ActionForm action attr:class="moves promote">
            <input type="hidden" name="full_id" value=id/>
            <input type="hidden" name="csrf_token" value=csrf_token()/>
            {fields}
            <div class="move">
                <button class="button" type="submit" disabled=disabled aria-describedby=disabled.then(|| why_id.clone())>
                    {option.label}
                </button>
                {option.refused.map(|why| view! { <span class="why" id=why_id>{why}</span> })}
            </div>
        </ActionForm>
        {move || action.pending().get().then(|| view! { <p class="loading" role="status">"Requesting…"</p> })}
        {move || action.value().get().filter(|r| r.as_ref().err().is_none_or(|e| e.concerns(&error_for))).map(|result| match result {
            Ok(p) => view! {
                <p class="done" role="status">
                    {format!(
                        "Requested: promotion {} to {} needs {} approval{}. ",
                        p.id, p.environment, p.required_approvals, if p.required_approvals == 1 { "" } else { "s" }
                    )}
                    <a href="/approvals">"Approvals inbox"</a>
                </p>
            }.into_any(),
            Err(e) => view! { <p class="error" role="alert">{format!("Not requested: {}", e.message)}</p> }.into_any(),
        })}
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_domain::{FullId, ModelId, VersionName};
    use switchyard_domain::access::{Binding, Scope, Subject};

    const DAY: i64 = 86_400_000_000;

    fn version(stage: Stage, since_day: i64) -> Version {
        let full_id = FullId::parse("chat:v1").expect("valid");
        Version {
            model_id: ModelId::parse("chat").expect("valid"),
            version: VersionName::parse("v1").expect("valid"),
            full_id,
            stage,
            config_hash: "sha256:00".into(),
            config: json!({}),
            artifact_uri: None,
            labels: None,
            created_at: Timestamp::from_micros(0),
            created_by: "ci".into(),
            stage_since: Timestamp::from_micros(since_day * DAY),
        }
    }

    fn envs() -> Vec<(String, EnvPolicy)> {
        ["development", "staging", "production"]
            .map(|e| (e.to_owned(), EnvPolicy::default_for(e)))
            .to_vec()
    }

    fn on_all(role: Role) -> Grants {
        bound(role, Scope::All)
    }

    fn bound(role: Role, scope: Scope) -> Grants {
        Grants {
            username: "erin".into(),
            groups: vec![],
            bindings: vec![Binding::new(Subject::User("erin".into()), role, scope)],
        }
    }

    fn options(v: &Version, day: i64, role: Role) -> Vec<MoveOption> {
        move_options(v, Timestamp::from_micros(day * DAY), 30, &on_all(role), &envs())
    }

    #[test]
    fn a_deployer_bound_in_staging_only_may_send_to_staging_but_not_request_production() {
        let staging = bound(Role::Deployer, Scope::Environment("staging".into()));
        let o = move_options(&version(Stage::Development, 0), Timestamp::from_micros(DAY), 30, &staging, &envs());
        assert_eq!(o[0].refused, None);
        let o = move_options(&version(Stage::Staging, 0), Timestamp::from_micros(DAY), 30, &staging, &envs());
        let promote = o.iter().find(|o| o.to == Stage::Production).expect("offered");
        assert_eq!(
            promote.refused.as_deref(),
            Some("Requesting a promotion needs a deployer binding for production or all; erin has: deployer on staging.")
        );
        let back = o.iter().find(|o| o.to == Stage::Development).expect("offered");
        assert!(back.refused.as_deref().is_some_and(|r| r.contains("binding for development or all")), "{:?}", back.refused);
    }

    #[test]
    fn a_development_version_can_be_sent_to_staging() {
        let o = options(&version(Stage::Development, 0), 1, Role::Deployer);
        assert_eq!(o.len(), 1);
        assert_eq!(
            (o[0].to, o[0].label, o[0].refused.clone()),
            (Stage::Staging, "Send to staging", None)
        );
    }

    #[test]
    fn a_staging_version_offers_a_promotion_into_the_production_environments_only() {
        let o = options(&version(Stage::Staging, 0), 1, Role::Deployer);
        let promote = o
            .iter()
            .find(|o| o.to == Stage::Production)
            .expect("offered");
        assert_eq!(
            (promote.label, promote.refused.clone()),
            ("Request promotion", None)
        );
        assert_eq!(promote.environments, vec!["production".to_owned()]);
        let back = o
            .iter()
            .find(|o| o.to == Stage::Development)
            .expect("offered");
        assert_eq!(back.refused, None);
    }

    #[test]
    fn a_deprecated_version_can_be_requested_back_into_production() {
        let o = options(&version(Stage::Deprecated, 0), 1, Role::Deployer);
        let undeprecate = o
            .iter()
            .find(|o| o.to == Stage::Production)
            .expect("offered");
        assert_eq!(undeprecate.label, "Request un-deprecation");
        assert_eq!(undeprecate.environments, vec!["production".to_owned()]);
    }

    #[test]
    fn without_a_production_environment_promotion_is_refused_with_why() {
        let staging_only = [("staging".to_owned(), EnvPolicy::default_for("staging"))];
        let o = move_options(
            &version(Stage::Staging, 0),
            Timestamp::from_micros(DAY),
            30,
            &on_all(Role::Admin),
            &staging_only,
        );
        let promote = o
            .iter()
            .find(|o| o.to == Stage::Production)
            .expect("offered");
        assert!(
            promote
                .refused
                .as_deref()
                .is_some_and(|r| r.contains("No environment")),
            "{promote:?}"
        );
        assert!(promote.environments.is_empty());
    }

    #[test]
    fn a_viewer_can_move_nothing_and_is_told_the_role_needed() {
        for stage in [
            Stage::Development,
            Stage::Staging,
            Stage::Production,
            Stage::Deprecated,
        ] {
            for o in options(&version(stage, 0), 100, Role::Viewer) {
                let why = o.refused.unwrap_or_default();
                assert!(
                    why.contains("erin has: viewer on all"),
                    "{stage} → {}: {why:?}",
                    o.to
                );
            }
        }
    }

    #[test]
    fn a_deployer_may_not_deprecate_but_an_approver_may() {
        let as_deployer = options(&version(Stage::Production, 0), 1, Role::Deployer);
        let deprecate = as_deployer
            .iter()
            .find(|o| o.to == Stage::Deprecated)
            .expect("offered");
        assert_eq!(
            deprecate.refused.as_deref(),
            Some(
                "Moving to deprecated needs an approver binding for production or all; \
                 erin has: deployer on all."
            )
        );
        let as_approver = options(&version(Stage::Production, 0), 1, Role::Approver);
        assert_eq!(
            as_approver
                .iter()
                .find(|o| o.to == Stage::Deprecated)
                .and_then(|o| o.refused.clone()),
            None
        );
    }

    #[test]
    fn retiring_early_is_refused_with_the_date_it_becomes_possible() {
        let o = options(&version(Stage::Deprecated, 10), 20, Role::Approver);
        let retire = o.iter().find(|o| o.to == Stage::Retired).expect("offered");
        assert!(
            retire
                .refused
                .as_deref()
                .is_some_and(|r| r.contains("1970-02-10")),
            "{retire:?}"
        );
        let later = options(&version(Stage::Deprecated, 10), 40, Role::Approver);
        assert_eq!(
            later
                .iter()
                .find(|o| o.to == Stage::Retired)
                .and_then(|o| o.refused.clone()),
            None
        );
    }

    #[test]
    fn an_admin_may_retire_early_as_the_board_text_says() {
        let o = options(&version(Stage::Deprecated, 10), 20, Role::Admin);
        let retire = o.iter().find(|o| o.to == Stage::Retired).expect("offered");
        assert_eq!(retire.refused, None, "{retire:?}");
    }

    #[test]
    fn a_retired_version_offers_no_moves() {
        assert!(options(&version(Stage::Retired, 0), 1, Role::Admin).is_empty());
    }
}
