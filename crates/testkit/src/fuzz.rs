//! Property-based fuzzing helpers shared by the fuzz tests of every crate.
//!
//! The fuzz tests run in the normal suite at a modest number of cases; setting
//! [`CASES_VAR`] runs them longer (`PSP_FUZZ_CASES=100000 cargo test fuzz`). Every
//! generator here bounds its sizes (bytes, string lengths, JSON depth and breadth), so a
//! case never needs more than a small, fixed amount of work: the time a run takes grows
//! with the number of cases only.
//!
//! Structure-aware generation starts from a valid-looking message and applies a few
//! [`Mutation`]s to it: a field removed, a field's value replaced by a value of any JSON
//! type, an extra field added, at the top level or inside any nested object.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

/// The environment variable that sets the number of cases of every fuzz test.
pub const CASES_VAR: &str = "PSP_FUZZ_CASES";

/// The number of cases when [`CASES_VAR`] is not set: enough to catch the obvious in the
/// normal suite, few enough to keep it quick.
pub const DEFAULT_CASES: u32 = 128;

/// The proptest configuration of a fuzz test: [`CASES_VAR`] cases (default
/// [`DEFAULT_CASES`]), and no regression files written into the source tree (a failure
/// prints its minimal input, which belongs in a named test).
pub fn config() -> Config {
    let cases = std::env::var(CASES_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        failure_persistence: None,
        ..Config::with_cases(cases)
    }
}

/// Arbitrary bytes, at most `max` of them.
pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

/// A short arbitrary string (any Unicode, at most 24 characters).
pub fn short_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..24).prop_map(|c| c.into_iter().collect())
}

/// A JSON number as text, chosen to probe exact decimal handling: integers, decimals with
/// up to nine places, negatives, huge values, exponents, zero in several spellings.
pub fn number() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (any::<i32>(), 0u32..1_000_000_000, 0usize..10).prop_map(|(i, f, places)| {
            let f = format!("{f:09}");
            format!("{i}.{}", &f[..places.max(1)])
        }),
        Just("0.0".to_string()),
        Just("-0".to_string()),
        Just("1e400".to_string()),
        Just("-1E-400".to_string()),
        Just("12345678901234567890123456789012345678901234567890".to_string()),
        (1u32..100, -30i32..30).prop_map(|(m, e)| format!("{m}e{e}")),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
    ];
    text.prop_map(|t| serde_json::from_str(&t).unwrap_or(Value::Null))
}

/// Any JSON value: scalars of every type, lists and objects nested at most three deep,
/// at most four entries each.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        short_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((short_text(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One change to a JSON message.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Removes a field of the object chosen by `at`.
    Remove {
        /// Picks the object (among all objects of the message) and the field.
        at: usize,
    },
    /// Replaces the value of a field of the object chosen by `at`.
    Replace {
        /// Picks the object and the field.
        at: usize,
        /// The new value, of any type.
        value: Value,
    },
    /// Adds a field to the object chosen by `at`.
    Add {
        /// Picks the object.
        at: usize,
        /// The field's name.
        key: String,
        /// Its value.
        value: Value,
    },
}

/// A mutation, with a bias towards wrong types in existing fields.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<usize>().prop_map(|at| Mutation::Remove { at }),
        2 => (any::<usize>(), json()).prop_map(|(at, value)| Mutation::Replace { at, value }),
        1 => (any::<usize>(), short_text(), json())
            .prop_map(|(at, key, value)| Mutation::Add { at, key, value }),
    ]
}

/// At most `max` mutations.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 0..=max)
}

/// The JSON pointers of every object in `value` (the root first), in document order.
fn object_paths(value: &Value, here: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            out.push(here.clone());
            for (k, v) in map {
                let k = k.replace('~', "~0").replace('/', "~1");
                object_paths(v, format!("{here}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                object_paths(v, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Applies `mutations` to `message`, in order. A mutation that finds nothing to act on
/// (no object left, an empty object) changes nothing.
pub fn apply(mut message: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        let mut paths = Vec::new();
        object_paths(&message, String::new(), &mut paths);
        let at = match m {
            Mutation::Remove { at } | Mutation::Replace { at, .. } | Mutation::Add { at, .. } => {
                *at
            }
        };
        let Some(path) = paths.get(at % paths.len().max(1)) else {
            continue;
        };
        let Some(Value::Object(map)) = message.pointer_mut(path) else {
            continue;
        };
        // The field is picked with the bits above those that picked the object.
        let field = (at / paths.len().max(1)) % map.len().max(1);
        let key = map.keys().nth(field).cloned();
        match (m, key) {
            (Mutation::Remove { .. }, Some(key)) => {
                map.remove(&key);
            }
            (Mutation::Replace { value, .. }, Some(key)) => {
                map.insert(key, value.clone());
            }
            (Mutation::Add { key, value, .. }, _) => {
                map.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    message
}

/// `message` with up to `max` mutations applied: a valid-looking message with random,
/// missing, extra and wrongly typed fields.
pub fn mutated(message: Value, max: usize) -> impl Strategy<Value = Value> {
    mutations(max).prop_map(move |ms| apply(message.clone(), &ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mutations_reach_nested_objects_and_change_only_what_they_name() {
        let base = json!({ "a": 1, "b": { "c": 2, "d": [{ "e": 3 }] } });
        // Three objects: the root, /b and /b/d/0.
        let removed = apply(base.clone(), &[Mutation::Remove { at: 2 }]);
        assert_eq!(removed, json!({ "a": 1, "b": { "c": 2, "d": [{}] } }));
        let replaced = apply(
            base.clone(),
            &[Mutation::Replace {
                at: 1 + 3,
                value: json!("x"),
            }],
        );
        assert_eq!(replaced, json!({ "a": 1, "b": { "c": 2, "d": "x" } }));
        let added = apply(
            base.clone(),
            &[Mutation::Add {
                at: 0,
                key: "z".into(),
                value: json!(null),
            }],
        );
        assert_eq!(added["z"], Value::Null);
        assert_eq!(apply(json!(5), &[Mutation::Remove { at: 9 }]), json!(5));
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn generated_json_is_bounded(v in json()) {
            fn size(v: &Value) -> usize {
                match v {
                    Value::Array(a) => 1 + a.iter().map(size).sum::<usize>(),
                    Value::Object(o) => 1 + o.values().map(size).sum::<usize>(),
                    _ => 1,
                }
            }
            prop_assert!(size(&v) <= 200, "{}", v);
        }
    }
}
