//! Form pieces the editing pages share: a labelled field, and a submit
//! button greyed out with the reason.

use leptos::prelude::*;

/// A labelled control: `<label><span>words (hint)</span>control</label>`.
/// The label wraps the control, so it names it without `for`/`id` and a
/// click on the words focuses it.
#[component]
pub fn Field(
    /// What the control holds, e.g. "Expiry".
    label: &'static str,
    /// How to fill it in, said in brackets after the words, e.g. "hours".
    #[prop(optional)]
    hint: Option<&'static str>,
    /// The control: an input or a select.
    children: Children,
) -> impl IntoView {
    let words = match hint {
        Some(hint) => format!("{label} ({hint})"),
        None => label.to_owned(),
    };
    view! {
        <label>
            <span>{words}</span>
            {children()}
        </label>
    }
}

/// A form's submit button; when the form is refused it is disabled and the
/// reason stands beside it (`why-<id>`, which the button points to).
#[component]
pub fn Submit(
    label: &'static str,
    #[prop(into)] id: String,
    refused: Option<String>,
) -> impl IntoView {
    let disabled = refused.is_some();
    let why_id = format!("why-{id}");
    view! {
        <div class="move">
            <button class="button" type="submit" disabled=disabled aria-describedby=disabled.then_some(why_id.clone())>
                {label}
            </button>
            {refused.map(|why| view! { <span class="why" id=why_id>{why}</span> })}
        </div>
    }
}
