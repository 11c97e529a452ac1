//! Canonical JSON (RFC 8785, JCS) and the `sha256:<hex>` config hash.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::DomainError;

/// Serialises `value` as RFC 8785 canonical JSON: no white space, object
/// members sorted by the UTF-16 code units of their names, numbers in the
/// ECMAScript shortest form, strings with the minimal escapes.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &serde_json::Number) {
    // JCS numbers are IEEE 754 doubles printed as ECMAScript does. Without
    // serde_json's `arbitrary_precision` every Number has an f64 value, and
    // it is always finite (serde_json cannot hold NaN or infinity).
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        out.push('0'); // also for -0
    } else {
        let mut buf = ryu_js::Buffer::new();
        out.push_str(buf.format_finite(f));
    }
}

/// Largest integer an IEEE 754 double holds exactly (2^53 − 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The first integer in `value` that canonical JSON would round (beyond
/// ±(2^53 − 1)), as written.
fn first_unsafe_integer(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => {
            let unsafe_int = n.as_u64().is_some_and(|u| u > MAX_SAFE_INTEGER)
                || n.as_i64()
                    .is_some_and(|i| i.unsigned_abs() > MAX_SAFE_INTEGER);
            unsafe_int.then(|| n.to_string())
        }
        Value::Array(items) => items.iter().find_map(first_unsafe_integer),
        Value::Object(map) => map.values().find_map(first_unsafe_integer),
        Value::Null | Value::Bool(_) | Value::String(_) => None,
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `sha256:` + lowercase hex of SHA-256 over `bytes`.
pub fn sha256_prefixed(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The config hash of a version: SHA-256 of the config's canonical JSON.
///
/// The config must be a JSON object. Integers beyond ±(2^53 − 1) are refused:
/// canonical JSON reads numbers as doubles, so 9007199254740993 would hash
/// like 9007199254740992 and two different configs would share one hash.
pub fn config_hash(config: &Value) -> Result<String, DomainError> {
    if !config.is_object() {
        return Err(DomainError::Invalid(format!(
            "config must be a JSON object, not {}",
            json_kind(config)
        )));
    }
    if let Some(n) = first_unsafe_integer(config) {
        return Err(DomainError::Invalid(format!(
            "config contains the integer {n}, which a JSON number (an IEEE 754 double) \
             cannot hold exactly; integers must lie within ±9007199254740991, \
             so write larger ones as strings"
        )));
    }
    Ok(sha256_prefixed(canonical_json(config).as_bytes()))
}

pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn canonical_number(f: f64) -> String {
        let n = serde_json::Number::from_f64(f).expect("finite");
        canonical_json(&Value::Number(n))
    }

    fn canonical_of_text(text: &str) -> String {
        canonical_json(&serde_json::from_str(text).expect("valid JSON"))
    }

    #[test]
    fn numbers_are_written_as_ecmascript_writes_them_per_rfc_8785_appendix_b() {
        // (IEEE 754 bits, expected canonical text) from RFC 8785 Appendix B.
        let samples: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, expected) in samples {
            assert_eq!(
                canonical_number(f64::from_bits(*bits)),
                *expected,
                "bits {bits:#018x}"
            );
        }
    }

    #[test]
    fn numbers_written_in_other_forms_take_their_shortest_form() {
        for (text, expected) in [
            ("1e30", "1e+30"),
            ("1E30", "1e+30"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("100", "100"),
            ("1.0", "1"),
            ("-12", "-12"),
            ("9007199254740992", "9007199254740992"),
            ("0.000000000000000000000000001", "1e-27"),
            ("333333333.33333329", "333333333.3333333"),
            ("123456789012345680000", "123456789012345680000"),
        ] {
            assert_eq!(canonical_of_text(text), expected, "{text}");
        }
    }

    #[test]
    fn every_appendix_b_number_survives_being_read_back_from_its_canonical_text() {
        // Catches a JSON parser that rounds decimal text to the wrong double.
        for text in [
            "333333333.33333325",
            "333333333.33333343",
            "9.999999999999997e+22",
            "1.0000000000000001e+23",
            "-0.0000033333333333333333",
            "1424953923781206.2",
            "5e-324",
            "1.7976931348623157e+308",
        ] {
            assert_eq!(canonical_of_text(text), text);
        }
    }

    #[test]
    fn the_rfc_8785_section_3_2_2_example_is_reproduced_exactly() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        assert_eq!(
            canonical_of_text(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn object_members_are_sorted_by_utf16_code_units_as_in_rfc_8785_section_3_2_3() {
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let out = canonical_of_text(input);
        let order: Vec<&str> = [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small Letter O With Diaeresis",
            "Euro Sign",
            "Emoji: Grinning Face",
            "Hebrew Letter Dalet With Dagesh",
        ]
        .to_vec();
        let positions: Vec<usize> = order
            .iter()
            .map(|v| {
                out.find(v)
                    .unwrap_or_else(|| panic!("{v} missing in {out}"))
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{out}");
        assert!(
            out.starts_with(r#"{"\r":"Carriage Return","1":"One","#),
            "{out}"
        );
    }

    #[test]
    fn strings_escape_only_quotes_backslashes_and_control_characters() {
        let v = json!("tab\there \u{1} \u{1f} \u{7f} é 😀 </script>");
        assert_eq!(
            canonical_json(&v),
            "\"tab\\there \\u0001 \\u001f \u{7f} é 😀 </script>\""
        );
        assert_eq!(canonical_json(&json!("\u{8}\u{c}")), r#""\b\f""#);
    }

    #[test]
    fn nested_arrays_and_objects_are_written_without_white_space() {
        let v = json!({"b": [1, {"d": null, "c": true}], "a": {}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{},"b":[1,{"c":true,"d":null}]}"#
        );
    }

    #[test]
    fn a_config_hash_is_sha256_followed_by_64_lowercase_hex_digits() {
        let h = config_hash(&json!({"temperature": 0.2})).expect("object");
        let hex = h.strip_prefix("sha256:").expect("prefix");
        assert_eq!(hex.len(), 64);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{h}"
        );
    }

    #[test]
    fn the_config_hash_is_the_sha256_of_the_canonical_text() {
        // sha256("{}") computed independently.
        assert_eq!(
            config_hash(&json!({})).expect("object"),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn the_same_config_with_other_key_order_and_white_space_has_the_same_hash() {
        let a: Value =
            serde_json::from_str(r#"{"model":"llama","params":{"top_p":0.9,"temperature":0.20}}"#)
                .expect("valid");
        let b: Value = serde_json::from_str(
            "{\n  \"params\": { \"temperature\": 2e-1, \"top_p\": 0.90 },\n  \"model\": \"llama\"\n}",
        )
        .expect("valid");
        assert_eq!(config_hash(&a), config_hash(&b));
    }

    #[test]
    fn a_changed_value_changes_the_hash() {
        assert_ne!(
            config_hash(&json!({"temperature": 0.2})),
            config_hash(&json!({"temperature": 0.3}))
        );
        assert_ne!(
            config_hash(&json!({"a": "1"})),
            config_hash(&json!({"a": 1}))
        );
    }

    #[test]
    fn a_config_that_is_not_an_object_is_refused_naming_what_it_is() {
        for (v, kind) in [
            (json!([1, 2]), "an array"),
            (json!("x"), "a string"),
            (json!(3), "a number"),
            (json!(null), "null"),
            (json!(true), "a boolean"),
        ] {
            match config_hash(&v) {
                Err(DomainError::Invalid(m)) => {
                    assert_eq!(m, format!("config must be a JSON object, not {kind}"))
                }
                other => panic!("expected Invalid for {v}, got {other:?}"),
            }
        }
    }

    #[test]
    fn integers_a_double_cannot_hold_exactly_are_refused_so_two_configs_never_share_a_hash() {
        for v in [
            json!({"seed": 9007199254740993_u64}),
            json!({"nested": [{"n": -9007199254740993_i64}]}),
            json!({"max": u64::MAX}),
        ] {
            match config_hash(&v) {
                Err(DomainError::Invalid(m)) => assert!(m.contains("as strings"), "{m}"),
                other => panic!("expected Invalid for {v}, got {other:?}"),
            }
        }
        assert!(config_hash(&json!({"seed": 9007199254740991_u64})).is_ok());
        assert!(config_hash(&json!({"seed": -9007199254740991_i64})).is_ok());
        assert!(config_hash(&json!({"big": 1e300})).is_ok());
    }
}
