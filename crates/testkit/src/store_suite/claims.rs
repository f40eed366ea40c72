//! Cart claims: the first PSP payment to claim a cart holds it for good.

use std::collections::HashSet;
use std::sync::Arc;

use super::{cart, Backend};
use psp_core::ports::{CartClaim, Completions};

pub async fn the_first_claim_wins_and_later_claims_are_told_the_holder<B: Backend>() {
    let (_db, store) = B::fresh().await;
    assert_eq!(store.cart_claim(cart(1)).await.unwrap(), None);

    let ours = store.claim_cart(cart(1), "mock", "pay_1").await.unwrap();
    let holder = CartClaim {
        provider: "mock".into(),
        psp_ref: "pay_1".into(),
    };
    assert_eq!(ours, holder);
    assert_eq!(
        store.claim_cart(cart(1), "stripe", "pi_2").await.unwrap(),
        holder
    );
    assert_eq!(
        store.claim_cart(cart(1), "mock", "pay_1").await.unwrap(),
        holder
    );
    assert_eq!(store.cart_claim(cart(1)).await.unwrap(), Some(holder));
    assert_eq!(store.cart_claim(cart(2)).await.unwrap(), None);
}

pub async fn twenty_concurrent_claims_leave_one_holder_that_everyone_sees<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let store = Arc::new(store);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.spawn(async move {
            let psp_ref = format!("pay_{i}");
            let holder = store.claim_cart(cart(1), "mock", &psp_ref).await.unwrap();
            (psp_ref, holder)
        });
    }
    let mut holders = HashSet::new();
    let mut winners = 0;
    while let Some(done) = tasks.join_next().await {
        let (psp_ref, holder) = done.unwrap();
        winners += usize::from(holder.psp_ref == psp_ref);
        holders.insert(holder.psp_ref);
    }
    assert_eq!(holders.len(), 1, "everyone sees the same holder");
    assert_eq!(winners, 1, "exactly one claim won");
    let stored = store.cart_claim(cart(1)).await.unwrap().unwrap();
    assert!(holders.contains(&stored.psp_ref));
}
