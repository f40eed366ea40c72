//! Property-based fuzzing of the configuration loader (nightly Rust, and with it
//! cargo-fuzz, is not available): arbitrary bytes and generated TOML documents and
//! environments, with random values at the secret keys, never make the loader panic, each
//! load finishes in bounded time, and no error (the loader's, or a provider's refusing its
//! table) contains a generated secret.
//!
//! The suite runs 128 cases per property; `PSP_FUZZ_CASES=100000 cargo test -p gateway
//! --test config_fuzz` runs longer (`docs/operations.md`).

use std::time::{Duration, Instant};

use gateway::config::Config;
use proptest::prelude::*;

/// The longest one load (parse, validate, build the providers) may take, generous for a
/// debug build on a busy machine; a real load takes well under a millisecond.
const BOUND: Duration = Duration::from_secs(2);

fn cases() -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("PSP_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(128),
    )
}

/// A secret as it is generated: its text, and the texts it must never show up as (an
/// all-digit secret read as a number loses its leading zeros).
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    let trimmed = secret.trim_start_matches('0');
    if trimmed.len() >= 8 && trimmed != secret {
        forms.push(trimmed.to_string());
    }
    forms
}

/// Secrets long and random enough never to occur in a message by chance: letters and
/// digits; all digits with leading zeros (the case figment's own reader mangled); and all
/// digits that TOML reads as an integer when written bare (the value serde's "invalid
/// type" message would quote).
fn secret() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9]{14,24}".prop_map(|s| format!("Zq{s}")),
        "[0-9]{10,16}".prop_map(|s| format!("00{s}")),
        "[1-9][0-9]{9,16}",
    ]
}

/// Loads and, when the configuration is accepted, builds its providers as `serve` and
/// `check-config` do. Returns the error text, if any, and how long it took.
fn run(file: Option<&[u8]>, env: Vec<(String, String)>) -> (Option<String>, Duration) {
    let started = Instant::now();
    let result = Config::from_sources(file.map(|b| ("fuzz.toml", b)), env).and_then(|c| {
        c.build_registry(
            &c.providers,
            "http://127.0.0.1:1",
            &testkit::mem::services(),
        )
        .map(|_| ())
        .map_err(|e| gateway::config::ConfigError::Invalid(e.to_string()))
    });
    (result.err().map(|e| e.to_string()), started.elapsed())
}

fn assert_hidden(error: &Option<String>, secrets: &[String]) -> Result<(), TestCaseError> {
    if let Some(error) = error {
        for secret in secrets {
            for form in forms(secret) {
                prop_assert!(
                    !error.contains(&form),
                    "the error shows a secret ({form}): {error}"
                );
            }
        }
    }
    Ok(())
}

/// Keys whose values are secrets, by section.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("server", "admin_token"),
    ("store", "url"),
    ("hantera", "client_secret"),
    ("hantera", "hook_token"),
    ("providers.mock", "webhook_secret"),
    ("providers.mock", "webhook_secrets"),
    ("providers.mock", "api_key"),
    ("providers.stripe", "secret_key"),
    ("providers.stripe", "webhook_secrets"),
    ("providers.kustom", "api_key"),
    ("providers.kustom", "validation_callback_token"),
];

/// Other keys, by section (so that documents get past the first unknown key often).
const KEYS: &[(&str, &[&str])] = &[
    (
        "server",
        &[
            "listen",
            "public_url",
            "body_limit_bytes",
            "request_timeout_ms",
            "log_format",
        ],
    ),
    ("store", &[]),
    ("hantera", &["base_url", "client_id", "timeout_ms"]),
    (
        "worker",
        &[
            "enabled",
            "concurrency",
            "lease_secs",
            "poll_interval_ms",
            "max_attempts",
        ],
    ),
    ("sandbox", &["enabled", "latency_ms", "error_rate"]),
    (
        "providers.mock",
        &[
            "api_base",
            "payment_number_prefix",
            "timeout_ms",
            "allow_with_real_hantera",
        ],
    ),
    (
        "providers.stripe",
        &[
            "publishable_key",
            "api_base",
            "capture_method",
            "api_version",
            "timeout_ms",
        ],
    ),
    (
        "providers.kustom",
        &[
            "username",
            "api_base",
            "tax_rates",
            "validation",
            "push_window_ms",
        ],
    ),
];

/// How a secret is written into the TOML text: mostly valid TOML of every type (bare, an
/// all-digit secret is an integer), sometimes broken.
fn secret_toml(secret: String) -> impl Strategy<Value = String> {
    let s = secret;
    prop_oneof![
        3 => Just(format!("\"{s}\"")),
        1 => Just(format!("'{s}'")),
        3 => Just(s.clone()),
        2 => Just(format!("[\"{s}\", \"x\"]")),
        1 => Just(format!("[{s}]")),
        2 => Just(format!("{{ value = \"{s}\" }}")),
        1 => Just(format!("\"\"\"\n{s}\n\"\"\"")),
        1 => Just(format!("\"{s}")),
        1 => Just(format!("\"{s}\" trailing")),
    ]
}

