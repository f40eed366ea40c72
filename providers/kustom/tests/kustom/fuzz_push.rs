//! Fuzzing what unauthenticated callers send the Kustom adapter: the push's query
//! (`?kustom_order_id=…`, arbitrary and structure-aware) and the validation callback's
//! body (arbitrary bytes, and Kustom orders with random, missing, extra and wrongly typed
//! fields). No input panics; a push is acted on only for the paid order a session holds
//! (and then only within the read limit); the validation answers 200, 303 or 400, never
//! an error of the gateway's own. Sizes are bounded; `PSP_FUZZ_CASES` runs more cases.

use crate::common;

use std::time::SystemTime;

use axum::http::HeaderMap;
use common::{cart, item, world, World};
use kustom::fake::{CompleteOptions, CompleteOutcome};
use kustom::VALIDATE_PATH;
use proptest::prelude::*;
use psp_core::{EventKind, Provider, WebhookDelivery, WebhookError};
use serde_json::{json, Value};
use testkit::fuzz;
use tokio::runtime::Runtime;

/// One world for all cases: a paid order (whose session the store holds) and an unpaid
/// one, with the push reads per order raised so the limit does not hide a wrong verdict.
struct Fixture {
    runtime: Runtime,
    world: World,
    paid: String,
    unpaid: String,
    order: Value,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (world, paid, unpaid, order) = runtime.block_on(async {
            let w = world(json!({
                "push_reads_per_window": 1_000_000,
                "push_reads_per_order": 1_000_000,
            }))
            .await;
            let (_, paid) = w
                .cart_and_checkout(cart("SEK", vec![item("MUG", 2, "149.00", "0", "25")], None))
                .await;
            let outcome = w
                .fake
                .complete(
                    &paid.psp_ref,
                    CompleteOptions {
                        skip_validation: true,
                        skip_push: true,
                        ..CompleteOptions::default()
                    },
                )
                .await
                .unwrap();
            assert!(
                matches!(outcome, CompleteOutcome::Completed { .. }),
                "{outcome:?}"
            );
            let (_, unpaid) = w
                .cart_and_checkout(cart("SEK", vec![item("BOOK", 1, "189.00", "0", "6")], None))
                .await;
            let order = Value::Object(w.fake.order(&unpaid.psp_ref).unwrap().checkout);
            (w, paid.psp_ref, unpaid.psp_ref, order)
        });
        Fixture {
            runtime,
            world,
            paid,
            unpaid,
            order,
        }
    })
}

fn push(f: &Fixture, query: Option<&str>) -> Result<EventKind, WebhookError> {
    let headers = HeaderMap::new();
    let delivery = WebhookDelivery {
        headers: &headers,
        body: b"",
        query,
        now: SystemTime::now(),
    };
    f.runtime
        .block_on(f.world.provider.verify_webhook(&delivery))
        .map(|e| e.kind().clone())
}

/// The order id a query names, as a form-encoded query is read (the first one counts).
fn named(query: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == "kustom_order_id")
        .map(|(_, v)| v)
}

/// A push query: the order id of a real order, a made-up one, or junk, percent-encoded
/// or not, among other parameters and separators.
fn query() -> impl Strategy<Value = String> {
    let f = fixture();
    let id = prop_oneof![
        Just(f.paid.clone()),
        Just(f.unpaid.clone()),
        "[0-9a-f-]{0,40}",
        fuzz::short_text(),
        Just("../../ordermanagement/v1/orders".to_string()),
        Just("{checkout.order.id}".to_string()),
    ];
    let encode = any::<bool>();
    let param = prop_oneof![
        "[a-z_]{0,10}=[ -~]{0,10}",
        Just("kustom_order_id".to_string()),
        Just("&".to_string()),
        Just("=".to_string()),
        Just("%zz".to_string()),
    ];
    (
        id,
        encode,
        proptest::collection::vec(param.clone(), 0..3),
        proptest::collection::vec(param, 0..3),
    )
        .prop_map(|(id, encode, before, after)| {
            let id = if encode {
                serde_urlencoded::to_string([("x", id.as_str())]).unwrap()[2..].to_string()
            } else {
                id
            };
            let mut parts = before;
            parts.push(format!("kustom_order_id={id}"));
            parts.extend(after);
            parts.join("&")
        })
}

fn validate(f: &Fixture, body: Vec<u8>) -> u16 {
    f.runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        client
            .post(format!("{}{VALIDATE_PATH}", f.world.gateway_url))
            .body(body)
            .send()
            .await
            .expect("the validation answers")
            .status()
            .as_u16()
    })
}

proptest! {
    #![proptest_config(fuzz::config())]

    #[test]
    fn a_push_is_acted_on_only_for_the_paid_order_a_session_holds(
        query in prop_oneof![query(), "[ -~]{0,120}", fuzz::short_text()],
    ) {
        let f = fixture();
        let result = push(f, Some(&query));
        let id = named(&query);
        match result {
            Ok(EventKind::Authorized { psp_ref }) => {
                prop_assert_eq!(Some(&psp_ref), id.as_ref());
                prop_assert_eq!(&psp_ref, &f.paid);
            }
            Ok(other) => prop_assert!(false, "{:?} gave {:?}", query, other),
            Err(WebhookError::Malformed(m)) => {
                prop_assert!(id.as_deref() != Some(f.paid.as_str()), "{:?}: {}", query, m);
            }
            Err(other) => prop_assert!(false, "{:?} gave {:?}", query, other),
        }
    }

    #[test]
    fn the_validation_answers_any_bytes_with_200_303_or_400(body in fuzz::bytes(2048)) {
        let status = validate(fixture(), body);
        prop_assert!(matches!(status, 200 | 303 | 400), "{}", status);
    }

    #[test]
    fn the_validation_answers_odd_orders_with_200_or_a_denial(
        mutations in fuzz::mutations(5),
    ) {
        let f = fixture();
        let order = fuzz::apply(f.order.clone(), &mutations);
        let status = validate(f, serde_json::to_vec(&order).unwrap());
        prop_assert!(matches!(status, 200 | 303), "{}: {}", order, status);
    }
}

#[test]
fn a_push_without_a_query_is_malformed() {
    let f = fixture();
    assert!(matches!(push(f, None), Err(WebhookError::Malformed(_))));
}
