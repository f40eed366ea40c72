//! Kustom's push: repeated on Kustom's schedule until the order is acknowledged, only a
//! hint (the order is re-read with our credentials), and bounded in what it can cost.

use crate::common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{cart, eventually, item, world, world_with, World};
use kustom::fake::{CompleteOptions, CompleteOutcome};
use kustom::{KustomProvider, PushSchedule};
use psp_core::{CartState, EventKind, Provider, ProviderServices, WebhookDelivery, WebhookError};
use serde_json::json;
use testkit::mem::MemStore;

fn no_validation() -> CompleteOptions {
    CompleteOptions {
        skip_validation: true,
        ..CompleteOptions::default()
    }
}

async fn verify(provider: &KustomProvider, order_id: &str) -> Result<EventKind, WebhookError> {
    let headers = http::HeaderMap::new();
    let query = format!("kustom_order_id={order_id}");
    provider
        .verify_webhook(&WebhookDelivery {
            headers: &headers,
            body: b"{\"status\":\"AUTHORIZED\",\"forged\":true}",
            query: Some(&query),
            now: SystemTime::now(),
        })
        .await
        .map(|e| e.kind().clone())
}

/// A paid order of one SEK cart, with Kustom's pushes on the world's schedule.
async fn paid(w: &World) -> (uuid::Uuid, String) {
    paid_with(w, no_validation()).await
}

async fn paid_with(w: &World, options: CompleteOptions) -> (uuid::Uuid, String) {
    let (c, session) = w
        .cart_and_checkout(cart("SEK", vec![item("MUG", 2, "149.00", "0", "25")], None))
        .await;
    let outcome = w.fake.complete(&session.psp_ref, options).await.unwrap();
    assert!(
        matches!(outcome, CompleteOutcome::Completed { .. }),
        "{outcome:?}"
    );
    (c.cart_id, session.psp_ref)
}

#[tokio::test]
async fn an_unacknowledged_push_is_repeated_on_kustoms_schedule_until_a_push_is_acknowledged() {
    // Kustom's schedule with a minute made 10 ms: 20 ms, then +50, +150, +300, +600 ms.
    let schedule = PushSchedule::compressed(6_000);
    let w = world_with(json!({}), schedule.clone()).await;
    // The gateway is down for the first three pushes.
    w.pushes.ignore_first.store(3, Ordering::SeqCst);
    let (cart_id, order_id) = paid(&w).await;

    let order = eventually("the pushes to stop", Duration::from_secs(20), || async {
        w.fake.order(&order_id).filter(|o| o.pushes_finished)
    })
    .await;
    let statuses: Vec<Option<u16>> = order.pushes.iter().map(|p| p.status).collect();
    assert_eq!(
        statuses,
        vec![Some(503), Some(503), Some(503), Some(200)],
        "three refused pushes, then the one that completed and acknowledged"
    );
    for (push, due) in order.pushes.iter().zip(schedule.offsets()) {
        assert!(
            push.at_ms >= due.as_millis() as u64,
            "push sent at {} ms, before its time {due:?}",
            push.at_ms
        );
    }
    assert!(!order.pushes_gave_up);
    let om = order.om.unwrap();
    assert!(om.acknowledged);
    assert_eq!(om.acknowledge_calls, 1);
    assert_eq!(w.hantera.cart_state(cart_id), Some(CartState::Completed));
    assert_eq!(
        w.hantera.payments().len(),
        1,
        "the push alone completed the cart"
    );
    assert_eq!(w.hantera.payments()[0].external_reference, order_id);
    assert_eq!(w.hantera.payments()[0].provider_key, "kustom");
}

