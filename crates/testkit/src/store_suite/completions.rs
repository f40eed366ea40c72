//! Completion records: forward-only, the first final state wins, history on every change.

use std::sync::Arc;

use super::{cart, next_millisecond, Backend};
use psp_core::ports::{CompletionState, CompletionUpdate, Completions};
use uuid::Uuid;
use CompletionState::*;

fn update(
    state: CompletionState,
    payment_id: Option<Uuid>,
    reason: Option<&str>,
) -> CompletionUpdate {
    CompletionUpdate {
        provider: "mock".into(),
        psp_ref: "pay_1".into(),
        cart_id: cart(1),
        state,
        payment_id,
        reason: reason.map(str::to_string),
    }
}

async fn history(store: &impl Completions) -> Vec<CompletionState> {
    store
        .completion_history("mock", "pay_1")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.state)
        .collect()
}

pub async fn a_new_record_is_created_in_the_state_asked<B: Backend>() {
    let (_db, store) = B::fresh().await;
    assert!(store.completion("mock", "pay_1").await.unwrap().is_none());

    let created = store
        .advance_completion(update(Started, None, None))
        .await
        .unwrap();
    assert_eq!(created.state, Started);
    assert_eq!(created.cart_id, cart(1));

    let read = store.completion("mock", "pay_1").await.unwrap().unwrap();
    assert_eq!(read.state, Started);
    assert_eq!(read.updated_at_ms, created.updated_at_ms);
    assert_eq!(history(&store).await, [Started]);
}

pub async fn the_state_never_moves_backwards_and_the_payment_id_is_kept<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let payment = Uuid::from_u128(42);
    store
        .advance_completion(update(Started, None, None))
        .await
        .unwrap();
    store
        .advance_completion(update(PaymentCreated, Some(payment), None))
        .await
        .unwrap();

    let after_late_start = store
        .advance_completion(update(Started, None, None))
        .await
        .unwrap();
    assert_eq!(after_late_start.state, PaymentCreated);
    assert_eq!(after_late_start.payment_id, Some(payment));

    let completed = store
        .advance_completion(update(Completed, None, None))
        .await
        .unwrap();
    assert_eq!(completed.state, Completed);
    assert_eq!(
        completed.payment_id,
        Some(payment),
        "an update without a payment id keeps it"
    );

    let stored = store.completion("mock", "pay_1").await.unwrap().unwrap();
    assert_eq!(stored.state, Completed);
    assert_eq!(stored.payment_id, Some(payment));
}

pub async fn the_first_final_state_wins<B: Backend>() {
    let (_db, store) = B::fresh().await;
    store
        .advance_completion(update(Completed, None, None))
        .await
        .unwrap();
    let kept = store
        .advance_completion(update(DoublePayment, None, Some("late")))
        .await
        .unwrap();
    assert_eq!(kept.state, Completed);
    assert_eq!(kept.reason, None);

    let mut other = update(DoublePayment, None, Some("cart taken"));
    other.psp_ref = "pay_2".into();
    store.advance_completion(other.clone()).await.unwrap();
    other.state = Completed;
    let kept = store.advance_completion(other).await.unwrap();
    assert_eq!(kept.state, DoublePayment);
    assert_eq!(kept.reason.as_deref(), Some("cart taken"));
}

pub async fn history_is_appended_only_when_the_state_changes<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let payment = Some(Uuid::from_u128(7));
    for step in [
        update(Started, None, None),
        update(Started, None, None),
        update(PaymentCreated, payment, None),
        update(PaymentCreated, payment, Some("detail")),
        update(Started, None, None),
        update(NeedsAttention, None, Some("amount mismatch")),
        update(PaymentCreated, None, None),
        update(Completed, None, None),
        update(DoublePayment, None, Some("late")),
        update(Completed, None, None),
    ] {
        store.advance_completion(step).await.unwrap();
    }
    assert_eq!(
        history(&store).await,
        [Started, PaymentCreated, NeedsAttention, Completed]
    );
    let transitions = store.completion_history("mock", "pay_1").await.unwrap();
    assert_eq!(transitions[2].reason.as_deref(), Some("amount mismatch"));
    assert!(transitions.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
}

pub async fn the_same_state_fills_in_details_without_a_history_entry<B: Backend>() {
    let (_db, store) = B::fresh().await;
    store
        .advance_completion(update(NeedsAttention, None, Some("cart gone")))
        .await
        .unwrap();
    let updated = store
        .advance_completion(update(NeedsAttention, None, Some("cart still gone")))
        .await
        .unwrap();
    assert_eq!(updated.reason.as_deref(), Some("cart still gone"));
    // An update that carries no reason keeps the one stored.
    let same = store
        .advance_completion(update(NeedsAttention, None, None))
        .await
        .unwrap();
    assert_eq!(same.reason.as_deref(), Some("cart still gone"));
    assert_eq!(history(&store).await, [NeedsAttention]);
}

pub async fn completions_in_lists_the_asked_states_newest_first<B: Backend>() {
    let (_db, store) = B::fresh().await;
    for (psp_ref, state) in [
        ("pay_a", NeedsAttention),
        ("pay_b", Completed),
        ("pay_c", DoublePayment),
        ("pay_d", NeedsAttention),
    ] {
        let mut u = update(state, None, None);
        u.psp_ref = psp_ref.into();
        store.advance_completion(u).await.unwrap();
        next_millisecond().await;
    }
    let listed = store
        .completions_in(&[NeedsAttention, DoublePayment], 10)
        .await
        .unwrap();
    let refs: Vec<_> = listed.iter().map(|c| c.psp_ref.as_str()).collect();
    assert_eq!(refs, ["pay_d", "pay_c", "pay_a"]);
    assert_eq!(
        store
            .completions_in(&[NeedsAttention], 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.completions_in(&[], 10).await.unwrap().is_empty());
}

pub async fn concurrent_advances_end_in_the_highest_state_with_an_increasing_history<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let store = Arc::new(store);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let store = store.clone();
        let state = [Started, PaymentCreated, NeedsAttention, Completed][i % 4];
        tasks.spawn(async move { store.advance_completion(update(state, None, None)).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let stored = store.completion("mock", "pay_1").await.unwrap().unwrap();
    assert_eq!(stored.state, Completed);
    let states = history(&*store).await;
    assert!(
        states.windows(2).all(|w| w[0].rank() < w[1].rank()),
        "{states:?}"
    );
    assert_eq!(states.last(), Some(&Completed));
}
