//! The console's resources: `page_resource` is `Resource::new` with one
//! difference that matters for the wasm bundle's size. Leptos' default codec
//! reads a resource's server-sent JSON with `serde_json::from_str`, while the
//! server functions' responses are read with `serde_json::from_slice`; every
//! data type then gets two copies of its deserializer in the bundle. `Json`
//! reads from a slice too, so the browser keeps one copy. The JSON on the wire
//! is the same.

use std::future::Future;

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// JSON written with `serde_json::to_string`, read with `serde_json::from_slice`.
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(val.as_bytes())
    }
}

/// `Resource::new`, with the codec above.
#[track_caller]
pub fn page_resource<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, Json>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_reads_what_serde_json_writes() {
        let value: Result<Vec<u32>, String> = Ok(vec![1, 2, 3]);
        let encoded = <Json as Encoder<_>>::encode(&value).expect("encodes");
        assert_eq!(encoded, serde_json::to_string(&value).expect("serde_json"));
        let decoded: Result<Vec<u32>, String> = <Json as Decoder<_>>::decode(&encoded).expect("decodes");
        assert_eq!(decoded, value);
        assert!(<Json as Decoder<Vec<u32>>>::decode("[1,").is_err());
    }
}
