//! Notification subscriptions (admins): who hears about which release
//! events, whether their deliveries arrive, and the buttons to add, test,
//! rotate, redeliver and delete.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::create_subscription::CreateSubscription;
use crate::api::delete_subscription::DeleteSubscription;
use crate::api::get_subscription::get_subscription;
use crate::api::get_subscriptions::get_subscriptions;
use crate::api::redeliver::Redeliver;
use crate::api::rotate_subscription_secret::RotateSubscriptionSecret;
use crate::api::send_test_message::SendTestMessage;
use crate::components::status::{ErrorNote, Loading};
use crate::components::table::ColumnHeads;
use crate::data::{DeliveryRow, SubscriptionRow, Subscriptions};
use crate::format::utc;
use crate::session::csrf_token;

/// "any" for an empty filter list, else the names joined.
fn any_or(list: &[String]) -> String {
    if list.is_empty() {
        "any".to_owned()
    } else {
        list.join(", ")
    }
}

/// How a subscription's deliveries are sent, in words.
pub fn order_words(parallel: bool) -> &'static str {
    if parallel {
        "in parallel: several at once, events may arrive out of order"
    } else {
        "in event order, one after the other"
    }
}

/// The health of a subscription in words: delivering, or what is wrong.
pub fn health_words(r: &SubscriptionRow) -> String {
    match r.warning.as_deref() {
        Some("dead") => format!(
            "{} deliver{} given up — redeliver from its page once the receiver is fixed",
            r.dead,
            if r.dead == 1 { "y" } else { "ies" }
        ),
        Some("paused") => format!(
            "paused after {} failures in a row{}",
            r.consecutive_failures,
            r.paused_until
                .map(|t| format!("; tries again at {}", utc(t)))
                .unwrap_or_default()
        ),
        Some("failing") => format!(
            "failing{}; {} waiting",
            r.failing_since
                .map(|t| format!(" since {}", utc(t)))
                .unwrap_or_default(),
            r.pending
        ),
        _ if r.pending > 0 => format!("delivering ({} waiting)", r.pending),
        _ => "delivering".to_owned(),
    }
}

