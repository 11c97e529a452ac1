//! The console's resources. `page_resource` is `Resource::new` with one
//! difference that matters for the wasm bundle's size: every page's resource
//! is the same Rust value, source and fetcher types ([`PageData`], `Key`,
//! boxed closures), and the page's own types are recovered only where the
//! source is compared and the value read. Leptos' resources are generic over
//! all three, so one `Resource<T>` per page compiled the reactive machinery
//! behind it (async derived values, memos, mapped signals) once per page,
//! about 10 KB of wasm each; this way it is compiled once.
//!
//! On the server the value is kept as it is (the page reads it without a
//! round trip) and as JSON, which goes into the page for hydration. In the
//! browser a value from the page arrives as that JSON and is read with
//! [`read_json`], the reader the server functions' responses use too (so
//! each type's deserializer is in the bundle once); a value fetched later
//! in the browser is kept as it is.

use std::any::Any;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::codec::read_json;
use crate::api::value_reader::ReadError;
use crate::error::AppError;

/// A page resource's value, whatever the page's type.
#[derive(Clone)]
pub struct PageData {
    value: Option<Arc<dyn Any + Send + Sync>>,
    json: Option<Arc<str>>,
}

impl PageData {
    fn new<T: Serialize + Send + Sync + 'static>(value: T) -> PageData {
        #[cfg(feature = "ssr")]
        let json = Some(serde_json::to_string(&value).unwrap_or_else(|e| {
            // Never for the console's types (no maps with non-text keys); the
            // browser then fetches the value itself.
            leptos::logging::error!("a page resource could not be written as JSON: {e}");
            String::new()
        }));
        #[cfg(not(feature = "ssr"))]
        let json: Option<String> = None;
        PageData {
            value: Some(Arc::new(value)),
            json: json.map(Arc::from),
        }
    }

    /// The value as `T`: the kept value, or read from the page's JSON.
    fn read<T: PageValue>(&self) -> T {
        if let Some(value) = self.value.as_ref().and_then(|v| v.downcast_ref::<T>()) {
            return value.clone();
        }
        match self.json.as_deref().map(|json| read_json(json.as_bytes())) {
            Some(Ok(value)) => value,
            Some(Err(e)) => T::unreadable(format!(
                "The page's data could not be read ({e}); reload the page."
            )),
            None => T::unreadable("The page's data is missing; reload the page.".to_owned()),
        }
    }
}

/// What a page resource may hold: its data or its error, so that data that
/// cannot be read is shown as an error like any other.
pub trait PageValue: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    fn unreadable(why: String) -> Self;
}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> PageValue
    for Result<T, AppError>
{
    fn unreadable(why: String) -> Self {
        Err(AppError::new("unreadable", why))
    }
}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> PageValue
    for Option<Result<T, AppError>>
{
    fn unreadable(why: String) -> Self {
        Some(Err(AppError::new("unreadable", why)))
    }
}

/// The codec that carries [`PageData`] into the page: its JSON as it is.
pub struct PageCodec;

impl Encoder<PageData> for PageCodec {
    type Error = AppError;
    type Encoded = String;

    fn encode(val: &PageData) -> Result<String, AppError> {
        val.json
            .as_deref()
            .map(str::to_owned)
            .ok_or_else(|| AppError::new("internal", "no JSON for this page's data"))
    }
}

impl Decoder<PageData> for PageCodec {
    type Error = AppError;
    type Encoded = str;

    fn decode(val: &str) -> Result<PageData, AppError> {
        Ok(PageData {
            value: None,
            json: Some(Arc::from(val)),
        })
    }
}

/// JSON written with `serde_json::to_string` and read with [`read_json`],
/// for values other than page resources handed to the browser inside the
/// page (the header's user). Leptos' default codec reads with `from_str`,
/// a second copy of every type's deserializer in the wasm.
pub struct SliceJson;

impl<T: Serialize> Encoder<T> for SliceJson {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> Decoder<T> for SliceJson {
    type Error = ReadError;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, ReadError> {
        read_json(val.as_bytes())
    }
}

/// A page's resource: awaiting it gives the page's `T`.
pub struct PageResource<T> {
    inner: Resource<PageData, PageCodec>,
    page: PhantomData<fn() -> T>,
}

impl<T> Clone for PageResource<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for PageResource<T> {}

impl<T: PageValue> IntoFuture for PageResource<T> {
    type Output = T;
    type IntoFuture = Pin<Box<dyn Future<Output = T> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let data = self.inner.into_future();
        Box::pin(async move { data.await.read::<T>() })
    }
}

