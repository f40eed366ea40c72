//! Tolerant readers for fields the gateway does not interpret.
//!
//! The gateway validates what it uses and ignores what it does not: a field that is only
//! displayed or logged (a cart number, a line's description, an error's message) must never
//! make a whole message fail because it arrived as a number, an object or `null`. These
//! functions are `deserialize_with` helpers for such fields; a field the gateway acts on
//! keeps its strict type and its clear error.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Text from any JSON value: a string as it is, a number or a boolean as its JSON text,
/// anything else (`null`, an object, a list) as `None`.
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(text_of(Value::deserialize(deserializer)?))
}

/// Text from a JSON value, as [`text`] reads it.
pub fn text_of(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A list of texts from any JSON value: the texts of a list's items (items without one
/// are left out), a single text as a list of one, anything else as an empty list.
pub fn texts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Array(items) => items.into_iter().filter_map(text_of).collect(),
        other => text_of(other).into_iter().collect(),
    })
}

/// A UUID from any JSON value: a string holding one, otherwise `None`.
pub fn uuid<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<uuid::Uuid>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) => uuid::Uuid::parse_str(s.trim()).ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "super::text")]
        text: Option<String>,
        #[serde(default, deserialize_with = "super::texts")]
        texts: Vec<String>,
        #[serde(default, deserialize_with = "super::uuid")]
        id: Option<uuid::Uuid>,
    }

    fn read(v: serde_json::Value) -> Sample {
        serde_json::from_value(v).expect("a tolerant reader never fails")
    }

    #[test]
    fn any_json_value_is_read_without_failing() {
        for odd in [
            json!(null),
            json!(7),
            json!(1.5),
            json!(true),
            json!("x"),
            json!([1, "a", null, {}]),
            json!({ "nested": [1] }),
        ] {
            read(json!({ "text": odd, "texts": odd, "id": odd }));
        }
        let s = read(json!({}));
        assert_eq!((s.text, s.texts.len(), s.id), (None, 0, None));
    }

    #[test]
    fn texts_numbers_and_uuids_are_kept() {
        let s = read(json!({
            "text": 42,
            "texts": ["a", 1, null, { "x": 1 }],
            "id": " 0199a9b6-8608-7360-b98b-d2f9adeb2848 ",
        }));
        assert_eq!(s.text.as_deref(), Some("42"));
        assert_eq!(s.texts, vec!["a".to_string(), "1".to_string()]);
        assert_eq!(
            s.id.map(|u| u.to_string()).as_deref(),
            Some("0199a9b6-8608-7360-b98b-d2f9adeb2848")
        );
        assert_eq!(read(json!({ "id": "line-1" })).id, None);
        assert_eq!(
            read(json!({ "texts": "one" })).texts,
            vec!["one".to_string()]
        );
    }
}
