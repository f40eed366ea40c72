//! Strict parsing of Stripe's form-encoded parameters with bracket nesting
//! (`metadata[cart_id]=…`, `enabled_events[]=…`), and typed accessors that answer the way
//! Stripe does: an unknown parameter, a non-integer amount or an unknown enum value is a
//! 400 naming the parameter.
//!
//! Every handler takes the parameters it knows and then calls [`Params::finish`], which
//! refuses whatever is left: that is how an unknown parameter is found, at any depth.

use std::collections::BTreeMap;

use super::error::ApiError;

/// How deep brackets may nest (`a[b][c][d]`).
const MAX_DEPTH: usize = 5;

/// One parsed parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Value(String),
    Map(BTreeMap<String, Node>),
    List(Vec<Node>),
}

enum Segment {
    Key(String),
    Push,
}

fn malformed(key: &str) -> ApiError {
    ApiError::invalid(format!("Invalid parameter name: {key}")).param(key)
}

/// `a[b][]` → `("a", [Key(b), Push])`.
fn split_key(key: &str) -> Result<(String, Vec<Segment>), ApiError> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() || head.contains(']') {
        return Err(malformed(key));
    }
    let mut segments = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or_else(|| malformed(key))?;
        let close = inner.find(']').ok_or_else(|| malformed(key))?;
        let name = &inner[..close];
        if name.contains('[') {
            return Err(malformed(key));
        }
        segments.push(if name.is_empty() {
            Segment::Push
        } else {
            Segment::Key(name.to_string())
        });
        rest = &inner[close + 1..];
    }
    if segments.len() > MAX_DEPTH {
        return Err(malformed(key));
    }
    Ok((head.to_string(), segments))
}

fn insert(
    slot: &mut Option<Node>,
    full: &str,
    segments: &[Segment],
    value: String,
) -> Result<(), ApiError> {
    let Some((first, rest)) = segments.split_first() else {
        // A repeated scalar keeps the last value, as Rack does.
        match slot {
            None | Some(Node::Value(_)) => *slot = Some(Node::Value(value)),
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "Invalid value for {full}: it is given both as an object and as a value"
                ))
                .param(full))
            }
        }
        return Ok(());
    };
    match first {
        Segment::Key(k) => {
            let map = match slot {
                None => {
                    *slot = Some(Node::Map(BTreeMap::new()));
                    match slot {
                        Some(Node::Map(m)) => m,
                        _ => unreachable!("just set"),
                    }
                }
                Some(Node::Map(m)) => m,
                // `metadata=` (empty: unset) followed by `metadata[k]=v`: the object wins.
                Some(Node::Value(v)) if v.is_empty() => {
                    *slot = Some(Node::Map(BTreeMap::new()));
                    match slot {
                        Some(Node::Map(m)) => m,
                        _ => unreachable!("just set"),
                    }
                }
                Some(_) => {
                    return Err(ApiError::invalid(format!("Invalid hash: {full}")).param(full))
                }
            };
            let mut child = map.remove(k);
            let result = insert(&mut child, full, rest, value);
            if let Some(child) = child {
                map.insert(k.clone(), child);
            }
            result
        }
        Segment::Push => {
            if !rest.is_empty() {
                return Err(malformed(full));
            }
            match slot {
                None => *slot = Some(Node::List(vec![Node::Value(value)])),
                Some(Node::List(items)) => items.push(Node::Value(value)),
                Some(_) => {
                    return Err(ApiError::invalid(format!("Invalid array: {full}")).param(full))
                }
            }
            Ok(())
        }
    }
}

/// Parses decoded `key=value` pairs (query string first, then body) into a tree.
pub(crate) fn parse(pairs: Vec<(String, String)>) -> Result<BTreeMap<String, Node>, ApiError> {
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for (key, value) in pairs {
        let (head, segments) = split_key(&key)?;
        let mut slot = root.remove(&head);
        let result = insert(&mut slot, &key, &segments, value);
        if let Some(node) = slot {
            root.insert(head, node);
        }
        result?;
    }
    Ok(root)
}

/// Parameters being taken by a handler.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    prefix: Option<String>,
    map: BTreeMap<String, Node>,
}

