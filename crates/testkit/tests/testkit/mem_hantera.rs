//! `MemHantera` keeps the promises the orchestrator's tests rely on.

use psp_core::ports::{Charge, CreateOutcome, Hantera, HanteraError, NewPayment};
use psp_core::{CartState, Currency, Money};
use rust_decimal::Decimal;
use testkit::mem::{Call, MemHantera, Op};
use uuid::Uuid;

fn sek(minor: i64) -> Money {
    Money::from_minor(minor, Currency::from_code("SEK").unwrap())
}

fn new_payment(external_reference: &str) -> NewPayment {
    NewPayment {
        provider_key: "mock".into(),
        external_reference: external_reference.into(),
        amount: sek(12_345),
        authorization_number: external_reference.into(),
        payment_number_prefix: "MOCK-".into(),
    }
}

fn code(err: &HanteraError) -> &str {
    err.code().unwrap_or("<no code>")
}

#[tokio::test]
async fn a_cart_renders_its_total_exactly_and_an_unknown_cart_is_none() {
    let h = MemHantera::new();
    let cart_id = h.add_cart(sek(12_345));
    let cart = h.get_cart(cart_id).await.unwrap().unwrap();
    assert_eq!(cart.cart_state, CartState::Open);
    assert_eq!(cart.currency_code, "SEK");
    assert_eq!(cart.order_total, Decimal::new(12_345, 2));
    assert_eq!(cart.total().unwrap(), sek(12_345));
    assert!(h.get_cart(Uuid::new_v4()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_payment_id_and_an_external_reference_are_each_unique() {
    let h = MemHantera::new();
    let id = Uuid::new_v4();
    assert_eq!(
        h.create_payment(id, &new_payment("ref_1")).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        h.create_payment(id, &new_payment("ref_1")).await.unwrap(),
        CreateOutcome::AlreadyExists
    );
    assert_eq!(
        h.create_payment(Uuid::new_v4(), &new_payment("ref_1"))
            .await
            .unwrap(),
        CreateOutcome::DuplicateExternalReference
    );
    assert_eq!(h.payments().len(), 1);
    let found = h.find_payment("ref_1").await.unwrap().unwrap();
    assert_eq!(found.payment_id, id);
    assert_eq!(found.payment_number.as_deref(), Some("MOCK-1001"));
    assert!(h.find_payment("ref_2").await.unwrap().is_none());
    let payment = h.payment(id).unwrap();
    assert_eq!(payment.authorizations[0].amount, Decimal::new(12_345, 2));
    assert_eq!(payment.currency_code, "SEK");
}

#[tokio::test]
async fn link_and_complete_relates_the_payment_and_completes_the_cart() {
    let h = MemHantera::new();
    let cart_id = h.add_cart(sek(100));
    let id = Uuid::new_v4();
    h.create_payment(id, &new_payment("ref_1")).await.unwrap();
    h.link_and_complete(cart_id, id).await.unwrap();
    assert_eq!(h.cart_state(cart_id), Some(CartState::Completed));
    assert_eq!(h.cart_payments(cart_id), vec![id]);
    assert!(h.cart(cart_id).unwrap().order_number.is_some());
}

#[tokio::test]
async fn completing_a_cart_that_is_not_open_is_an_invalid_command_and_changes_nothing() {
    let h = MemHantera::new();
    let id = Uuid::new_v4();
    h.create_payment(id, &new_payment("ref_1")).await.unwrap();
    for state in [CartState::Completed, CartState::Rejected] {
        let cart_id = h.add_cart(sek(100));
        h.set_cart_state(cart_id, state);
        let err = h.link_and_complete(cart_id, id).await.unwrap_err();
        assert!(
            matches!(&err, HanteraError::Api { status: 500, .. }),
            "{err}"
        );
        assert_eq!(code(&err), "INVALID_COMMAND");
        assert!(!err.is_transient());
        assert_eq!(h.cart_state(cart_id), Some(state));
        assert!(h.cart_payments(cart_id).is_empty(), "the batch is atomic");
    }
}

#[tokio::test]
async fn relating_a_missing_payment_is_an_invalid_command_and_leaves_the_cart_open() {
    let h = MemHantera::new();
    let cart_id = h.add_cart(sek(100));
    let err = h
        .link_and_complete(cart_id, Uuid::new_v4())
        .await
        .unwrap_err();
    assert_eq!(code(&err), "INVALID_COMMAND");
    assert_eq!(h.cart_state(cart_id), Some(CartState::Open));
    assert!(h.cart_payments(cart_id).is_empty());
}

#[tokio::test]
async fn an_injected_failure_changes_nothing_and_a_lost_answer_changes_everything() {
    let h = MemHantera::new();
    let cart_id = h.add_cart(sek(100));
    let id = Uuid::new_v4();
    h.create_payment(id, &new_payment("ref_1")).await.unwrap();

    h.fail_next(Op::LinkAndComplete, 1);
    let err = h.link_and_complete(cart_id, id).await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(h.cart_state(cart_id), Some(CartState::Open));

    h.apply_then_lose_answer(Op::LinkAndComplete, 1);
    let err = h.link_and_complete(cart_id, id).await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(h.cart_state(cart_id), Some(CartState::Completed));

    let log: Vec<(Op, bool)> = h
        .calls()
        .iter()
        .filter(|r| r.call.op() == Op::LinkAndComplete)
        .map(|r| (r.call.op(), r.changed))
        .collect();
    assert_eq!(
        log,
        vec![(Op::LinkAndComplete, false), (Op::LinkAndComplete, true)]
    );
    assert_eq!(h.applied(Op::LinkAndComplete), 1);
}

#[tokio::test]
async fn faults_are_consumed_in_order_one_call_at_a_time() {
    let h = MemHantera::new();
    let cart_id = h.add_cart(sek(100));
    h.pass_next(Op::GetCart, 1);
    h.fail_next(Op::GetCart, 2);
    h.answer_none_next(Op::GetCart, 1);
    assert!(h.get_cart(cart_id).await.unwrap().is_some());
    assert!(h.get_cart(cart_id).await.is_err());
    assert!(h.get_cart(cart_id).await.is_err());
    assert!(h.get_cart(cart_id).await.unwrap().is_none());
    assert!(h.get_cart(cart_id).await.unwrap().is_some());
    assert_eq!(h.count(Op::GetCart), 5);

    h.fail_next_with(
        Op::Ping,
        1,
        HanteraError::Unauthorized("token refused".into()),
    );
    assert!(matches!(h.ping().await, Err(HanteraError::Unauthorized(_))));
    h.fail_next(Op::Ping, 3);
    h.clear_faults();
    assert!(h.ping().await.is_ok());
}

#[tokio::test]
async fn the_call_log_keeps_arrival_order() {
    let h = MemHantera::new();
    let cart_id = h.add_cart(sek(100));
    let id = Uuid::new_v4();
    h.find_payment("ref_1").await.unwrap();
    h.create_payment(id, &new_payment("ref_1")).await.unwrap();
    h.link_and_complete(cart_id, id).await.unwrap();
    let calls: Vec<Call> = h.calls().into_iter().map(|r| r.call).collect();
    assert_eq!(
        calls,
        vec![
            Call::FindPayment {
                external_reference: "ref_1".into()
            },
            Call::CreatePayment {
                payment_id: id,
                external_reference: "ref_1".into()
            },
            Call::LinkAndComplete {
                cart_id,
                payment_id: id
            },
        ]
    );
    assert!(h.first_applied(Op::CreatePayment) < h.first_applied(Op::LinkAndComplete));
    h.clear_calls();
    assert!(h.calls().is_empty());
}

#[tokio::test]
async fn a_charge_needs_an_existing_payment_and_authorization() {
    let h = MemHantera::new();
    let id = Uuid::new_v4();
    let charge = |auth: &str| Charge {
        amount: Decimal::new(5_000, 2),
        authorization_number: Some(auth.into()),
        transaction_reference: Some("cap_1".into()),
    };
    let err = h.charge(id, &charge("ref_1")).await.unwrap_err();
    assert_eq!(code(&err), "NOT_FOUND");
    h.create_payment(id, &new_payment("ref_1")).await.unwrap();
    let err = h.charge(id, &charge("other")).await.unwrap_err();
    assert_eq!(code(&err), "INVALID_COMMAND");
    h.charge(id, &charge("ref_1")).await.unwrap();
    assert_eq!(h.payment(id).unwrap().charges.len(), 1);
}

#[tokio::test]
async fn a_seeded_payment_is_found_by_its_reference() {
    let h = MemHantera::new();
    let id = Uuid::new_v4();
    h.seed_payment(id, &new_payment("ref_1"));
    assert_eq!(h.payment_by_reference("ref_1").unwrap().payment_id, id);
    assert!(h.calls().is_empty(), "seeding is not a call");
}

#[tokio::test]
async fn a_held_call_waits_until_released_and_then_behaves_normally() {
    let h = std::sync::Arc::new(MemHantera::new());
    let cart_id = h.add_cart(sek(100));
    let hold = h.hold_next(Op::GetCart);
    let reader = {
        let h = h.clone();
        tokio::spawn(async move { h.get_cart(cart_id).await })
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), hold.reached())
        .await
        .expect("the held call arrives");
    // While the read waits, the cart changes; the read must see the change.
    h.set_cart_state(cart_id, CartState::Rejected);
    hold.release();
    let cart = reader.await.unwrap().unwrap().unwrap();
    assert_eq!(cart.cart_state, CartState::Rejected);
}
