use leptos::prelude::*;

use crate::api::get_approvals::get_approvals;
use crate::components::status::{ErrorNote, Loading};
use crate::pages::approvals_page::approvals_summary;

/// The promotions waiting for approval, at the top of the overview, each
/// linking to the approvals inbox.
#[component]
pub fn PendingApprovals() -> impl IntoView {
    let approvals = Resource::new(|| (), |_| get_approvals());
    view! {
        <Suspense fallback=|| view! { <Loading what="pending approvals"/> }>
            {move || Suspend::new(async move {
                match approvals.await {
                    Ok(a) => {
                        let count = a.pending.len();
                        let list = if a.pending.is_empty() {
                            view! { <p class="sub">"Nothing is waiting for approval."</p> }.into_any()
                        } else {
                            view! {
                                <ul class="pending-list">
                                    {a.pending.into_iter().map(|p| {
                                        let p = p.promotion;
                                        view! {
                                            <li>
                                                <a href=format!("/approvals#promotion-{}", p.id)>
                                                    <span class="version">{p.full_id.to_string()}</span>
                                                    {format!(" → {}", p.environment)}
                                                </a>
                                                {format!(" · {} · requested by {}", approvals_summary(&p), p.requested_by)}
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        };
                        view! {
                            <section class="card pending-approvals" aria-labelledby="pending-approvals-heading">
                                <h2 id="pending-approvals-heading">
                                    <a href="/approvals">"Pending approvals"</a>
                                    " "
                                    <span class="count-badge">{count}</span>
                                </h2>
                                {list}
                            </section>
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorNote doing="load the pending approvals" error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}
