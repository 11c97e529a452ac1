use leptos::prelude::*;
use switchyard_domain::freeze::FreezeState;

use crate::api::get_freezes::get_freezes;
use crate::format::utc;

/// What the banner says about one freeze in force.
pub fn freeze_text(f: &FreezeState) -> String {
    let mut text = format!(
        "Change freeze in {}: \u{201c}{}\u{201d} until {}. Promotions and operations are refused there; rollbacks still work.",
        f.environment,
        f.window.name,
        utc(f.ends_at)
    );
    if let Some(o) = &f.overridden_by {
        text.push_str(&format!(
            " Emergency override {} in force until {} (requested by {}, approved by {}: {}).",
            o.id,
            o.valid_until.map(utc).unwrap_or_default(),
            o.requested_by,
            o.approved_by.as_deref().unwrap_or("?"),
            o.reason
        ));
    }
    text
}

/// A banner for each change freeze in force now; nothing when there is none
/// (or when the freezes cannot be read: the page itself says what failed).
#[component]
pub fn FreezeBanner() -> impl IntoView {
    let freezes = Resource::new(|| (), |_| get_freezes());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let list = freezes.await.unwrap_or_default();
                (!list.is_empty()).then(|| view! {
                    <div class="freeze-banner" role="status">
                        {list.iter().map(|f| view! { <p>{freeze_text(f)}</p> }).collect_view()}
                    </div>
                })
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_domain::freeze::{FreezeOverride, FreezeWindow, Schedule};
    use switchyard_domain::Timestamp;

    #[test]
    fn the_banner_names_the_window_its_end_and_an_override_in_force() {
        let t = |s: &str| Timestamp::parse(s).expect("timestamp");
        let mut f = FreezeState {
            environment: "production".into(),
            window: FreezeWindow {
                id: 1,
                name: "year-end".into(),
                environment: "production".into(),
                schedule: Schedule::OneOff {
                    from: t("2026-12-20T00:00:00Z"),
                    to: t("2027-01-02T00:00:00Z"),
                },
                created_by: "alice".into(),
                created_at: t("2026-12-01T00:00:00Z"),
            },
            ends_at: t("2027-01-02T00:00:00Z"),
            overridden_by: None,
        };
        let text = freeze_text(&f);
        assert!(
            text.starts_with("Change freeze in production: \u{201c}year-end\u{201d} until "),
            "{text}"
        );
        assert!(text.contains("rollbacks still work"), "{text}");
        f.overridden_by = Some(FreezeOverride {
            id: 3,
            environment: "production".into(),
            reason: "CVE fix".into(),
            hours: 2,
            requested_by: "alice".into(),
            requested_at: t("2026-12-24T10:00:00Z"),
            approved_by: Some("bob".into()),
            approved_at: Some(t("2026-12-24T10:05:00Z")),
            valid_until: Some(t("2026-12-24T12:05:00Z")),
        });
        let text = freeze_text(&f);
        assert!(
            text.contains("Emergency override 3 in force until")
                && text.contains("approved by bob: CVE fix"),
            "{text}"
        );
    }
}
