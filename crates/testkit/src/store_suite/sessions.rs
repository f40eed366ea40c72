//! Checkout sessions: reserved before the PSP is called, saved with its answer, statuses
//! forward-only and terminal statuses never left, quiet sessions for the sweep.

use std::time::Duration;

use super::{cart, next_millisecond, sek, Backend};
use psp_core::ports::{SessionStatus, Sessions, StoreError};
use serde_json::json;

pub async fn reserving_twice_returns_the_first_reservation<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let first = store
        .reserve_session(cart(1), "mock", "key-1")
        .await
        .unwrap();
    let again = store
        .reserve_session(cart(1), "mock", "key-2")
        .await
        .unwrap();

    assert_eq!(first.status, SessionStatus::Creating);
    assert_eq!(again.idempotency_key, "key-1");
    assert_eq!(again.psp_ref, None);
    let other_provider = store
        .reserve_session(cart(1), "stripe", "key-3")
        .await
        .unwrap();
    assert_eq!(other_provider.idempotency_key, "key-3");
}

pub async fn a_synced_amount_is_recorded_only_while_the_session_holds_that_payment<B: Backend>() {
    let (_db, store) = B::fresh().await;
    store
        .reserve_session(cart(1), "mock", "key-1")
        .await
        .unwrap();
    store
        .save_session(cart(1), "mock", "pay_1", sek(10_000), &json!({}))
        .await
        .unwrap();
    assert!(store
        .set_session_amount(cart(1), "mock", "pay_1", sek(15_000))
        .await
        .unwrap());
    let session = store.session(cart(1), "mock").await.unwrap().unwrap();
    assert_eq!(session.amount_minor, Some(15_000));
    assert_eq!(session.currency.as_deref(), Some("SEK"));
    assert_eq!(
        session.status,
        SessionStatus::Open,
        "the status is left alone"
    );

    // A sync that finishes after a newer checkout replaced the PSP payment changes nothing.
    assert!(!store
        .set_session_amount(cart(1), "mock", "pay_0", sek(1))
        .await
        .unwrap());
    let session = store.session(cart(1), "mock").await.unwrap().unwrap();
    assert_eq!(
        (session.psp_ref.as_deref(), session.amount_minor),
        (Some("pay_1"), Some(15_000))
    );
}

pub async fn a_saved_session_is_open_and_holds_what_the_psp_answered<B: Backend>() {
    let (_db, store) = B::fresh().await;
    store
        .reserve_session(cart(1), "mock", "key-1")
        .await
        .unwrap();
    let client = json!({ "redirectUrl": "https://psp.example/pay/1" });
    store
        .save_session(cart(1), "mock", "pay_1", sek(12_345), &client)
        .await
        .unwrap();

    let session = store.session(cart(1), "mock").await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Open);
    assert_eq!(session.psp_ref.as_deref(), Some("pay_1"));
    assert_eq!(session.amount_minor, Some(12_345));
    assert_eq!(session.currency.as_deref(), Some("SEK"));
    assert_eq!(session.client, Some(client));
    assert_eq!(session.idempotency_key, "key-1");

    let by_ref = store
        .session_by_ref("mock", "pay_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_ref.cart_id, cart(1));
    assert!(store
        .session_by_ref("stripe", "pay_1")
        .await
        .unwrap()
        .is_none());
    assert!(store.session(cart(2), "mock").await.unwrap().is_none());
}

pub async fn saving_a_session_that_was_never_reserved_is_not_found<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let err = store
        .save_session(cart(1), "mock", "pay_1", sek(100), &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub async fn a_terminal_session_status_is_never_left<B: Backend>() {
    let (_db, store) = B::fresh().await;
    store
        .reserve_session(cart(1), "mock", "key-1")
        .await
        .unwrap();
    store
        .save_session(cart(1), "mock", "pay_1", sek(100), &json!({}))
        .await
        .unwrap();
    store
        .set_session_status("mock", "pay_1", SessionStatus::Completed)
        .await
        .unwrap();

    for late in [
        SessionStatus::Open,
        SessionStatus::Authorized,
        SessionStatus::Failed,
        SessionStatus::Canceled,
        SessionStatus::Creating,
    ] {
        store
            .set_session_status("mock", "pay_1", late)
            .await
            .unwrap();
    }
    // A late save stores the PSP's answer but does not reopen the session either.
    store
        .save_session(cart(1), "mock", "pay_1", sek(100), &json!({}))
        .await
        .unwrap();

    let session = store.session(cart(1), "mock").await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Completed);
}

