//! The adapter against the fake Kustom: reading orders, capture, void, sync and
//! authentication.

use crate::common;

use common::{cart, item, world, World};
use kustom::fake::CompleteOptions;
use kustom::KustomProvider;
use psp_core::{
    CaptureRequest, Currency, Money, Provider, ProviderError, PspStatus, RenderedCart, SyncRequest,
};
use serde_json::json;

fn quiet() -> CompleteOptions {
    CompleteOptions {
        skip_validation: true,
        skip_push: true,
        fraud_status: None,
    }
}

fn sek(minor: i64) -> Money {
    Money::from_minor(minor, Currency::from_code("SEK").unwrap())
}

async fn paid(w: &World) -> (RenderedCart, String) {
    let (c, s) = w
        .cart_and_checkout(cart("SEK", vec![item("MUG", 4, "149.00", "0", "25")], None))
        .await;
    w.fake.complete(&s.psp_ref, quiet()).await.unwrap();
    (c, s.psp_ref)
}

#[tokio::test]
async fn an_order_reads_pending_until_the_customer_pays_then_authorized_for_the_cart() {
    let w = world(json!({})).await;
    let (c, s) = w
        .cart_and_checkout(cart("SEK", vec![item("MUG", 4, "149.00", "0", "25")], None))
        .await;
    let before = w.provider.fetch(&s.psp_ref).await.unwrap();
    assert_eq!(before.status, PspStatus::Pending);
    assert_eq!(before.cart_id, Some(c.cart_id));
    w.fake.complete(&s.psp_ref, quiet()).await.unwrap();
    let after = w.provider.fetch(&s.psp_ref).await.unwrap();
    assert_eq!(
        after.status,
        PspStatus::Authorized {
            amount: sek(59_600)
        }
    );
    assert_eq!(after.cart_id, Some(c.cart_id));
}

#[tokio::test]
async fn an_order_kustom_no_longer_knows_reads_as_ended() {
    let w = world(json!({})).await;
    let gone = w
        .provider
        .fetch(&uuid::Uuid::new_v4().to_string())
        .await
        .unwrap();
    assert_eq!(gone.status, PspStatus::Canceled);
    assert!(matches!(
        w.provider.fetch("../../etc").await,
        Err(ProviderError::NotFound(_))
    ));
}

#[tokio::test]
async fn captures_are_partial_idempotent_by_key_and_never_exceed_the_authorization() {
    let w = world(json!({})).await;
    let (_, order_id) = paid(&w).await;
    let capture = |minor: i64, key: &'static str| {
        let p = w.provider.clone();
        let id = order_id.clone();
        async move {
            p.capture(CaptureRequest {
                psp_ref: &id,
                amount: sek(minor),
                idempotency_key: key,
            })
            .await
        }
    };
    let first = capture(20_000, "cap-1").await.unwrap();
    // A retry after a lost answer, even with another amount: Kustom keys on the key alone.
    let again = capture(25_000, "cap-1").await.unwrap();
    assert_eq!(first, again);
    let second = capture(39_600, "cap-2").await.unwrap();
    assert_ne!(first, second);
    let om = w.fake.order(&order_id).unwrap().om.unwrap();
    assert_eq!(om.captures.len(), 2);
    assert_eq!(om.captured_amount, 59_600);
    assert_eq!(om.status, "CAPTURED");
    assert!(om.acknowledged, "a capture counts as an acknowledgement");
    match capture(1, "cap-3").await {
        Err(ProviderError::Rejected { code, .. }) => assert_eq!(code, "CAPTURE_NOT_ALLOWED"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.provider.fetch(&order_id).await.unwrap().status,
        PspStatus::Captured {
            amount: sek(59_600)
        }
    );
}