/// Every subscription, and the form that adds one.
#[component]
pub fn SubscriptionsPage() -> impl IntoView {
    let refresh = RwSignal::new(0_u32);
    let list = Resource::new(move || refresh.get(), |_| get_subscriptions());
    let create = ServerAction::<CreateSubscription>::new();
    // One test action for the whole table, owned here and not by a row: a
    // successful test refreshes the list, which rebuilds every row, and the
    // answer ("queued" or why not) must outlive that rebuild.
    let test = ServerAction::<SendTestMessage>::new();
    let tested = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(input) = test.input().get() {
            tested.set(input.name);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            refresh.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = test.value().get() {
            refresh.update(|n| *n += 1);
        }
    });
    let tests = RowTests { action: test, tested };
    view! {
        <Title text="Subscriptions · Switchyard"/>
        <div class="page-head">
            <h1>"Subscriptions"</h1>
            <p class="lede">
                "Who hears about release events: signed webhooks (Standard Webhooks) and chat messages "
                "(Slack, Mattermost, Rocket.Chat). Each event is delivered at least once, in event order "
                "unless the subscription delivers in parallel, retried for 24 hours, then shown here as given up."
            </p>
        </div>
        <Transition fallback=|| view! { <Loading what="the subscriptions"/> }>
            {move || Suspend::new(async move {
                match list.await {
                    Ok(s) => view! { <SubscriptionsBody s create tests/> }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load the subscriptions" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn SubscriptionsBody(
    s: Subscriptions,
    create: ServerAction<CreateSubscription>,
    tests: RowTests,
) -> impl IntoView {
    let Subscriptions {
        rows,
        event_kinds,
        default_kinds,
    } = s;
    let (all_kinds, defaults) = (event_kinds.join(", "), default_kinds.join(", "));
    let table = if rows.is_empty() {
        view! { <p class="empty">"No subscription yet: add one below."</p> }.into_any()
    } else {
        view! {
            <table class="subscriptions">
                <ColumnHeads names=&["Name", "Kind", "Destination", "Events", "Models", "Environments", "Clusters", "Health", ""]/>
                <tbody>
                    {rows.into_iter().map(|r| view! { <Row r tests/> }).collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    view! {
        {table}
        <section class="new-subscription" aria-labelledby="new-sub-h">
            <h2 id="new-sub-h">"Add a subscription"</h2>
            <ActionForm action=create attr:class="stacked">
                <input type="hidden" name="csrf_token" value=csrf_token()/>
                <label><span>"Name"</span>
                    <input type="text" name="name" required=true autocomplete="off" pattern="[a-z0-9][a-z0-9._\\-]{0,63}"
                        placeholder="release-channel"/></label>
                <label><span>"Kind"</span>
                    <select name="kind">
                        <option value="webhook" selected=true>"webhook — the event as signed JSON"</option>
                        <option value="chat">"chat — a Slack-compatible message"</option>
                    </select></label>
                <label><span>"URL (http or https)"</span>
                    <input type="url" name="url" required=true autocomplete="off" placeholder="https://hooks.example.com/switchyard"/></label>
                <label><span>"Event kinds (comma-separated; empty: the release events)"</span>
                    <input type="text" name="events" autocomplete="off" list="event-kinds" placeholder="promotion.requested, rollback"/></label>
                <datalist id="event-kinds">
                    {event_kinds.into_iter().map(|k| view! { <option value=k/> }).collect_view()}
                </datalist>
                <label><span>"Models (comma-separated; empty: any)"</span>
                    <input type="text" name="models" autocomplete="off"/></label>
                <label><span>"Environments (comma-separated; empty: any)"</span>
                    <input type="text" name="environments" autocomplete="off"/></label>
                <label><span>"Clusters (comma-separated; empty: any)"</span>
                    <input type="text" name="clusters" autocomplete="off"/></label>
                <label class="check"><input type="checkbox" name="parallel" value="true"/>
                    <span>"Deliver in parallel — events may arrive out of order; for receivers that do not need order (default: one after the other, in event order)"</span></label>
                <button type="submit" class="button">"Add subscription"</button>
                {move || create.pending().get().then(|| view! { <p class="loading" role="status">"Checking the destination…"</p> })}
                {move || create.value().get().map(|r| match r {
                    Ok(c) => view! { <Created name=c.name secret=c.secret/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{format!("Not added: {}", e.message)}</p> }.into_any(),
                })}
            </ActionForm>
            <details class="kinds">
                <summary>"Event kinds"</summary>
                <p>"Without a list a subscription receives the release events: " <code class="wrap">{defaults}</code></p>
                <p>"All kinds: " <code class="wrap">{all_kinds}</code></p>
            </details>
        </section>
    }
}

/// Said once after a subscription is added: a webhook's signing secret.
#[component]
fn Created(name: String, secret: Option<String>) -> impl IntoView {
    view! {
        <div class="done" role="status">
            <p>{format!("Subscription {name} added.")}</p>
            {secret.map(|s| view! {
                <p>"Its signing secret, shown this once — give it to the receiver now (it verifies " <code>"webhook-signature"</code> " with it):"</p>
                <p><code class="secret wrap">{s}</code></p>
            })}
        </div>
    }
}

/// The table's "Send test" action and the subscription it was last sent for.
#[derive(Clone, Copy)]
struct RowTests {
    action: ServerAction<SendTestMessage>,
    tested: RwSignal<String>,
}

#[component]
fn Row(r: SubscriptionRow, tests: RowTests) -> impl IntoView {
    let RowTests { action: test, tested } = tests;
    let href = format!("/subscriptions/{}", r.name);
    let health = health_words(&r);
    let warning = r.warning.clone().unwrap_or_else(|| "ok".to_owned());
    let name = r.name.clone();
    let this_row = {
        let name = name.clone();
        move || tested.with(|t| *t == name)
    };
    view! {
        <tr data-subscription=r.name.clone()>
            <td><a class="mono" href=href>{r.name.clone()}</a></td>
            <td>{if r.parallel { format!("{}, in parallel", r.kind) } else { r.kind.clone() }}</td>
            <td><code class="wrap">{r.url.clone()}</code></td>
            <td>{if r.events.is_empty() { "release events".to_owned() } else { r.events.join(", ") }}</td>
            <td>{any_or(&r.models)}</td>
            <td>{any_or(&r.environments)}</td>
            <td>{any_or(&r.clusters)}</td>
            <td class="health" data-health=warning>{health}</td>
            <td>
                <ActionForm action=test attr:class="inline">
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <input type="hidden" name="name" value=name/>
                    <button type="submit" class="button secondary">"Send test"</button>
                </ActionForm>
                {move || this_row().then(|| test.value().get()).flatten().map(|r| match r {
                    Ok(_) => view! { <span class="done" role="status">"Test message queued."</span> }.into_any(),
                    Err(e) => view! { <span class="error" role="alert">{format!("Not sent: {}", e.message)}</span> }.into_any(),
                })}
            </td>
        </tr>
    }
}

/// One subscription: its filter and health, recent deliveries with
/// redeliver buttons, secret rotation, and deletion.
#[component]
pub fn SubscriptionPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let refresh = RwSignal::new(0_u32);
    let detail = Resource::new(
        move || (name(), refresh.get()),
        |(n, _)| get_subscription(n),
    );
    view! {
        <Title text=move || format!("{} · Subscriptions · Switchyard", name())/>
        <div class="page-head">
            <p class="crumbs"><a href="/subscriptions">"Subscriptions"</a></p>
            <h1 class="mono">{name}</h1>
        </div>
        <Transition fallback=|| view! { <Loading what="the subscription"/> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(d) => view! {
                        <Facts r=d.row.clone()/>
                        <Deliveries deliveries=d.deliveries refresh/>
                        <Manage r=d.row/>
                    }.into_any(),
                    Err(error) => view! { <ErrorNote doing="load this subscription" error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Facts(r: SubscriptionRow) -> impl IntoView {
    let health = health_words(&r);
    view! {
        <dl class="facts">
            <dt>"Kind"</dt><dd>{r.kind.clone()}</dd>
            <dt>"Destination"</dt><dd><code class="wrap">{r.url.clone()}</code></dd>
            <dt>"Events"</dt><dd>{if r.events.is_empty() { "the release events".to_owned() } else { r.events.join(", ") }}</dd>
            <dt>"Models"</dt><dd>{any_or(&r.models)}</dd>
            <dt>"Environments"</dt><dd>{any_or(&r.environments)}</dd>
            <dt>"Clusters"</dt><dd>{any_or(&r.clusters)}</dd>
            <dt>"Delivery order"</dt><dd data-parallel=r.parallel.to_string()>{order_words(r.parallel)}</dd>
            <dt>"Added"</dt><dd>{format!("{} by {}", utc(r.created_at), r.created_by)}</dd>
            <dt>"Health"</dt><dd class="health">{health}</dd>
            {r.last_error.clone().map(|e| view! { <dt>"Last error"</dt><dd><code class="wrap">{e}</code></dd> })}
        </dl>
    }
}

#[component]
fn Deliveries(deliveries: Vec<DeliveryRow>, refresh: RwSignal<u32>) -> impl IntoView {
    let redeliver = ServerAction::<Redeliver>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = redeliver.value().get() {
            refresh.update(|n| *n += 1);
        }
    });
    let empty = deliveries.is_empty();
    view! {
        <section aria-labelledby="deliveries-h">
            <h2 id="deliveries-h">"Recent deliveries"</h2>
            {move || redeliver.value().get().map(|r| match r {
                Ok(id) => view! { <p class="done" role="status">{format!("Delivery {id} queued again, with the same webhook-id.")}</p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{format!("Not redelivered: {}", e.message)}</p> }.into_any(),
            })}
            {empty.then(|| view! { <p class="empty">"Nothing was delivered to it yet."</p> })}
            {(!empty).then(|| view! {
                <table class="deliveries">
                    <ColumnHeads names=&["Delivery", "Event", "Status", "Attempts", "Last answer", "Created", ""]/>
                    <tbody>
                        {deliveries.into_iter().map(|d| {
                            let answer = match (d.response_code, d.latency_ms, d.last_error.clone()) {
                                (_, _, Some(e)) if d.status != "delivered" => e,
                                (Some(code), Some(ms), _) => format!("HTTP {code} in {ms} ms"),
                                (Some(code), None, _) => format!("HTTP {code}"),
                                _ => "—".to_owned(),
                            };
                            let can_redeliver = d.status != "pending";
                            view! {
                                <tr data-delivery=d.id.to_string() data-status=d.status.clone()>
                                    <td>{d.id}</td>
                                    <td>{d.event_id.map_or_else(|| "test message".to_owned(), |e| format!("event {e}"))}</td>
                                    <td>{d.status.clone()}</td>
                                    <td>{d.attempts}</td>
                                    <td><span class="wrap">{answer}</span></td>
                                    <td>{utc(d.created_at)}</td>
                                    <td>{can_redeliver.then(|| view! {
                                        <ActionForm action=redeliver attr:class="inline">
                                            <input type="hidden" name="csrf_token" value=csrf_token()/>
                                            <input type="hidden" name="id" value=d.id.to_string()/>
                                            <button type="submit" class="button secondary">"Redeliver"</button>
                                        </ActionForm>
                                    })}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}

#[component]
fn Manage(r: SubscriptionRow) -> impl IntoView {
    let rotate = ServerAction::<RotateSubscriptionSecret>::new();
    let delete = ServerAction::<DeleteSubscription>::new();
    let webhook = r.kind == "webhook";
    let (rotate_name, delete_name) = (r.name.clone(), r.name.clone());
    view! {
        {webhook.then(|| view! {
            <section aria-labelledby="rotate-h">
                <h2 id="rotate-h">"Rotate the signing secret"</h2>
                <p>"A new secret signs from now on; the previous ones keep signing beside it for the overlap, so receivers can switch without losing a message."</p>
                <ActionForm action=rotate attr:class="stacked">
                    <input type="hidden" name="csrf_token" value=csrf_token()/>
                    <input type="hidden" name="name" value=rotate_name/>
                    <label><span>"Overlap in hours (0–720)"</span>
                        <input type="number" name="overlap_hours" min="0" max="720" value="24"/></label>
                    <button type="submit" class="button">"Rotate secret"</button>
                </ActionForm>
                {move || rotate.value().get().map(|r| match r {
                    Ok(s) => view! {
                        <div class="done" role="status">
                            <p>{format!("New secret for {}, shown this once; the previous ones sign until {}:", s.name, utc(s.previous_valid_until))}</p>
                            <p><code class="secret wrap">{s.secret}</code></p>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{format!("Not rotated: {}", e.message)}</p> }.into_any(),
                })}
            </section>
        })}
        <section aria-labelledby="delete-h">
            <h2 id="delete-h">"Delete"</h2>
            <p>"Deleting drops its secrets and undelivered messages; the ledger keeps the record that it existed."</p>
            <ActionForm action=delete attr:class="stacked">
                <input type="hidden" name="csrf_token" value=csrf_token()/>
                <input type="hidden" name="name" value=delete_name.clone()/>
                <label><span>{format!("Type {delete_name} to confirm")}</span>
                    <input type="text" name="confirm" autocomplete="off" required=true/></label>
                <button type="submit" class="button danger">"Delete subscription"</button>
            </ActionForm>
            {move || delete.value().get().map(|r| match r {
                Ok(name) => view! { <p class="done" role="status">{format!("Subscription {name} deleted. ")}<a href="/subscriptions">"Back to the subscriptions"</a></p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{format!("Not deleted: {}", e.message)}</p> }.into_any(),
            })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_domain::Timestamp;

    fn row() -> SubscriptionRow {
        SubscriptionRow {
            name: "room".into(),
            kind: "chat".into(),
            url: "https://hooks.example.com/services/…".into(),
            events: vec![],
            models: vec![],
            environments: vec![],
            clusters: vec![],
            created_at: Timestamp::from_micros(0),
            created_by: "ada".into(),
            warning: None,
            pending: 0,
            dead: 0,
            consecutive_failures: 0,
            failing_since: None,
            paused_until: None,
            last_error: None,
            parallel: false,
        }
    }

    #[test]
    fn health_says_what_is_wrong_and_what_to_do() {
        assert_eq!(health_words(&row()), "delivering");
        let waiting = SubscriptionRow {
            pending: 3,
            ..row()
        };
        assert_eq!(health_words(&waiting), "delivering (3 waiting)");
        let dead = SubscriptionRow {
            warning: Some("dead".into()),
            dead: 2,
            ..row()
        };
        assert_eq!(
            health_words(&dead),
            "2 deliveries given up — redeliver from its page once the receiver is fixed"
        );
        let failing = SubscriptionRow {
            warning: Some("failing".into()),
            failing_since: Some(Timestamp::from_micros(0)),
            pending: 4,
            ..row()
        };
        assert_eq!(
            health_words(&failing),
            "failing since 1970-01-01 00:00 UTC; 4 waiting"
        );
    }
}