pub async fn a_session_status_moves_forward_but_not_back<B: Backend>() {
    let (_db, store) = B::fresh().await;
    store
        .reserve_session(cart(1), "mock", "key-1")
        .await
        .unwrap();
    store
        .save_session(cart(1), "mock", "pay_1", sek(100), &json!({}))
        .await
        .unwrap();
    let status = || async {
        store
            .session(cart(1), "mock")
            .await
            .unwrap()
            .unwrap()
            .status
    };

    store
        .set_session_status("mock", "pay_1", SessionStatus::Authorized)
        .await
        .unwrap();
    assert_eq!(status().await, SessionStatus::Authorized);
    store
        .set_session_status("mock", "pay_1", SessionStatus::Open)
        .await
        .unwrap();
    assert_eq!(status().await, SessionStatus::Authorized);
    // Saving again (a repeated checkout) does not make an authorized session open.
    store
        .save_session(cart(1), "mock", "pay_1", sek(100), &json!({}))
        .await
        .unwrap();
    assert_eq!(status().await, SessionStatus::Authorized);
    store
        .set_session_status("mock", "pay_1", SessionStatus::Failed)
        .await
        .unwrap();
    assert_eq!(status().await, SessionStatus::Failed);
}

pub async fn setting_the_status_of_a_payment_without_a_session_is_not_an_error<B: Backend>() {
    let (_db, store) = B::fresh().await;
    store
        .set_session_status("mock", "pay_unknown", SessionStatus::Canceled)
        .await
        .unwrap();
}

pub async fn a_failed_session_restarts_with_a_new_key_and_no_payment<B: Backend>() {
    let (_db, store) = B::fresh().await;
    store
        .reserve_session(cart(1), "mock", "key-1")
        .await
        .unwrap();
    store
        .save_session(cart(1), "mock", "pay_1", sek(100), &json!({ "a": 1 }))
        .await
        .unwrap();
    store
        .set_session_status("mock", "pay_1", SessionStatus::Failed)
        .await
        .unwrap();

    let restarted = store
        .restart_session(cart(1), "mock", "key-2")
        .await
        .unwrap();
    assert_eq!(restarted.status, SessionStatus::Creating);
    assert_eq!(restarted.idempotency_key, "key-2");
    assert_eq!(restarted.psp_ref, None);
    assert_eq!(restarted.amount_minor, None);
    assert_eq!(restarted.client, None);

    // The restarted session is saved like a new one.
    store
        .save_session(cart(1), "mock", "pay_2", sek(100), &json!({}))
        .await
        .unwrap();
    let session = store.session(cart(1), "mock").await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Open);
    assert_eq!(session.psp_ref.as_deref(), Some("pay_2"));
}

pub async fn restarting_a_session_that_has_not_ended_changes_nothing<B: Backend>() {
    let (_db, store) = B::fresh().await;
    store
        .reserve_session(cart(1), "mock", "key-1")
        .await
        .unwrap();
    store
        .save_session(cart(1), "mock", "pay_1", sek(100), &json!({}))
        .await
        .unwrap();
    for status in [SessionStatus::Open, SessionStatus::Completed] {
        store
            .set_session_status("mock", "pay_1", status)
            .await
            .unwrap();
        let same = store
            .restart_session(cart(1), "mock", "key-2")
            .await
            .unwrap();
        assert_eq!(same.status, status);
        assert_eq!(same.idempotency_key, "key-1");
        assert_eq!(same.psp_ref.as_deref(), Some("pay_1"));
    }
    let err = store
        .restart_session(cart(9), "mock", "key")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub async fn quiet_sessions_are_the_unfinished_ones_with_a_payment_oldest_first<B: Backend>() {
    let (_db, store) = B::fresh().await;
    // Cart 1 and 2: open with a payment, 1 older than 2. Cart 3: no payment yet.
    // Cart 4: completed. Cart 5: authorized.
    for (n, psp_ref) in [(1, "pay_1"), (2, "pay_2"), (4, "pay_4"), (5, "pay_5")] {
        store
            .reserve_session(cart(n), "mock", &format!("key-{n}"))
            .await
            .unwrap();
        store
            .save_session(cart(n), "mock", psp_ref, sek(100), &json!({}))
            .await
            .unwrap();
        next_millisecond().await;
    }
    store
        .reserve_session(cart(3), "mock", "key-3")
        .await
        .unwrap();
    store
        .set_session_status("mock", "pay_4", SessionStatus::Completed)
        .await
        .unwrap();
    store
        .set_session_status("mock", "pay_5", SessionStatus::Authorized)
        .await
        .unwrap();
    next_millisecond().await;

    let quiet = store.quiet_sessions(Duration::ZERO, 10).await.unwrap();
    let carts: Vec<_> = quiet.iter().map(|s| s.cart_id).collect();
    assert_eq!(carts, [cart(1), cart(2), cart(5)]);
    assert_eq!(
        store.quiet_sessions(Duration::ZERO, 1).await.unwrap().len(),
        1
    );
    assert!(store
        .quiet_sessions(Duration::from_secs(3600), 10)
        .await
        .unwrap()
        .is_empty());

    // Setting the status a session already has marks it as looked at: it goes to the back.
    store
        .set_session_status("mock", "pay_1", SessionStatus::Open)
        .await
        .unwrap();
    next_millisecond().await;
    let quiet = store.quiet_sessions(Duration::ZERO, 10).await.unwrap();
    let carts: Vec<_> = quiet.iter().map(|s| s.cart_id).collect();
    assert_eq!(carts, [cart(2), cart(5), cart(1)]);
}
