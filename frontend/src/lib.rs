//! Hydrates the server-rendered console in the browser. Nothing else lives here.

// The pages' nested view types are deep; the release build's layout queries need the room.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
