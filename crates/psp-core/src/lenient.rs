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

/// Text from any JSON value as [`text`] reads it, with no text as the empty string.
pub fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(text(deserializer)?.unwrap_or_default())
}

/// A map of texts from any JSON value: an object's entries whose values have a text (as
/// [`text`] reads it), anything else as an empty map.
pub fn text_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| Some((k, text_of(v)?)))
            .collect(),
        _ => std::collections::BTreeMap::new(),
    })
}

/// A list of texts from any JSON value: the texts of a list's items (items without one
/// are left out), a single text as a list of one, anything else as an empty list.
pub fn texts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Array(items) => items.into_iter().filter_map(text_of).collect(),
        other => text_of(other).into_iter().collect(),
    })
}

/// A non-negative integer from any JSON value: a number, or a string of digits (some
/// servers quote numbers), otherwise `None`.
pub fn unsigned<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
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
        #[serde(default, deserialize_with = "super::unsigned")]
        n: Option<u64>,
        #[serde(default, deserialize_with = "super::string")]
        s: String,
        #[serde(default, deserialize_with = "super::text_map")]
        map: std::collections::BTreeMap<String, String>,
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
            read(json!({ "text": odd, "texts": odd, "id": odd, "n": odd, "s": odd, "map": odd }));
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
        assert_eq!(read(json!({ "n": 3600 })).n, Some(3600));
        assert_eq!(read(json!({ "n": " 3600" })).n, Some(3600));
        assert_eq!(read(json!({ "n": -1 })).n, None);
        assert_eq!(read(json!({ "n": 1.5 })).n, None);
        assert_eq!(read(json!({ "s": null })).s, "");
        let map = read(json!({ "map": { "a": "x", "b": 2, "c": null, "d": [] } })).map;
        assert_eq!(map.len(), 2);
        assert_eq!((map["a"].as_str(), map["b"].as_str()), ("x", "2"));
        assert_eq!(
            read(json!({ "texts": "one" })).texts,
            vec!["one".to_string()]
        );
    }
}
