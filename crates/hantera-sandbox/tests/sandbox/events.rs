//! `GET /ingress/commerce/carts/{cartId}/events`: the cart's server-sent events.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{error_code, Harness};

#[tokio::test]
async fn a_subscriber_gets_init_then_one_updated_per_mutation_each_with_the_whole_cart() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    let mut events = h.events(&cart).await;
    let (name, init) = events.next().await;
    assert_eq!(name, "init");
    assert_eq!(init["cartId"], cart.as_str());
    assert_eq!(init["items"], json!([]));

    let (_, added) = h.add_item(&cart, "SOCKS-004", 2).await;
    let (name, updated) = events.next().await;
    assert_eq!(name, "updated");
    assert_eq!(
        updated, added,
        "the event carries what the mutation answered"
    );

    h.post(
        &format!("/ingress/commerce/carts/{cart}/email"),
        json!({"email": "ada@example.com"}),
    )
    .await;
    let (name, updated) = events.next().await;
    assert_eq!(name, "updated");
    assert_eq!(updated["email"], "ada@example.com");
    assert_eq!(updated["items"][0]["quantity"], 2);
}

#[tokio::test]
async fn a_refused_mutation_sends_no_event() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    let mut events = h.events(&cart).await;
    events.next().await;
    let (status, _) = h.add_item(&cart, "NOPE-1", 1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The next event is the one after the refused call, not one for it.
    h.add_item(&cart, "MUG-002", 1).await;
    let (name, updated) = events.next().await;
    assert_eq!(name, "updated");
    assert_eq!(updated["items"][0]["productNumber"], "MUG-002");
}

#[tokio::test]
async fn completing_the_cart_through_the_ticket_actor_is_sent_as_updated_with_the_order() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "TSHIRT-001", 1).await;
    let mut events = h.events(&cart).await;
    events.next().await;
    let (status, body) = h
        .actor_once(&format!("ticket/{cart}"), json!([{"type": "complete"}]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (name, updated) = events.next().await;
    assert_eq!(name, "updated");
    assert_eq!(updated["cartState"], "completed");
    assert_eq!(updated["orderNumber"], "O1001");
}

#[tokio::test]
async fn a_preview_batch_sends_no_event() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    let mut events = h.events(&cart).await;
    events.next().await;
    let token = h.token().await;
    h.actor(
        &token,
        &format!("ticket/{cart}?preview"),
        json!([{"type": "complete"}]),
    )
    .await;
    h.add_item(&cart, "CAP-003", 1).await;
    let (_, updated) = events.next().await;
    assert_eq!(updated["cartState"], "open", "the preview left no event");
    assert_eq!(updated["items"][0]["productNumber"], "CAP-003");
}

#[tokio::test]
async fn a_rejected_cart_is_sent_as_an_error_event_carrying_the_cart() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    let mut events = h.events(&cart).await;
    events.next().await;
    h.actor_once(&format!("ticket/{cart}"), json!([{"type": "reject"}]))
        .await;
    let (name, cart_data) = events.next().await;
    assert_eq!(name, "error");
    assert_eq!(cart_data["cartState"], "rejected");
}

#[tokio::test]
async fn events_of_other_carts_do_not_reach_a_subscriber() {
    let h = Harness::start().await;
    let mine = h.new_cart("default").await;
    let other = h.new_cart("default").await;
    let mut events = h.events(&mine).await;
    events.next().await;
    h.add_item(&other, "MUG-002", 1).await;
    h.add_item(&mine, "CAP-003", 1).await;
    let (_, updated) = events.next().await;
    assert_eq!(updated["cartId"], mine.as_str());
}

#[tokio::test]
async fn an_unknown_cart_answers_404_instead_of_a_stream() {
    let h = Harness::start().await;
    let (status, body) = h
        .get("/ingress/commerce/carts/0199a9b6-8608-7360-b98b-d2f9adeb2848/events")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn closing_the_event_streams_ends_open_ones_so_a_server_can_shut_down() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    let mut events = h.events(&cart).await;
    events.next().await;
    h.sandbox.close_event_streams();
    assert!(events.ends().await, "the stream ended");
}

#[tokio::test]
async fn a_reset_ends_the_streams_of_carts_that_no_longer_exist() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    let mut events = h.events(&cart).await;
    events.next().await;
    let (status, _) = h.post("/sandbox/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(events.ends().await, "the stream ended");
}
