//! `ConsoleJson`: the console's server functions answer in JSON, as
//! `server_fn`'s own `Json` does, and the browser reads every answer — and
//! every page's data handed over in the HTML ([`crate::resource`]) — in two
//! steps: the text into a `serde_json::Value`, then the value into its type.
//!
//! Why not straight from the text: each type's deserializer is compiled for
//! the reader it reads from. Straight from the text, every struct and list
//! carried its own copy of the JSON parser's inner loops (whitespace, quotes,
//! escapes, positions for errors); from a `Value` they only match on it. The
//! parser is then compiled once, and the release wasm is smaller by the
//! difference (ARCHITECTURE.md, "Wasm size"). The page data is a few KB, so
//! building the `Value` first costs nothing anyone can notice.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use server_fn::codec::Post;
use server_fn::{ContentType, Decodes, Encodes, Format, FormatType};

use super::value_reader::{self, ReadError};

pub struct ConsoleJson;

/// What every console server function names as its `output`.
pub type JsonAnswer = Post<ConsoleJson>;

impl ContentType for ConsoleJson {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for ConsoleJson {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for ConsoleJson {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, serde_json::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for ConsoleJson {
    type Error = ReadError;

    fn decode(bytes: Bytes) -> Result<T, ReadError> {
        read_json(&bytes)
    }
}

/// JSON text → `T`, through a `serde_json::Value`.
pub fn read_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ReadError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    value_reader::from_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Shape {
        Square { side: u64 },
        Named { name: String },
    }

    #[test]
    fn reads_back_what_it_writes_including_tagged_enums_and_number_keys() {
        // (Number keys inside an internally tagged enum are beyond serde
        // itself: it buffers the keys as text. Outside one they read back.)
        let shapes = (
            vec![
                Shape::Square { side: u64::MAX },
                Shape::Named {
                    name: "blue \"slot\"".into(),
                },
            ],
            BTreeMap::from([(3u32, "three".to_owned())]),
        );
        let bytes = <ConsoleJson as Encodes<_>>::encode(&shapes).expect("encodes");
        let back: (Vec<Shape>, BTreeMap<u32, String>) =
            <ConsoleJson as Decodes<_>>::decode(bytes).expect("decodes");
        assert_eq!(back, shapes);
    }

    #[test]
    fn refuses_broken_text_and_the_wrong_shape() {
        assert!(read_json::<Vec<u32>>(b"[1,").is_err());
        assert!(read_json::<Vec<u32>>(br#"{"a":1}"#).is_err());
        assert!(read_json::<Shape>(br#"{"kind":"circle"}"#).is_err());
    }
}
