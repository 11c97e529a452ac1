use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use switchyard_domain::lifecycle::{allowed_moves, check_move, retires_at, MoveContext, MoveVia};
use switchyard_domain::types::Version;
use switchyard_domain::{Stage, Timestamp};

use crate::api::get_board::get_board;
use crate::api::move_stage::MoveStage;
use crate::components::status::{ErrorNote, Loading};
use crate::data::Board;
use crate::format::{short_hash, utc};
use crate::resource::page_resource;

/// A move a card offers: where to, the button's words, and why it is disabled (if it is).
#[derive(Debug, Clone, PartialEq)]
pub struct MoveOption {
    pub to: Stage,
    pub label: &'static str,
    pub refused: Option<String>,
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

/// The moves a person may make by hand on the board, decided by the same
/// rule the server applies (`lifecycle::check_move`).
pub fn move_options(v: &Version, now: Timestamp, deprecation_days: u32) -> Vec<MoveOption> {
    allowed_moves(v.stage)
        .iter()
        .map(|(to, _)| {
            let ctx = MoveContext {
                via: MoveVia::Manual { is_admin: false },
                now,
                deprecated_at: (v.stage == Stage::Deprecated).then_some(v.stage_since),
                deprecation_days,
                has_reason: false,
            };
            let refused = if *to == Stage::Production {
                Some("Promotions arrive with sign-in: they need a signed-in requester and approvals.".to_owned())
            } else {
                check_move(v.stage, *to, &ctx).err().map(|e| match (v.stage, *to) {
                    (Stage::Deprecated, Stage::Retired) => format!(
                        "Can be retired from {}, when its {deprecation_days}-day deprecation period ends; earlier only by an admin.",
                        utc(retires_at(v.stage_since, deprecation_days))
                    ),
                    _ => e.to_string(),
                })
            };
            MoveOption { to: *to, label: move_label(v.stage, *to), refused }
        })
        .collect()
}

/// Columns per stage, a card per version, the allowed moves as buttons.
#[component]
pub fn BoardPage() -> impl IntoView {
    let query = use_query_map();
    let model = move || query.read().get("model").filter(|m| !m.is_empty());
    let refresh = RwSignal::new(0_u32);
    let board = page_resource(move || (model(), refresh.get()), |(m, _)| get_board(m));

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
    let Board { model_id, models, versions, now, deprecation_days } = b;
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
                                {cards.into_iter().map(|v| view! { <Card v now deprecation_days refresh/> }).collect_view()}
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
fn Card(v: Version, now: Timestamp, deprecation_days: u32, refresh: RwSignal<u32>) -> impl IntoView {
    let action = ServerAction::<MoveStage>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = action.value().get() {
            refresh.update(|n| *n += 1);
        }
    });
    let options = move_options(&v, now, deprecation_days);
    let id = v.full_id.to_string();
    let slug = id.replace([':', '.'], "-");
    let has_moves = !options.is_empty();
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
    view! {
        <li class="card-v">
            <a class="version" href=format!("/versions/{id}")>{v.version.to_string()}</a>
            <span class="sub">{format!("config {} · by {}", short_hash(&v.config_hash), v.created_by)}</span>
            <span class="sub">{format!("{} since {}", v.stage, utc(v.stage_since))}</span>
            {has_moves.then(|| view! {
                <ActionForm action attr:class="moves">
                    <input type="hidden" name="full_id" value=id.clone()/>
                    // Posted without JavaScript, the form carries the CSRF token itself.
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <label class="reason">
                        <span>"Reason (optional)"</span>
                        <input type="text" name="reason" autocomplete="off"/>
                    </label>
                    {buttons}
                </ActionForm>
            })}
            {move || action.pending().get().then(|| view! { <p class="loading" role="status">"Moving…"</p> })}
            {move || action.value().get().and_then(Result::err).map(|e| view! {
                <p class="error" role="alert">{format!("Not moved: {}", e.message)}</p>
            })}
        </li>
    }
}

/// The session's CSRF token, known while rendering on the server; in the
/// browser the server-function client sends it as a header instead.
fn csrf_token() -> String {
    use_context::<crate::session::SignedInUser>()
        .map(|u| u.csrf_token)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_domain::{FullId, ModelId, VersionName};

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

    #[test]
    fn a_development_version_can_be_sent_to_staging() {
        let o = move_options(&version(Stage::Development, 0), Timestamp::from_micros(DAY), 30);
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].to, o[0].label, o[0].refused.clone()), (Stage::Staging, "Send to staging", None));
    }

    #[test]
    fn promotion_is_shown_but_refused_until_sign_in_exists() {
        let o = move_options(&version(Stage::Staging, 0), Timestamp::from_micros(DAY), 30);
        let promote = o.iter().find(|o| o.to == Stage::Production).expect("offered");
        assert!(promote.refused.as_deref().is_some_and(|r| r.contains("sign-in")));
        let back = o.iter().find(|o| o.to == Stage::Development).expect("offered");
        assert_eq!(back.refused, None);
    }

    #[test]
    fn retiring_early_is_refused_with_the_date_it_becomes_possible() {
        let o = move_options(&version(Stage::Deprecated, 10), Timestamp::from_micros(20 * DAY), 30);
        let retire = o.iter().find(|o| o.to == Stage::Retired).expect("offered");
        assert!(retire.refused.as_deref().is_some_and(|r| r.contains("1970-02-10")), "{retire:?}");
        let later = move_options(&version(Stage::Deprecated, 10), Timestamp::from_micros(40 * DAY), 30);
        assert_eq!(later.iter().find(|o| o.to == Stage::Retired).and_then(|o| o.refused.clone()), None);
    }

    #[test]
    fn a_retired_version_offers_no_moves() {
        assert!(move_options(&version(Stage::Retired, 0), Timestamp::from_micros(DAY), 30).is_empty());
    }
}