/// `Resource::new` for a page's data, as [`PageResource`].
#[track_caller]
pub fn page_resource<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> PageResource<T>
where
    T: PageValue,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let fetch = move |key: Key| -> PageFuture {
        match key.0.as_any().downcast_ref::<S>() {
            Some(s) => {
                let fetched = fetcher(s.clone());
                Box::pin(async move { PageData::new(fetched.await) })
            }
            // Keys come only from `source` below.
            None => Box::pin(async {
                PageData::new(T::unreadable(
                    "The page asked for its data wrongly.".to_owned(),
                ))
            }),
        }
    };
    let inner = erased_resource(Box::new(move || Key(Arc::new(source()))), Box::new(fetch));
    PageResource {
        inner,
        page: PhantomData,
    }
}

type PageFuture = Pin<Box<dyn Future<Output = PageData> + Send>>;

/// Every page resource is this one resource, so Leptos' resource code,
/// generic over the source and the fetcher, is compiled once.
#[track_caller]
fn erased_resource(
    source: Box<dyn Fn() -> Key + Send + Sync>,
    fetch: Box<dyn Fn(Key) -> PageFuture + Send + Sync>,
) -> Resource<PageData, PageCodec> {
    Resource::new_with_options(source, fetch, false)
}

/// A page resource's source value (what it depends on), whatever its type.
#[derive(Clone)]
struct Key(Arc<dyn KeyValue>);

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.0.same_as(other.0.as_any())
    }
}

trait KeyValue: Send + Sync + 'static {
    fn as_any(&self) -> &dyn Any;
    fn same_as(&self, other: &dyn Any) -> bool;
}

impl<S: PartialEq + Send + Sync + 'static> KeyValue for S {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same_as(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<S>() == Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Page = Result<Vec<u32>, AppError>;

    #[test]
    fn page_data_reads_back_as_its_type_from_the_value_or_from_json() {
        let data = PageData::new::<Page>(Ok(vec![1, 2, 3]));
        assert_eq!(data.read::<Page>(), Ok(vec![1, 2, 3]));
        let json = <PageCodec as Encoder<PageData>>::encode(&data);
        #[cfg(feature = "ssr")]
        {
            let json = json.expect("the server writes JSON");
            assert_eq!(json, r#"{"Ok":[1,2,3]}"#);
            let sent = <PageCodec as Decoder<PageData>>::decode(&json).expect("decodes");
            assert_eq!(sent.read::<Page>(), Ok(vec![1, 2, 3]));
        }
        #[cfg(not(feature = "ssr"))]
        assert!(json.is_err(), "only the server writes page data into pages");
    }

    #[test]
    fn slice_json_reads_what_serde_json_writes() {
        let value: Option<Vec<String>> = Some(vec!["bob".into()]);
        let encoded = <SliceJson as Encoder<_>>::encode(&value).expect("encodes");
        assert_eq!(encoded, r#"["bob"]"#);
        assert_eq!(
            <SliceJson as Decoder<Option<Vec<String>>>>::decode(&encoded).expect("decodes"),
            value
        );
        assert!(<SliceJson as Decoder<Vec<u32>>>::decode("[1,").is_err());
    }

    #[test]
    fn keys_are_equal_only_for_equal_values_of_one_type() {
        let key = |v: Arc<dyn KeyValue>| Key(v);
        assert!(key(Arc::new(3u32)) == key(Arc::new(3u32)));
        assert!(key(Arc::new(3u32)) != key(Arc::new(4u32)));
        assert!(key(Arc::new(3u32)) != key(Arc::new(3u64)));
        assert!(key(Arc::new(("a".to_owned(), 1u32))) == key(Arc::new(("a".to_owned(), 1u32))));
    }

    #[test]
    fn unreadable_page_data_becomes_an_error_on_the_page() {
        let sent = <PageCodec as Decoder<PageData>>::decode("[1,").expect("kept as text");
        assert!(sent
            .read::<Page>()
            .is_err_and(|e| e.message.contains("could not be read")));
        let maybe: Option<Page> = sent.read();
        assert!(matches!(maybe, Some(Err(_))));
    }
}