#[tokio::test]
async fn acknowledging_twice_is_harmless_and_a_push_for_a_completed_cart_only_acknowledges() {
    let w = world(json!({})).await;
    // Kustom's own pushes are held back so that the one below is the only one.
    let (cart_id, order_id) = paid_with(
        &w,
        CompleteOptions {
            skip_push: true,
            ..no_validation()
        },
    )
    .await;
    // The confirmation page: complete, then acknowledge (the gateway's order).
    w.completer
        .complete(w.provider.as_ref(), &order_id)
        .await
        .unwrap();
    w.provider.after_completion(&order_id).await.unwrap();
    w.provider.after_completion(&order_id).await.unwrap();
    let om = w.fake.order(&order_id).unwrap().om.unwrap();
    assert!(om.acknowledged);
    assert_eq!(om.acknowledge_calls, 2);

    // A push arriving afterwards finds the cart completed: one more acknowledgement, no
    // second payment.
    let calls_before = om.acknowledge_calls;
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/webhooks/kustom?kustom_order_id={order_id}",
            w.gateway_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let om = w.fake.order(&order_id).unwrap().om.unwrap();
    assert_eq!(om.acknowledge_calls, calls_before + 1);
    assert_eq!(w.hantera.payments().len(), 1);
    assert_eq!(w.hantera.cart_state(cart_id), Some(CartState::Completed));
}

#[tokio::test]
async fn kustom_gives_up_pushing_after_its_schedule_when_nobody_acknowledges() {
    let schedule = PushSchedule::compressed(600_000);
    let w = world_with(json!({}), schedule.clone()).await;
    w.pushes.ignore_first.store(usize::MAX, Ordering::SeqCst);
    let (_, order_id) = paid(&w).await;
    let order = eventually(
        "the schedule to run out",
        Duration::from_secs(20),
        || async { w.fake.order(&order_id).filter(|o| o.pushes_finished) },
    )
    .await;
    assert!(order.pushes_gave_up);
    assert_eq!(order.pushes.len(), schedule.offsets().len());
    assert_eq!(order.pushes.len(), 16, "Kustom's 48 hours hold 16 pushes");
}

#[tokio::test]
async fn a_push_says_what_kustom_says_not_what_its_body_claims() {
    let w = world(json!({})).await;
    let (c, session) = w
        .cart_and_checkout(cart("SEK", vec![item("MUG", 1, "149.00", "0", "25")], None))
        .await;
    let _ = c;
    // Not completed at Kustom: the body's "AUTHORIZED" is not believed.
    let err = verify(&w.provider, &session.psp_ref).await.unwrap_err();
    assert!(err.to_string().contains("not paid"), "{err}");
    w.fake
        .complete(
            &session.psp_ref,
            CompleteOptions {
                skip_validation: true,
                skip_push: true,
                fraud_status: Some("PENDING".into()),
            },
        )
        .await
        .unwrap();
    // Completed but the fraud check is pending: nothing to do yet.
    assert_eq!(
        verify(&w.provider, &session.psp_ref).await.unwrap(),
        EventKind::Other
    );
}

#[tokio::test]
async fn pushes_for_orders_this_gateway_never_made_cost_no_kustom_call() {
    let w = world(json!({})).await;
    for _ in 0..200 {
        let id = uuid::Uuid::new_v4().to_string();
        let err = verify(&w.provider, &id).await.unwrap_err();
        assert!(err.to_string().contains("no checkout session"), "{err}");
    }
    for bad in ["", "../../v1/admin", "x y"] {
        assert!(matches!(
            verify(&w.provider, bad).await,
            Err(WebhookError::Malformed(_))
        ));
    }
    assert_eq!(w.fake.order_reads(), 0);
    assert_eq!(w.hantera.payments().len(), 0);
}

#[tokio::test]
async fn an_adapter_whose_routes_were_never_asked_for_still_knows_its_own_orders() {
    let w = world(json!({})).await;
    // Built as the registry builds it, with the gateway's ports, and nothing else called.
    let fresh = KustomProvider::from_config(
        &json!({ "api_key": common::API_KEY, "api_base": w.fake_base }),
        &w.gateway_url,
        &w.services,
    )
    .unwrap();
    let (_, ours) = w
        .cart_and_checkout(cart("SEK", vec![item("MUG", 1, "149.00", "0", "25")], None))
        .await;
    let err = verify(&fresh, &uuid::Uuid::new_v4().to_string())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no checkout session"), "{err}");
    assert_eq!(
        w.fake.order_reads(),
        0,
        "a push for no session costs no read"
    );
    // A push for an order of its own is read back from Kustom (not paid yet).
    let err = verify(&fresh, &ours.psp_ref).await.unwrap_err();
    assert!(err.to_string().contains("not paid"), "{err}");
    assert_eq!(w.fake.order_reads(), 1);
}

