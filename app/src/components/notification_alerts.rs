use leptos::prelude::*;

use crate::api::get_notification_status::get_notification_status;
use crate::data::NotificationWarning;
use crate::format::utc;

/// One warning in words: which subscription, and what is wrong with it.
pub fn warning_words(w: &NotificationWarning) -> String {
    match w.warning.as_str() {
        "dead" => format!(
            "{}: {} deliver{} given up",
            w.subscription,
            w.dead,
            if w.dead == 1 { "y" } else { "ies" }
        ),
        "paused" => format!(
            "{}: paused after repeated failures ({} waiting)",
            w.subscription, w.pending
        ),
        _ => format!(
            "{}: failing{} ({} waiting)",
            w.subscription,
            w.failing_since
                .map(|t| format!(" since {}", utc(t)))
                .unwrap_or_default(),
            w.pending
        ),
    }
}

/// A warning at the top of the overview when a notification subscription
/// is not delivering (dead, paused or failing): people would otherwise
/// learn only by missing a message. Nothing when all deliver.
#[component]
pub fn NotificationAlerts() -> impl IntoView {
    let status = Resource::new(|| (), |_| get_notification_status());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                // The overview works without this warning; a failure to read it is not the page's.
                let Ok(s) = status.await else { return ().into_any() };
                if s.warnings.is_empty() {
                    return ().into_any();
                }
                let count = s.warnings.len();
                let heading = format!(
                    "{count} notification subscription{} not delivering",
                    if count == 1 { "" } else { "s" }
                );
                let link = s.can_manage;
                view! {
                    <section class="card alert notification-alerts" role="alert" aria-labelledby="notification-alerts-h">
                        <h2 id="notification-alerts-h">{heading}</h2>
                        <ul>
                            {s.warnings.into_iter().map(|w| {
                                let words = warning_words(&w);
                                let href = format!("/subscriptions/{}", w.subscription);
                                view! {
                                    <li data-warning=w.warning.clone()>
                                        {if link { view! { <a href=href>{words}</a> }.into_any() } else { view! { <span>{words}</span> }.into_any() }}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                        {(!link).then(|| view! { <p class="sub">"An admin can see why and redeliver on the Subscriptions page."</p> })}
                    </section>
                }.into_any()
            })}
        </Suspense>
    }
}
