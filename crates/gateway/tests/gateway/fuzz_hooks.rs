//! Fuzzing the hook body parsers (`OnCartMutation`, `OnPaymentCapture`) through the
//! gateway's router, in process, with the real mock and Kustom adapters: arbitrary bytes,
//! and valid-looking hook bodies with random, missing, extra and wrongly typed fields.
//! Carts name a cart whose Kustom and mock sessions are open, so the adapters' sync
//! payloads (Kustom's order lines and tax rates) are computed from the fuzzed cart too.
//!
//! No input panics; every answer is a 200 with the documented body or a 400 in the
//! documented error shape, never a 5xx. Sizes are bounded, so each case is a small parse
//! and a few in-memory store calls; the worker does not run. `PSP_FUZZ_CASES` runs more.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use gateway::config::Config;
use gateway::edge::{router, AppState};
use http_body_util::BodyExt;
use proptest::prelude::*;
use psp_core::ports::Sessions;
use psp_core::{Currency, Money, Provider, Registry};
use serde_json::{json, Value};
use testkit::fuzz;
use testkit::mem::{MemHantera, MemStore};
use tokio::runtime::Runtime;
use tower::ServiceExt;
use uuid::Uuid;

const TOKEN: &str = "hook-token-0123456789abcdef";
/// The cart whose sessions are open.
const CART: Uuid = Uuid::from_u128(0x0199_a9b6_8608_7360_b98b_d2f9_adeb_2848);

struct Fixture {
    runtime: Runtime,
    state: AppState,
}

fn config() -> Config {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        r#"
[hantera]
base_url = "http://127.0.0.1:1"
client_id = "psp-gateway"
client_secret = "secret"
hook_token = "{TOKEN}"
"#
    )
    .unwrap();
    Config::load(Some(file.path())).unwrap()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = runtime.block_on(async {
            let store = Arc::new(MemStore::new());
            let hantera = Arc::new(MemHantera::new());
            let services = testkit::mem::services_of(hantera.clone(), store.clone());
            let mock = all::mock::MockProvider::from_config(
                &json!({ "webhook_secret": "whsec_fuzz", "api_base": "http://127.0.0.1:1" }),
                "http://gateway.test",
            )
            .unwrap();
            let kustom = all::kustom::KustomProvider::from_config(
                &json!({ "api_key": "kco_test_api_fuzz", "api_base": "http://127.0.0.1:1" }),
                "http://gateway.test",
                &services,
            )
            .unwrap();
            let registry = Registry::from_providers([
                Arc::new(mock) as Arc<dyn Provider>,
                Arc::new(kustom) as Arc<dyn Provider>,
            ]);
            let sek = Money::from_minor(10_000, Currency::from_code("SEK").unwrap());
            for (provider, psp_ref) in [("mock", "mpay_fuzz"), ("kustom", "ko-fuzz")] {
                store.reserve_session(CART, provider, "key").await.unwrap();
                store
                    .save_session(CART, provider, psp_ref, sek, &json!({}))
                    .await
                    .unwrap();
            }
            gateway::server::assemble(
                Arc::new(config()),
                "http://gateway.test",
                registry,
                store,
                hantera,
            )
        });
        Fixture { runtime, state }
    })
}

