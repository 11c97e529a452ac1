//! The client every console server function uses (`client = ConsoleClient`):
//! the browser's fetch, plus the session's CSRF token in `x-csrf-token`,
//! which the server's console gate requires on every POST. Without it a
//! server function answers 403 — so a new one that forgets the attribute
//! fails loudly, never silently unprotected.

use std::future::Future;

use bytes::Bytes;
use futures::{Sink, Stream};
use server_fn::client::browser::BrowserClient;
use server_fn::client::Client;
use server_fn::error::FromServerFnError;
use server_fn::request::browser::BrowserRequest;
use server_fn::response::browser::BrowserResponse;

pub const CSRF_HEADER: &str = "x-csrf-token";
/// The id of the element whose `value` holds the token (the sign-out form's field).
pub const CSRF_ELEMENT_ID: &str = "csrf-token";

pub struct ConsoleClient;

#[cfg(feature = "hydrate")]
fn csrf_token() -> Option<String> {
    leptos::prelude::document()
        .get_element_by_id(CSRF_ELEMENT_ID)?
        .get_attribute("value")
}

/// On the server the client never runs.
#[cfg(not(feature = "hydrate"))]
fn csrf_token() -> Option<String> {
    None
}

impl<E, IS, OS> Client<E, IS, OS> for ConsoleClient
where
    E: FromServerFnError,
    IS: FromServerFnError,
    OS: FromServerFnError,
{
    type Request = BrowserRequest;
    type Response = BrowserResponse;

    fn send(req: BrowserRequest) -> impl Future<Output = Result<BrowserResponse, E>> + Send {
        if let Some(token) = csrf_token() {
            req.headers().set(CSRF_HEADER, &token);
        }
        <BrowserClient as Client<E, IS, OS>>::send(req)
    }

    fn open_websocket(
        path: &str,
    ) -> impl Future<
        Output = Result<
            (
                impl Stream<Item = Result<Bytes, Bytes>> + Send + 'static,
                impl Sink<Bytes> + Send + 'static,
            ),
            E,
        >,
    > + Send {
        <BrowserClient as Client<E, IS, OS>>::open_websocket(path)
    }

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        <BrowserClient as Client<E, IS, OS>>::spawn(future)
    }
}