/// A TOML value that is not a secret.
fn plain_toml() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        (-1e6f64..1e6).prop_map(|f| format!("{f:?}")),
        "[a-z0-9:/._-]{0,24}".prop_map(|s| format!("\"{s}\"")),
        Just("\"127.0.0.1:0\"".to_string()),
        Just("\"http://127.0.0.1:1/x\"".to_string()),
        Just("\"sqlite://fuzz.db\"".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z]{1,6}", inner), 0..3).prop_map(|kv| {
                let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
}

/// One `key = value` line of a section: a known key, a secret key, or a random one.
#[derive(Debug, Clone)]
struct Line {
    text: String,
    secret: Option<String>,
}

fn line(section: &'static str) -> impl Strategy<Value = Line> {
    let known: Vec<&'static str> = KEYS
        .iter()
        .find(|(s, _)| *s == section)
        .map(|(_, k)| k.to_vec())
        .unwrap_or_default();
    let secrets: Vec<&'static str> = SECRET_KEYS
        .iter()
        .filter(|(s, _)| *s == section)
        .map(|(_, k)| *k)
        .collect();
    let secret_line = if secrets.is_empty() {
        None
    } else {
        Some(
            (prop::sample::select(secrets), secret()).prop_flat_map(|(key, s)| {
                secret_toml(s.clone()).prop_map(move |value| Line {
                    text: format!("{key} = {value}"),
                    secret: Some(s.clone()),
                })
            }),
        )
    };
    let plain_key = if known.is_empty() {
        "[a-z_]{1,12}".boxed()
    } else {
        prop_oneof![
            4 => prop::sample::select(known).prop_map(str::to_string),
            1 => "[a-z_]{1,12}",
        ]
        .boxed()
    };
    let plain_line = (plain_key, plain_toml()).prop_map(|(k, v)| Line {
        text: format!("{k} = {v}"),
        secret: None,
    });
    match secret_line {
        Some(secret_line) => prop_oneof![secret_line, plain_line].boxed(),
        None => plain_line.boxed(),
    }
}

fn section() -> impl Strategy<Value = (String, Vec<Line>)> {
    let names: Vec<&'static str> = KEYS.iter().map(|(s, _)| *s).collect();
    prop::sample::select(names).prop_flat_map(|name| {
        prop::collection::vec(line(name), 0..6).prop_map(move |lines| (name.to_string(), lines))
    })
}

/// A whole document: sections, often with what makes the mode valid (`[hantera]` with
/// its required keys, or `[sandbox] enabled = true`), so that validation and the
/// providers are reached.
fn document() -> impl Strategy<Value = (String, Vec<String>)> {
    (0..3u8, prop::collection::vec(section(), 0..6)).prop_map(|(mode, sections)| {
        let mut tables: Vec<(String, Vec<Line>)> = Vec::new();
        for (name, lines) in sections {
            // A repeated table header is a syntax error; the byte properties fuzz that,
            // here it would hide everything else.
            if !tables.iter().any(|(n, _)| *n == name) {
                tables.push((name, lines));
            }
        }
        let required: &[(&str, &str)] = match mode {
            1 => &[("sandbox", "enabled = true")],
            2 => &[
                ("hantera", "base_url = \"http://127.0.0.1:1\""),
                ("hantera", "client_id = \"c\""),
                ("hantera", "client_secret = \"s\""),
            ],
            _ => &[],
        };
        for (section, text) in required {
            let key = text.split(" = ").next().unwrap_or_default();
            let table = match tables.iter().position(|(n, _)| n == section) {
                Some(i) => &mut tables[i].1,
                None => {
                    tables.push((section.to_string(), Vec::new()));
                    &mut tables.last_mut().expect("just pushed").1
                }
            };
            if !table
                .iter()
                .any(|l| l.text.split(" = ").next() == Some(key))
            {
                table.insert(
                    0,
                    Line {
                        text: text.to_string(),
                        secret: None,
                    },
                );
            }
        }
        let mut text = String::new();
        let mut secrets = Vec::new();
        for (name, lines) in tables {
            text.push_str(&format!("[{name}]\n"));
            let mut keys = std::collections::BTreeSet::new();
            for line in lines {
                let key = line
                    .text
                    .split(" = ")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if !keys.insert(key) {
                    continue;
                }
                text.push_str(&line.text);
                text.push('\n');
                secrets.extend(line.secret);
            }
        }
        (text, secrets)
    })
}