/// Posts `body` to the hook and returns the status and the JSON answer.
fn post(hook: &str, body: Vec<u8>) -> (u16, Value) {
    let f = fixture();
    f.runtime.block_on(async {
        let req = Request::post(format!("/hantera/hooks/{hook}"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::from(body))
            .unwrap();
        let resp = router(f.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
}

/// A 400 in the documented error shape.
fn is_documented_error(v: &Value) -> bool {
    let e = &v["errors"][0];
    e["code"]
        .as_str()
        .is_some_and(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'))
        && e["message"].as_str().is_some_and(|m| !m.is_empty())
}

/// An amount of `minor` units of a currency with `exponent` decimals, as a JSON number.
fn amount(minor: i64, exponent: u32) -> Value {
    let text = if exponent == 0 {
        minor.to_string()
    } else {
        let scale = 10i64.pow(exponent);
        let sign = if minor < 0 { "-" } else { "" };
        format!(
            "{sign}{}.{:0width$}",
            (minor / scale).abs(),
            (minor % scale).abs(),
            width = exponent as usize
        )
    };
    serde_json::from_str(&text).unwrap()
}

/// A rendered cart whose numbers add up (lines with discounts and taxes at common rates,
/// plus shipping), in one of several currencies, for the cart with open sessions or
/// another.
fn cart() -> impl Strategy<Value = Value> {
    let currency = prop_oneof![
        Just(("SEK", 2)),
        Just(("EUR", 2)),
        Just(("JPY", 0)),
        Just(("KWD", 3))
    ];
    let line = (
        1i64..5,
        0i64..200_000,
        0u32..101,
        prop_oneof![Just(0i64), Just(6), Just(12), Just(25)],
    );
    (
        currency,
        proptest::collection::vec(line, 0..4),
        0i64..10_000,
        any::<bool>(),
        prop_oneof![
            Just(json!("line-1")),
            Just(json!(Uuid::from_u128(7))),
            fuzz::json()
        ],
    )
        .prop_map(|((code, exp), lines, shipping, ours, item_id)| {
            let mut items = Vec::new();
            let (mut total, mut tax_total) = (shipping, shipping / 5);
            for (i, (qty, unit, discount_pct, rate)) in lines.into_iter().enumerate() {
                let gross = qty * unit;
                let discount = gross * i64::from(discount_pct) / 100;
                let line_total = gross - discount;
                let tax = line_total * rate / (100 + rate);
                total += line_total;
                tax_total += tax;
                items.push(json!({
                    "cartItemId": if i == 0 { item_id.clone() } else { json!(format!("line-{i}")) },
                    "productNumber": format!("P{i}"),
                    "description": format!("Product {i}"),
                    "quantity": qty,
                    "unitPrice": amount(unit, exp),
                    "total": amount(line_total, exp),
                    "tax": amount(tax, exp),
                    "discount": amount(discount, exp),
                }));
            }
            json!({
                "hook": "OnCartMutation",
                "cartId": if ours { CART } else { Uuid::from_u128(u128::from(total as u64)) },
                "cartNumber": "C-1",
                "cartState": "open",
                "currencyCode": code,
                "taxIncluded": true,
                "orderTotal": amount(total, exp),
                "orderTaxTotal": amount(tax_total, exp),
                "shippingTotal": amount(shipping, exp),
                "items": items,
                "fields": {},
                "locale": "sv-SE",
            })
        })
}

/// A capture hook for a payment of one of the enabled providers (or another app's).
fn capture() -> impl Strategy<Value = Value> {
    let provider = prop_oneof![
        Just(json!("mock")),
        Just(json!("kustom")),
        Just(json!("adyen")),
        fuzz::json()
    ];
    (provider, 1i64..1_000_000, "[a-z0-9-]{1,12}").prop_map(|(provider, minor, id)| {
        json!({
            "hook": "OnPaymentCapture",
            "payment": {
                "paymentId": Uuid::from_u128(u128::from(minor as u64)),
                "paymentNumber": "MOCK-1",
                "providerKey": provider,
                "externalReference": format!("mpay_{id}"),
                "currencyCode": "SEK",
                "authorizations": [{ "authorizationNumber": "a1", "amount": amount(minor, 2),
                                     "authorizationState": "successful" }],
                "captures": [],
            },
            "capture": {
                "paymentCaptureId": format!("cap-{id}"),
                "orderId": Uuid::from_u128(3),
                "amount": amount(minor, 2),
                "capturedAmount": 0,
                "remainingAmount": amount(minor, 2),
                "state": "pending",
                "createdAt": "2025-01-01T00:00:00Z",
            },
        })
    })
}

proptest! {
    #![proptest_config(fuzz::config())]

    #[test]
    fn arbitrary_bytes_to_either_hook_get_a_documented_answer(
        body in fuzz::bytes(2048),
        capture in any::<bool>(),
    ) {
        let hook = if capture { "OnPaymentCapture" } else { "OnCartMutation" };
        let (status, v) = post(hook, body);
        prop_assert!(status == 400 && is_documented_error(&v), "{} {}", status, v);
    }

    #[test]
    fn odd_cart_mutations_are_accepted_or_refused_in_the_documented_shape(
        body in cart().prop_flat_map(|c| fuzz::mutated(c, 4)),
    ) {
        let (status, v) = post("OnCartMutation", serde_json::to_vec(&body).unwrap());
        match status {
            200 => prop_assert!(v["received"] == true && v["sessions"].is_array(), "{}", v),
            400 => prop_assert!(is_documented_error(&v), "{}", v),
            _ => prop_assert!(false, "{} answered {} {}", body, status, v),
        }
    }

    #[test]
    fn odd_capture_hooks_are_accepted_ignored_or_refused_in_the_documented_shape(
        body in capture().prop_flat_map(|c| fuzz::mutated(c, 4)),
    ) {
        let (status, v) = post("OnPaymentCapture", serde_json::to_vec(&body).unwrap());
        match status {
            200 => prop_assert!(v["accepted"] == true || v["ignored"] == true, "{}", v),
            400 => prop_assert!(is_documented_error(&v), "{}", v),
            _ => prop_assert!(false, "{} answered {} {}", body, status, v),
        }
    }
}

#[test]
fn a_consistent_cart_for_the_open_sessions_is_accepted_and_scheduled() {
    let body = json!({
        "hook": "OnCartMutation", "cartId": CART, "cartState": "open", "currencyCode": "SEK",
        "orderTotal": 125.00, "orderTaxTotal": 25.00,
        "items": [{ "cartItemId": "line-1", "productNumber": "MUG", "quantity": 1,
                    "unitPrice": 125.00, "total": 125.00, "tax": 25.00 }],
    });
    let (status, v) = post("OnCartMutation", serde_json::to_vec(&body).unwrap());
    assert_eq!(status, 200, "{v}");
    let outcomes: Vec<&str> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["outcome"].as_str())
        .collect();
    // Both adapters computed a sync payload from it (the fuzz cases running alongside on
    // the same sessions may have a sync waiting already, which this one joins).
    assert_eq!(outcomes.len(), 2, "{v}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(*o, "scheduled" | "coalesced" | "unchanged")),
        "{v}"
    );
}