/// Whether `s` is an integer as Stripe writes it: an optional minus and digits only.
fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl Params {
    pub(crate) fn new(map: BTreeMap<String, Node>) -> Self {
        Self { prefix: None, map }
    }

    /// A canonical rendering, for comparing the parameters of two requests: the order in
    /// which parameters were sent does not matter, their values do.
    pub(crate) fn canonical(&self) -> String {
        format!("{:?}", self.map)
    }

    /// The name Stripe uses for a parameter in errors, e.g. `metadata[cart_id]`.
    pub(crate) fn name(&self, key: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}[{key}]"),
            None => key.to_string(),
        }
    }

    /// Whether the parameter was given at all.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A string parameter.
    pub(crate) fn string(&mut self, key: &str) -> Result<Option<String>, ApiError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Node::Value(v)) => Ok(Some(v)),
            Some(_) => {
                let name = self.name(key);
                Err(
                    ApiError::invalid(format!("Invalid string: {name} must be a string"))
                        .param(name),
                )
            }
        }
    }

    pub(crate) fn required_string(&mut self, key: &str) -> Result<String, ApiError> {
        match self.string(key)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::missing_parameter(&self.name(key))),
        }
    }

    /// An integer parameter: `1.5`, `1e3`, ` 12` and `+12` are refused as Stripe does.
    pub(crate) fn integer(&mut self, key: &str) -> Result<Option<i64>, ApiError> {
        let name = self.name(key);
        match self.string(key)? {
            None => Ok(None),
            Some(v) if is_integer(&v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::invalid_integer(&name, &v)),
            Some(v) => Err(ApiError::invalid_integer(&name, &v)),
        }
    }

    pub(crate) fn required_integer(&mut self, key: &str) -> Result<i64, ApiError> {
        self.integer(key)?
            .ok_or_else(|| ApiError::missing_parameter(&self.name(key)))
    }

    /// A boolean parameter: `true` or `false` only.
    pub(crate) fn boolean(&mut self, key: &str) -> Result<Option<bool>, ApiError> {
        let name = self.name(key);
        match self.string(key)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid(format!("Invalid boolean: {other}")).param(name)),
        }
    }

    /// One of a fixed set of values.
    pub(crate) fn enumeration(
        &mut self,
        key: &str,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, ApiError> {
        let name = self.name(key);
        match self.string(key)? {
            None => Ok(None),
            Some(v) => allowed
                .iter()
                .copied()
                .find(|a| *a == v)
                .map(Some)
                .ok_or_else(|| {
                    let list = match allowed {
                        [] => String::new(),
                        [one] => one.to_string(),
                        [init @ .., last] => format!("{}, or {last}", init.join(", ")),
                    };
                    ApiError::invalid(format!("Invalid {name}: must be one of {list}")).param(name)
                }),
        }
    }

    /// A nested object. `key=` (empty) gives an empty object, which is how Stripe unsets one.
    pub(crate) fn hash(&mut self, key: &str) -> Result<Option<Params>, ApiError> {
        let name = self.name(key);
        match self.map.remove(key) {
            None => Ok(None),
            Some(Node::Map(map)) => Ok(Some(Params {
                prefix: Some(name),
                map,
            })),
            Some(Node::Value(v)) if v.is_empty() => Ok(Some(Params {
                prefix: Some(name),
                map: BTreeMap::new(),
            })),
            Some(_) => Err(
                ApiError::invalid(format!("Invalid object: {name} must be an object")).param(name),
            ),
        }
    }

    /// A list of strings, as `key[]=a&key[]=b` or `key[0]=a&key[1]=b`.
    pub(crate) fn list(&mut self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        let name = self.name(key);
        let invalid = || {
            ApiError::invalid(format!("Invalid array: {name} must be a list")).param(name.clone())
        };
        let items: Vec<Node> = match self.map.remove(key) {
            None => return Ok(None),
            Some(Node::List(items)) => items,
            Some(Node::Value(v)) if v.is_empty() => Vec::new(),
            Some(Node::Map(map)) => {
                let mut indexed = Vec::new();
                for (k, v) in map {
                    let i: usize = k.parse().map_err(|_| invalid())?;
                    indexed.push((i, v));
                }
                indexed.sort_by_key(|(i, _)| *i);
                indexed.into_iter().map(|(_, v)| v).collect()
            }
            Some(Node::Value(_)) => return Err(invalid()),
        };
        items
            .into_iter()
            .map(|n| match n {
                Node::Value(v) => Ok(v),
                _ => Err(invalid()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// `metadata`: at most 50 keys of at most 40 characters, values of at most 500. An empty
    /// value unsets the key (`Some(None)` in the map).
    pub(crate) fn metadata(
        &mut self,
    ) -> Result<Option<BTreeMap<String, Option<String>>>, ApiError> {
        let Some(mut hash) = self.hash("metadata")? else {
            return Ok(None);
        };
        let keys: Vec<String> = hash.map.keys().cloned().collect();
        if keys.len() > 50 {
            return Err(
                ApiError::invalid("Invalid metadata: metadata can have at most 50 keys")
                    .param("metadata"),
            );
        }
        let mut out = BTreeMap::new();
        for key in keys {
            let name = hash.name(&key);
            if key.chars().count() > 40 {
                return Err(ApiError::invalid(format!(
                    "Invalid metadata key {key:?}: keys can be at most 40 characters long"
                ))
                .param(name));
            }
            let value = hash.string(&key)?.unwrap_or_default();
            if value.chars().count() > 500 {
                return Err(ApiError::invalid(format!(
                    "Invalid {name}: metadata values can be at most 500 characters long"
                ))
                .param(name));
            }
            out.insert(key, (!value.is_empty()).then_some(value));
        }
        Ok(Some(out))
    }

    /// `expand[]`: accepted (Stripe knows it on every endpoint), not acted on.
    pub(crate) fn expand(&mut self) -> Result<(), ApiError> {
        self.list("expand").map(|_| ())
    }

    /// Refuses whatever the handler did not take: an unknown parameter.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self.map.into_iter().next() {
            None => Ok(()),
            Some((key, node)) => {
                let base = match &self.prefix {
                    Some(p) => format!("{p}[{key}]"),
                    None => key,
                };
                // Name the first unknown leaf, as Stripe does (`automatic_payment_methods[x]`).
                let mut name = base;
                let mut node = node;
                while let Node::Map(map) = node {
                    match map.into_iter().next() {
                        Some((k, child)) => {
                            name = format!("{name}[{k}]");
                            node = child;
                        }
                        None => break,
                    }
                }
                Err(ApiError::unknown_parameter(&name))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(body: &str) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap();
        parse(pairs).map(Params::new)
    }

    #[test]
    fn brackets_nest_whether_percent_encoded_or_not() {
        let a = params("metadata[cart_id]=c&automatic_payment_methods[enabled]=true").unwrap();
        let b =
            params("metadata%5Bcart_id%5D=c&automatic_payment_methods%5Benabled%5D=true").unwrap();
        assert_eq!(a.canonical(), b.canonical());
        let mut a = a;
        let mut apm = a.hash("automatic_payment_methods").unwrap().unwrap();
        assert_eq!(apm.boolean("enabled").unwrap(), Some(true));
        apm.finish().unwrap();
        let meta = a.metadata().unwrap().unwrap();
        assert_eq!(meta["cart_id"].as_deref(), Some("c"));
        a.finish().unwrap();
    }

    #[test]
    fn lists_come_as_pushes_or_indexes() {
        let mut p = params("e[]=a&e[]=b&f[1]=y&f[0]=x").unwrap();
        assert_eq!(p.list("e").unwrap().unwrap(), ["a", "b"]);
        assert_eq!(p.list("f").unwrap().unwrap(), ["x", "y"]);
        p.finish().unwrap();
    }

    #[test]
    fn unknown_parameters_are_named_down_to_the_leaf() {
        let mut p = params(
            "amount=1&automatic_payment_methods[enabled]=true&automatic_payment_methods[bogus]=1",
        )
        .unwrap();
        p.integer("amount").unwrap();
        let mut apm = p.hash("automatic_payment_methods").unwrap().unwrap();
        apm.boolean("enabled").unwrap();
        let err = apm.finish().unwrap_err();
        assert_eq!(
            err.param.as_deref(),
            Some("automatic_payment_methods[bogus]")
        );
        assert_eq!(err.code, Some("parameter_unknown"));
        let err = params("x[y][z]=1").unwrap().finish().unwrap_err();
        assert_eq!(err.message, "Received unknown parameter: x[y][z]");
    }

    #[test]
    fn integers_are_digits_only() {
        for good in ["0", "12345", "-5"] {
            assert!(
                params(&format!("a={good}")).unwrap().integer("a").is_ok(),
                "{good}"
            );
        }
        for bad in [
            "12.5",
            "1e3",
            "+5",
            " 5",
            "5 ",
            "",
            "0x10",
            "99999999999999999999",
        ] {
            let body = format!("a={}", bad.replace(' ', "%20").replace('+', "%2B"));
            let err = params(&body).unwrap().integer("a").unwrap_err();
            assert_eq!(err.code, Some("parameter_invalid_integer"), "{bad}");
        }
    }

    #[test]
    fn a_value_and_an_object_under_one_name_conflict() {
        assert!(params("a=1&a[b]=2").is_err());
        assert!(params("a[b]=2&a=1").is_err());
        assert!(params("a[]=1&a[b]=2").is_err());
        assert!(params("a]=1").is_err());
        assert!(params("[a]=1").is_err());
        assert!(params("a[b=1").is_err());
    }
}