/// Environment variables: secret keys with secrets written raw, as lists or as tables,
/// other keys with plain text, and random names under the prefix.
fn environment() -> impl Strategy<Value = (Vec<(String, String)>, Vec<String>)> {
    let var_name = |section: &str, key: &str| {
        format!(
            "PSP_{}__{}",
            section.replace('.', "__").to_ascii_uppercase(),
            key.to_ascii_uppercase()
        )
    };
    let secret_vars: Vec<String> = SECRET_KEYS.iter().map(|(s, k)| var_name(s, k)).collect();
    let plain_vars: Vec<String> = KEYS
        .iter()
        .flat_map(|(s, keys)| keys.iter().map(move |k| var_name(s, k)))
        .collect();
    let secret_var = (prop::sample::select(secret_vars), secret()).prop_flat_map(|(name, s)| {
        prop_oneof![
            Just(s.clone()),
            Just(format!("[{s}]")),
            Just(format!("[\"{s}\", 1]")),
            Just(format!("{{v={s}}}")),
            Just(format!(" {s} ")),
        ]
        .prop_map(move |value| ((name.clone(), value), Some(s.clone())))
    });
    let plain_var = (
        prop_oneof![
            prop::sample::select(plain_vars),
            "PSP_[A-Z_]{1,20}",
            Just("PSP_SANDBOX__ENABLED".to_string()),
        ],
        "[ -~]{0,20}",
    )
        .prop_map(|(name, value)| ((name, value), None));
    prop::collection::vec(prop_oneof![secret_var, plain_var], 0..6).prop_map(|vars| {
        let mut env = Vec::new();
        let mut secrets = Vec::new();
        for (var, secret) in vars {
            env.push(var);
            secrets.extend(secret);
        }
        (env, secrets)
    })
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn arbitrary_bytes_never_panic_and_load_in_bounded_time(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let (_, took) = run(Some(&bytes), Vec::new());
        prop_assert!(took < BOUND, "took {took:?}");
    }

    #[test]
    fn arbitrary_bytes_around_a_secret_never_show_it(
        before in prop::collection::vec(any::<u8>(), 0..512),
        after in prop::collection::vec(any::<u8>(), 0..512),
        key in prop::sample::select(vec!["admin_token", "client_secret", "hook_token", "url", "webhook_secret"]),
        secret in secret(),
    ) {
        let mut bytes = before;
        bytes.extend_from_slice(format!("\n{key} = \"{secret}\"\n").as_bytes());
        bytes.extend_from_slice(&after);
        let (error, took) = run(Some(&bytes), Vec::new());
        prop_assert!(took < BOUND, "took {took:?}");
        assert_hidden(&error, &[secret])?;
    }

    #[test]
    fn generated_documents_and_environments_never_show_a_secret(
        (text, mut secrets) in document(),
        (env, env_secrets) in environment(),
        with_file in prop::bool::weighted(0.8),
    ) {
        secrets.extend(env_secrets);
        let file = with_file.then_some(text.as_bytes());
        let (error, took) = run(file, env);
        prop_assert!(took < BOUND, "took {took:?}");
        assert_hidden(&error, &secrets)?;
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn a_secret_of_any_type_at_any_secret_key_is_never_shown(
        mode in prop_oneof![
            Just("[sandbox]\nenabled = true\n"),
            Just("[hantera]\nbase_url = \"http://127.0.0.1:1\"\nclient_id = \"c\"\n"),
        ],
        (section, key) in prop::sample::select(SECRET_KEYS.to_vec()),
        value in secret().prop_flat_map(|s| secret_toml(s.clone()).prop_map(move |v| (s.clone(), v))),
    ) {
        let (secret, written) = value;
        let text = if section == "hantera" && mode.starts_with("[hantera]") {
            format!("{mode}{key} = {written}\n")
        } else {
            format!("{mode}[{section}]\n{key} = {written}\n")
        };
        let (error, took) = run(Some(text.as_bytes()), Vec::new());
        prop_assert!(took < BOUND, "took {took:?}");
        assert_hidden(&error, &[secret])?;
    }
}

#[test]
fn the_generators_reach_accepted_configurations_and_every_kind_of_error() {
    // A property that only ever meets one syntax error proves little: run the document
    // generator and check that it reaches valid configurations, type errors on secret
    // keys and syntax errors alike.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut ok, mut syntax, mut other) = (0, 0, 0);
    for _ in 0..400 {
        let (text, _) = document().new_tree(&mut runner).unwrap().current();
        match run(Some(text.as_bytes()), Vec::new()).0 {
            None => ok += 1,
            Some(e) if e.contains("not valid TOML") => syntax += 1,
            Some(_) => other += 1,
        }
    }
    assert!(
        ok > 0 && syntax > 0 && other > 0,
        "ok {ok}, syntax {syntax}, other {other}"
    );
}
