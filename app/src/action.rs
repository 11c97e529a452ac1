//! `ConsoleAction<S>`: the server function `S` called from a form or a
//! button, as Leptos' `ServerAction<S>` does it (pending while it runs, its
//! outcome kept, an error that came back in the address after a form posted
//! without JavaScript picked up), with one difference that matters for the
//! wasm bundle's size: every console action is the same Rust action
//! underneath (input and outcome type-erased), so Leptos' action machinery is
//! compiled once, not once per server function. `S`'s own types are
//! recovered where the action is dispatched and its outcome read.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use leptos::prelude::*;
use leptos::server::ServerActionError;
use leptos::server_fn::error::ServerFnUrlError;
use server_fn::ServerFn;

use crate::error::AppError;

/// What a console action was called with, whatever the server function.
#[derive(Clone)]
struct Call(Arc<dyn Any + Send + Sync>);

/// A console action's answer, whatever the server function.
#[derive(Clone)]
struct Done(Arc<dyn Any + Send + Sync>);

type Outcome = Result<Done, AppError>;
type CallFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The server function `S` as an action.
pub struct ConsoleAction<S> {
    inner: Action<Call, Outcome>,
    server_fn: PhantomData<fn() -> S>,
}

impl<S> Clone for ConsoleAction<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for ConsoleAction<S> {}

impl<S> ConsoleAction<S>
where
    S: ServerFn<Output: Clone + Send + Sync + 'static, Error = AppError>
        + Clone
        + Send
        + Sync
        + 'static,
{
    #[track_caller]
    pub fn new() -> Self {
        // A form posted without JavaScript comes back with its refusal in the address.
        let refused = use_context::<ServerActionError>()
            .filter(|e| e.path() == S::PATH)
            .map(|e| Err(ServerFnUrlError::<AppError>::decode_err(e.err())));
        let call = |call: &Call| -> CallFuture {
            match call.0.downcast_ref::<S>() {
                Some(input) => {
                    let answer = input.clone().run_on_client();
                    Box::pin(async move { answer.await.map(|out| Done(Arc::new(out))) })
                }
                // Calls are made only by `dispatch` below.
                None => Box::pin(async {
                    Err(AppError::new(
                        "internal",
                        "The console called an action wrongly.",
                    ))
                }),
            }
        };
        ConsoleAction {
            inner: erased_action(refused, Box::new(call)),
            server_fn: PhantomData,
        }
    }

    pub fn dispatch(&self, input: S) {
        self.inner.dispatch(Call(Arc::new(input)));
    }

    pub fn pending(&self) -> Memo<bool> {
        self.inner.pending()
    }

    /// The last outcome (`None` before the first call); read it with `get`, clear it with `set`.
    pub fn value(&self) -> ActionValue<S> {
        ActionValue {
            inner: self.inner,
            server_fn: PhantomData,
        }
    }
}

impl<S> Default for ConsoleAction<S>
where
    S: ServerFn<Output: Clone + Send + Sync + 'static, Error = AppError>
        + Clone
        + Send
        + Sync
        + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

/// Every console action is this one action.
#[track_caller]
fn erased_action(
    refused: Option<Outcome>,
    call: Box<dyn Fn(&Call) -> CallFuture + Send + Sync>,
) -> Action<Call, Outcome> {
    Action::new_with_value(refused, move |c: &Call| call(c))
}

/// A console action's outcome as `S`'s types.
pub struct ActionValue<S> {
    inner: Action<Call, Outcome>,
    server_fn: PhantomData<fn() -> S>,
}

impl<S> Clone for ActionValue<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for ActionValue<S> {}

impl<S> ActionValue<S>
where
    S: ServerFn<Output: Clone + Send + Sync + 'static, Error = AppError> + 'static,
{
    /// The outcome, tracked: a view reading it updates when it changes.
    pub fn get(&self) -> Option<Result<S::Output, AppError>> {
        self.inner
            .value()
            .get()
            .map(|outcome| outcome.and_then(|done| typed::<S::Output>(&done)))
    }

    pub fn set(&self, outcome: Option<Result<S::Output, AppError>>) {
        self.inner
            .value()
            .set(outcome.map(|r| r.map(|out| Done(Arc::new(out)))));
    }
}

fn typed<T: Clone + 'static>(done: &Done) -> Result<T, AppError> {
    done.0
        .downcast_ref::<T>()
        .cloned()
        .ok_or_else(|| AppError::new("internal", "The console read an action's answer wrongly."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_back_only_as_its_own_type() {
        let done = Done(Arc::new(vec![7u32]));
        assert_eq!(typed::<Vec<u32>>(&done), Ok(vec![7]));
        assert!(typed::<String>(&done).is_err_and(|e| e.code == "internal"));
    }
}