#[tokio::test]
async fn a_capture_after_kustom_failed_to_answer_is_retried_with_the_same_key_safely() {
    let w = world(json!({})).await;
    let (_, order_id) = paid(&w).await;
    w.fake.fail_next(1);
    let req = CaptureRequest {
        psp_ref: &order_id,
        amount: sek(59_600),
        idempotency_key: "cap-retry",
    };
    let err = w.provider.capture(req.clone()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    w.provider.capture(req.clone()).await.unwrap();
    w.provider.capture(req).await.unwrap();
    assert_eq!(
        w.fake.order(&order_id).unwrap().om.unwrap().captures.len(),
        1
    );
}

#[tokio::test]
async fn a_double_payment_is_voided_once_and_a_captured_order_cannot_be() {
    let w = world(json!({})).await;
    let (_, order_id) = paid(&w).await;
    w.provider.void(&order_id, "void-1").await.unwrap();
    // The earlier answer was lost and the job runs again, with another key even.
    w.provider.void(&order_id, "void-2").await.unwrap();
    assert_eq!(
        w.fake.order(&order_id).unwrap().om.unwrap().status,
        "CANCELLED"
    );
    assert_eq!(
        w.provider.fetch(&order_id).await.unwrap().status,
        PspStatus::Canceled
    );

    let (_, captured) = paid(&w).await;
    w.provider
        .capture(CaptureRequest {
            psp_ref: &captured,
            amount: sek(100),
            idempotency_key: "c",
        })
        .await
        .unwrap();
    assert!(matches!(
        w.provider.void(&captured, "void-3").await,
        Err(ProviderError::Rejected { .. })
    ));
}

#[tokio::test]
async fn sync_replaces_the_lines_of_an_open_order_and_refuses_a_paid_one() {
    let w = world(json!({})).await;
    let (c, s) = w
        .cart_and_checkout(cart("SEK", vec![item("MUG", 1, "149.00", "0", "25")], None))
        .await;
    let changed = RenderedCart {
        cart_id: c.cart_id,
        ..cart(
            "SEK",
            vec![
                item("MUG", 2, "149.00", "10.00", "25"),
                item("BOOK", 1, "189.00", "0", "6"),
            ],
            Some(("49.00", "25")),
        )
    };
    let payload = w.provider.sync_payload(&changed).unwrap();
    assert_eq!(
        payload,
        w.provider.sync_payload(&changed).unwrap(),
        "the same cart hashes the same"
    );
    let amount = changed.total().unwrap();
    let sync = |psp_ref: String| {
        let p = w.provider.clone();
        let payload = payload.clone();
        let changed = changed.clone();
        async move {
            p.sync(SyncRequest {
                psp_ref: &psp_ref,
                cart: &changed,
                amount,
                payload: &payload,
                idempotency_key: "sync-1",
            })
            .await
        }
    };
    sync(s.psp_ref.clone()).await.unwrap();
    let held = w.fake.order(&s.psp_ref).unwrap();
    assert_eq!(held.checkout["order_amount"], amount.minor);
    assert_eq!(held.checkout["order_lines"], payload["order_lines"]);

    w.fake.complete(&s.psp_ref, quiet()).await.unwrap();
    assert!(matches!(
        sync(s.psp_ref.clone()).await,
        Err(ProviderError::Locked(_))
    ));
}

#[tokio::test]
async fn classic_basic_authentication_with_the_merchant_username_is_accepted_and_a_wrong_key_is_not(
) {
    let w = world(json!({})).await;
    // The world's fake knows no username: a username sent must be right, so it refuses.
    let with_user = KustomProvider::from_config(
        &json!({ "api_key": common::API_KEY, "api_base": w.fake_base, "username": "PK0001-x" }),
        &w.gateway_url,
        &w.services,
    )
    .unwrap();
    assert!(matches!(
        with_user.fetch(&uuid::Uuid::new_v4().to_string()).await,
        Err(ProviderError::Rejected { .. })
    ));

    let fake = kustom::FakeKustom::new(kustom::FakeConfig {
        username: Some("PK0001-x".into()),
        api_key: common::API_KEY.into(),
        ..kustom::FakeConfig::sandbox("http://unused")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = fake.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let with_user = KustomProvider::from_config(
        &json!({ "api_key": common::API_KEY, "api_base": base, "username": "PK0001-x" }),
        &w.gateway_url,
        &w.services,
    )
    .unwrap();
    let unknown = with_user
        .fetch(&uuid::Uuid::new_v4().to_string())
        .await
        .unwrap();
    assert_eq!(
        unknown.status,
        PspStatus::Canceled,
        "authenticated, and no such order"
    );

    let wrong = KustomProvider::from_config(
        &json!({ "api_key": "kco_test_api_wrong", "api_base": w.fake_base }),
        &w.gateway_url,
        &w.services,
    )
    .unwrap();
    match wrong.fetch(&uuid::Uuid::new_v4().to_string()).await {
        Err(ProviderError::Rejected { code, .. }) => assert_eq!(code, "UNAUTHORIZED"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_checkout_answer_is_the_snippet_and_the_order_id_with_our_urls_in_the_order() {
    let w = world(json!({})).await;
    let (c, s) = w
        .cart_and_checkout(cart("SEK", vec![item("MUG", 1, "149.00", "0", "25")], None))
        .await;
    assert_eq!(s.client["orderId"], s.psp_ref);
    let snippet = s.client["htmlSnippet"].as_str().unwrap();
    assert!(
        snippet.contains(&format!("{}/checkout/{}", w.fake_base, s.psp_ref)),
        "{snippet}"
    );
    let order = w.fake.order(&s.psp_ref).unwrap();
    let urls = &order.checkout["merchant_urls"];
    assert_eq!(
        urls["push"],
        format!(
            "{}/webhooks/kustom?kustom_order_id={{checkout.order.id}}",
            w.gateway_url
        )
    );
    assert_eq!(
        urls["validation"],
        format!(
            "{}/providers/kustom/validate?kustom_order_id={{checkout.order.id}}",
            w.gateway_url
        )
    );
    assert_eq!(urls["terms"], "https://shop.example/terms");
    assert_eq!(order.checkout["merchant_reference1"], c.cart_id.to_string());
    assert_eq!(order.checkout["purchase_country"], "SE");
    assert_eq!(order.checkout["locale"], "sv-SE");
}

#[tokio::test]
async fn a_retried_checkout_after_a_lost_answer_does_not_make_a_second_order() {
    let w = world(json!({})).await;
    let c = cart("SEK", vec![item("MUG", 1, "149.00", "0", "25")], None);
    w.hantera.insert_cart(c.clone());
    let first = w.checkout(&c).await;
    let second = w.checkout(&c).await;
    assert_eq!(first.psp_ref, second.psp_ref);
    assert_eq!(w.fake.orders().len(), 1);
}