#[tokio::test]
async fn a_flood_of_made_up_pushes_makes_at_most_the_allowed_reads_per_window() {
    let w = world(json!({})).await;
    // An adapter that cannot ask the store (so every push reaches the rate limit), five
    // reads a minute.
    let failing = Arc::new(MemStore::new());
    failing.fail_next(usize::MAX);
    let cannot_ask = ProviderServices {
        store: failing,
        ..w.services.clone()
    };
    let bare = KustomProvider::from_config(
        &json!({
            "api_key": common::API_KEY,
            "api_base": w.fake_base,
            "push_reads_per_window": 5,
            "push_window_ms": 60_000,
        }),
        &w.gateway_url,
        &cannot_ask,
    )
    .unwrap();
    let mut limited = 0;
    for _ in 0..500 {
        let id = uuid::Uuid::new_v4().to_string();
        if let Err(WebhookError::RateLimited(_)) = verify(&bare, &id).await {
            limited += 1;
        }
    }
    assert_eq!(
        w.fake.order_reads(),
        5,
        "five reads in the window, whatever the flood"
    );
    assert_eq!(limited, 495);
}

#[tokio::test]
async fn a_flood_of_pushes_for_a_real_order_is_bounded_too() {
    let w = world(json!({ "push_reads_per_window": 3 })).await;
    // Kustom's own pushes are held back: they would take permits too.
    let (_, order_id) = paid_with(
        &w,
        CompleteOptions {
            skip_push: true,
            ..no_validation()
        },
    )
    .await;
    let reads_before = w.fake.order_reads();
    let attempts = futures_like_join(&w.provider, &order_id, 100).await;
    let accepted = attempts.iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, 3);
    assert_eq!(w.fake.order_reads() - reads_before, 3);
    for ok in attempts.iter().flatten() {
        assert_eq!(
            ok,
            &EventKind::Authorized {
                psp_ref: order_id.clone()
            }
        );
    }
}

#[tokio::test]
async fn forty_pushes_for_one_order_leave_another_orders_push_its_read() {
    // The defaults: 30 reads a minute for all orders, 3 for one order.
    let w = world(json!({})).await;
    let (_, own) = w
        .cart_and_checkout(cart("SEK", vec![item("MUG", 1, "149.00", "0", "25")], None))
        .await;
    let (_, genuine) = paid_with(
        &w,
        CompleteOptions {
            skip_push: true,
            ..no_validation()
        },
    )
    .await;
    let attempts = futures_like_join(&w.provider, &own.psp_ref, 40).await;
    let limited = attempts
        .iter()
        .filter(|r| matches!(r, Err(WebhookError::RateLimited(_))))
        .count();
    assert_eq!(limited, 37, "three reads for the pushed order, no more");
    assert_eq!(
        verify(&w.provider, &genuine).await.unwrap(),
        EventKind::Authorized { psp_ref: genuine }
    );
}

#[tokio::test]
async fn pushes_for_many_orders_together_stay_under_the_global_ceiling() {
    let w = world(json!({ "push_reads_per_window": 5, "push_reads_per_order": 2 })).await;
    let mut orders = Vec::new();
    for _ in 0..6 {
        let (_, session) = w
            .cart_and_checkout(cart("SEK", vec![item("MUG", 1, "149.00", "0", "25")], None))
            .await;
        orders.push(session.psp_ref);
    }
    let reads_before = w.fake.order_reads();
    for order in &orders {
        for _ in 0..4 {
            let _ = verify(&w.provider, order).await;
        }
    }
    assert_eq!(w.fake.order_reads() - reads_before, 5);
}

/// `n` concurrent verifications of one order.
async fn futures_like_join(
    provider: &std::sync::Arc<KustomProvider>,
    order_id: &str,
    n: usize,
) -> Vec<Result<EventKind, WebhookError>> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let p = provider.clone();
        let id = order_id.to_string();
        tasks.push(tokio::spawn(async move { verify(&p, &id).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
