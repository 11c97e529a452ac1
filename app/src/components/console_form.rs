//! `ConsoleForm`: a form that posts to a server function. Without
//! JavaScript it is a plain POST (the server answers with a redirect back);
//! with it, the submission is read in the browser and the action dispatched
//! in place. Leptos' `ActionForm` does the same but reads the fields with
//! `serde_qs`, about 45 KB of the wasm bundle for forms that are flat here
//! (text fields, hidden fields and the value of the button pressed), so
//! [`FormFields`] reads them with a few lines of serde instead.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, Visitor};
use server_fn::ServerFn;

use crate::action::ConsoleAction;
use crate::api::value_reader::ReadError as FieldError;
use crate::error::AppError;

/// `<form method="post" action=…>` for the server function `S`.
#[component]
pub fn ConsoleForm<S>(
    action: ConsoleAction<S>,
    class: &'static str,
    children: Children,
) -> impl IntoView
where
    S: ServerFn<Output: Clone + Send + Sync + 'static, Error = AppError>
        + DeserializeOwned
        + Clone
        + Send
        + Sync
        + 'static,
{
    let on_submit = move |ev: SubmitEvent| {
        if ev.default_prevented() {
            return;
        }
        ev.prevent_default();
        match submitted_fields(&ev)
            .and_then(|fields| S::deserialize(FormFields(fields)).map_err(|e| e.to_string()))
        {
            Ok(input) => {
                action.dispatch(input);
            }
            Err(why) => action.value().set(Some(Err(AppError::new(
                "invalid_input",
                format!("The form could not be read: {why}"),
            )))),
        }
    };
    view! {
        <form class=class method="post" action=S::url() on:submit=on_submit>
            {children()}
        </form>
    }
}

/// The submitted form's fields, with the name and value of the button pressed.
#[cfg(feature = "hydrate")]
fn submitted_fields(ev: &SubmitEvent) -> Result<Vec<(String, String)>, String> {
    use leptos::wasm_bindgen::JsCast;
    let data = leptos::form::form_data_from_event(ev).map_err(|e| e.to_string())?;
    let entries = js_sys::try_iter(&data)
        .ok()
        .flatten()
        .ok_or("the form's fields cannot be listed")?;
    let mut fields = Vec::new();
    for entry in entries {
        let pair: js_sys::Array = entry
            .map_err(|_| "a field cannot be read")?
            .unchecked_into();
        // File inputs have no string value; no console form has one.
        if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
            fields.push((name, value));
        }
    }
    Ok(fields)
}

/// Forms are submitted only in the browser.
#[cfg(not(feature = "hydrate"))]
fn submitted_fields(_: &SubmitEvent) -> Result<Vec<(String, String)>, String> {
    Err("forms are read in the browser".to_owned())
}

/// Flat form fields as a serde map: a struct's fields read by name (others,
/// such as the CSRF token, are skipped), text as `String`, a present field as
/// `Some`, numbers parsed.
pub struct FormFields(pub Vec<(String, String)>);

impl<'de> de::Deserializer<'de> for FormFields {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_map(Fields {
            fields: self.0.into_iter(),
            value: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct Fields {
    fields: std::vec::IntoIter<(String, String)>,
    value: Option<String>,
}

impl<'de> MapAccess<'de> for Fields {
    type Error = FieldError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        match self.fields.next() {
            Some((name, value)) => {
                self.value = Some(value);
                let name: StringDeserializer<FieldError> = name.into_deserializer();
                seed.deserialize(name).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        seed.deserialize(Field(self.value.take().unwrap_or_default()))
    }
}

/// One field's text.
struct Field(String);

impl Field {
    fn number<T: std::str::FromStr>(&self) -> Result<T, FieldError> {
        self.0
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("“{}” is not a number", self.0)))
    }
}

impl<'de> de::Deserializer<'de> for Field {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_string(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_some(self)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_i64(self.number()?)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_u64(self.number()?)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i128 u8 u16 u32 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Decide {
        id: i64,
        reason: Option<String>,
        to: Option<String>,
    }

    fn read(fields: &[(&str, &str)]) -> Result<Decide, String> {
        let fields = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Decide::deserialize(FormFields(fields)).map_err(|e| e.to_string())
    }

    #[test]
    fn flat_fields_are_read_by_name_and_the_rest_is_skipped() {
        let got = read(&[
            ("id", "42"),
            ("csrf_token", "t"),
            ("reason", "looks good"),
            ("to", "staging"),
        ]);
        assert_eq!(
            got,
            Ok(Decide {
                id: 42,
                reason: Some("looks good".into()),
                to: Some("staging".into())
            })
        );
        assert_eq!(
            read(&[("id", " 7 ")]),
            Ok(Decide {
                id: 7,
                reason: None,
                to: None
            }),
            "absent fields are None"
        );
        assert_eq!(
            read(&[("id", "7"), ("reason", "")]).map(|d| d.reason),
            Ok(Some(String::new()))
        );
    }

    #[test]
    fn bad_or_missing_fields_are_refused_with_what_is_wrong() {
        assert!(read(&[("id", "seven")]).is_err_and(|e| e.contains("“seven” is not a number")));
        assert!(read(&[("reason", "x")]).is_err_and(|e| e.contains("missing field `id`")));
    }
}
