use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{error_code, exact, number, Harness};

const PAYMENT_A: &str = "0199a9b6-8608-7360-b98b-d2f9adeb2848";
const PAYMENT_B: &str = "0199a9b6-8608-7360-b98b-d2f9adeb2849";

async fn query_payment(h: &Harness, token: &str, id: &str) -> Value {
    let (status, body) = h
        .actor(token, &format!("payment/{id}"), json!([{"type": "query"}]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["query"].clone()
}

/// Completes a cart with a payment linked, as the gateway does.
fn link_and_complete(payment: &str) -> Value {
    json!([
        {"type": "applyCommands", "body": {"commands": [
            {"type": "createRelation", "relationKey": "payments", "nodeId": payment}]}},
        {"type": "complete"}
    ])
}

#[tokio::test]
async fn a_payment_is_created_at_the_chosen_uuid_with_an_exact_amount_and_a_prefixed_number() {
    let h = Harness::start().await;
    let token = h.token().await;
    let (status, body) = h
        .create_payment(&token, PAYMENT_A, "mock_pay_1", exact("123.45"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"paths": [format!("resources/actors/payment/{PAYMENT_A}")], "data": {"create": "OK"}})
    );

    let payment = query_payment(&h, &token, PAYMENT_A).await;
    assert_eq!(payment["paymentId"], PAYMENT_A);
    assert_eq!(payment["paymentNumber"], "MOCK-1001");
    assert_eq!(payment["providerKey"], "mock");
    assert_eq!(payment["externalReference"], "mock_pay_1");
    assert_eq!(payment["currencyCode"], "SEK");
    let auth = &payment["authorizations"][0];
    assert_eq!(auth["authorizationNumber"], "mock_pay_1");
    assert_eq!(number(&auth["amount"]), "123.45");
    assert_eq!(auth["authorizationState"], "successful");

    let (status, _) = h
        .create_payment(&token, PAYMENT_B, "mock_pay_2", json!(10))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        query_payment(&h, &token, PAYMENT_B).await["paymentNumber"],
        "MOCK-1002",
        "the counter is per prefix and counts up"
    );
}

#[tokio::test]
async fn creating_a_payment_at_an_existing_id_answers_already_exists() {
    let h = Harness::start().await;
    let token = h.token().await;
    h.create_payment(&token, PAYMENT_A, "ref-1", json!(1)).await;
    let (status, body) = h.create_payment(&token, PAYMENT_A, "ref-2", json!(1)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "ALREADY_EXISTS");
}

#[tokio::test]
async fn an_external_reference_held_by_another_payment_answers_duplicate_id() {
    let h = Harness::start().await;
    let token = h.token().await;
    h.create_payment(&token, PAYMENT_A, "ref-1", json!(1)).await;
    let (status, body) = h.create_payment(&token, PAYMENT_B, "ref-1", json!(1)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "DUPLICATE_ID");
    let (status, _) = h
        .actor(
            &token,
            &format!("payment/{PAYMENT_B}"),
            json!([{"type": "query"}]),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the refused payment does not exist"
    );
}

#[tokio::test]
async fn new_as_the_id_creates_a_payment_at_a_generated_uuid() {
    let h = Harness::start().await;
    let token = h.token().await;
    let (status, body) = h.create_payment(&token, "new", "ref-new", json!(5)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let path = body["paths"][0].as_str().expect("a path");
    let id = path
        .strip_prefix("resources/actors/payment/")
        .expect("payment path");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(
        query_payment(&h, &token, id).await["externalReference"],
        "ref-new"
    );
}

#[tokio::test]
async fn unknown_actor_types_and_ids_that_are_neither_guids_nor_new_answer_not_found() {
    let h = Harness::start().await;
    let token = h.token().await;
    for path in ["order/new", "payment/not-a-guid", "ticket/123"] {
        let (status, body) = h.actor(&token, path, json!([{"type": "query"}])).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_code(&body), "NOT_FOUND");
    }
    let (status, body) = h
        .actor(
            &token,
            &format!("payment/{PAYMENT_A}"),
            json!([{"type": "query"}]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn malformed_batches_and_message_bodies_answer_invalid_message_body() {
    let h = Harness::start().await;
    let token = h.token().await;
    let path = format!("payment/{PAYMENT_A}");
    for batch in [
        json!({"type": "create"}),
        json!([]),
        json!([{"type": "create", "body": {"providerKey": "mock"}}]),
        json!([{"type": "create", "body": {"currencyCode": "SEK", "commands": [
            {"type": "createAuthorization", "authorizationNumber": "a", "amount": "lots"}]}}]),
        json!([{"type": "explode"}]),
    ] {
        let (status, body) = h.actor(&token, &path, batch.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{batch}: {body}");
        assert_eq!(error_code(&body), "INVALID_MESSAGE_BODY", "{batch}");
    }
}

#[tokio::test]
async fn a_charge_adds_a_charge_journal_entry_and_draws_down_the_authorization() {
    let h = Harness::start().await;
    let token = h.token().await;
    h.create_payment(&token, PAYMENT_A, "pay-1", exact("100.00"))
        .await;
    let path = format!("payment/{PAYMENT_A}");
    let (status, body) = h
        .actor(
            &token,
            &path,
            json!([{"type": "charge", "body": {"amount": exact("40.10"),
                "authorizationNumber": "pay-1", "transactionReference": "cap-1"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["charge"], "OK");
    let payment = query_payment(&h, &token, PAYMENT_A).await;
    let entry = &payment["journalEntries"][0];
    assert_eq!(entry["paymentJournalEntryType"], "charge");
    assert_eq!(number(&entry["amount"]), "40.10");
    assert_eq!(entry["transactionReference"], "cap-1");
    assert_eq!(number(&payment["authorizations"][0]["amount"]), "59.90");

    let (status, body) = h
        .actor(
            &token,
            &path,
            json!([{"type": "charge", "body": {"amount": 60, "authorizationNumber": "pay-1"}}]),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        error_code(&body),
        "INVALID_COMMAND",
        "more than is left is refused"
    );
}

#[tokio::test]
async fn a_duplicate_authorization_number_within_a_payment_is_invalid_command() {
    let h = Harness::start().await;
    let token = h.token().await;
    let (status, body) = h
        .actor(
            &token,
            &format!("payment/{PAYMENT_A}"),
            json!([{"type": "create", "body": {"currencyCode": "EUR", "commands": [
                {"type": "createAuthorization", "authorizationNumber": "x", "amount": 1},
                {"type": "createAuthorization", "authorizationNumber": "x", "amount": 2}]}}]),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "INVALID_COMMAND");
    assert_eq!(body["errors"][0]["details"]["messageIndex"], 0);
}

#[tokio::test]
async fn linking_a_payment_and_completing_the_cart_creates_an_order() {
    let h = Harness::start().await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "TSHIRT-001", 1).await;
    h.create_payment(&token, PAYMENT_A, "pay-1", json!(99.90))
        .await;

    let (status, body) = h
        .actor(
            &token,
            &format!("ticket/{cart}"),
            link_and_complete(PAYMENT_A),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"applyCommands": "OK", "complete": "OK"})
    );

    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(rendered["cartState"], "completed");
    assert_eq!(rendered["orderNumber"], "O1001");
    assert!(rendered["orderId"].is_string());

    let (_, inspected) = h.get(&format!("/sandbox/carts/{cart}")).await;
    assert_eq!(
        inspected["relations"],
        json!([{"relationKey": "payments", "nodeId": PAYMENT_A}])
    );
    assert_eq!(inspected["order"]["orderNumber"], "O1001");
    assert_eq!(inspected["order"]["paymentIds"], json!([PAYMENT_A]));
    // 99.90 plus 49.00 shipping below the free-shipping threshold.
    assert_eq!(number(&inspected["order"]["orderTotal"]), "148.90");
}

#[tokio::test]
async fn completing_a_completed_cart_answers_invalid_command_ticket_is_not_open() {
    let h = Harness::start().await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    let path = format!("ticket/{cart}");
    let (status, _) = h.actor(&token, &path, json!([{"type": "complete"}])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = h.actor(&token, &path, json!([{"type": "complete"}])).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "INVALID_COMMAND");
    assert_eq!(body["errors"][0]["message"], "ticket is not open");
}

#[tokio::test]
async fn a_batch_that_fails_part_way_applies_nothing() {
    let h = Harness::start().await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    let path = format!("ticket/{cart}");
    h.actor(&token, &path, json!([{"type": "complete"}])).await;
    h.create_payment(&token, PAYMENT_A, "pay-1", json!(1)).await;

    // The relation is valid on its own, but `complete` fails, so the batch must leave
    // the cart without the relation.
    let (status, body) = h.actor(&token, &path, link_and_complete(PAYMENT_A)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "INVALID_COMMAND");
    assert_eq!(body["errors"][0]["details"]["messageIndex"], 1);
    let (_, inspected) = h.get(&format!("/sandbox/carts/{cart}")).await;
    assert_eq!(inspected["relations"], json!([]));

    // The same holds for a payment create whose later message fails: no payment, and
    // its number is not used up.
    let (status, _) = h
        .actor(
            &token,
            &format!("payment/{PAYMENT_B}"),
            json!([{"type": "create", "body": {"currencyCode": "SEK", "externalReference": "b",
                     "commands": [{"type": "generatePaymentNumberByPrefix", "prefix": "MOCK-"}]}},
                   {"type": "charge", "body": {"amount": 0}}]),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (_, payments) = h.get("/sandbox/payments").await;
    assert_eq!(payments.as_array().map(Vec::len), Some(1));
    h.create_payment(&token, PAYMENT_B, "b", json!(1)).await;
    assert_eq!(
        query_payment(&h, &token, PAYMENT_B).await["paymentNumber"],
        "MOCK-1002"
    );
}

#[tokio::test]
async fn a_relation_to_a_payment_that_does_not_exist_is_invalid_command() {
    let h = Harness::start().await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    let (status, body) = h
        .actor(
            &token,
            &format!("ticket/{cart}"),
            link_and_complete(PAYMENT_A),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "INVALID_COMMAND");
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(rendered["cartState"], "open");
}

#[tokio::test]
async fn a_payment_created_earlier_in_the_same_batch_series_can_be_linked() {
    // The gateway creates the payment in one batch and links it in the next; the link
    // must see the payment at once.
    let h = Harness::start().await;
    let token = h.token().await;
    let cart = h.new_cart("eu").await;
    let (status, body) = h.create_payment(&token, "new", "ref", json!(0)).await;
    assert_eq!(status, StatusCode::OK);
    let id = body["paths"][0]
        .as_str()
        .and_then(|p| p.rsplit('/').next())
        .expect("id")
        .to_owned();
    let (status, body) = h
        .actor(&token, &format!("ticket/{cart}"), link_and_complete(&id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn rejecting_an_open_cart_closes_it_and_a_rejected_cart_cannot_be_completed() {
    let h = Harness::start().await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    let path = format!("ticket/{cart}");
    let (status, _) = h.actor(&token, &path, json!([{"type": "reject"}])).await;
    assert_eq!(status, StatusCode::OK);
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(rendered["cartState"], "rejected");
    let (status, body) = h.actor(&token, &path, json!([{"type": "complete"}])).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "INVALID_COMMAND");
}

#[tokio::test]
async fn data_is_keyed_by_alias_and_query_returns_the_actor() {
    let h = Harness::start().await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    let (status, body) = h
        .actor(
            &token,
            &format!("ticket/{cart}"),
            json!([{"type": "applyCommands", "alias": "fields", "body": {"commands": [
                       {"type": "setDynamicFields", "fields": {"field:giftMessage": "Hej"}}]}},
                   {"type": "query", "alias": "cart"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["fields"], "OK");
    assert_eq!(body["data"]["cart"]["ticketId"], cart);
    assert_eq!(body["data"]["cart"]["dynamic"]["field:giftMessage"], "Hej");
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(rendered["fields"], json!({"giftMessage": "Hej"}));
}

#[tokio::test]
async fn a_preview_batch_answers_but_changes_nothing() {
    let h = Harness::start().await;
    let token = h.token().await;
    let response = h
        .http
        .post(h.url(&format!("/resources/actors/payment/{PAYMENT_A}?preview")))
        .bearer_auth(&token)
        .json(&json!([{"type": "create", "body": {"currencyCode": "SEK"}}]))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["preview"], true);
    let (status, _) = h
        .actor(
            &token,
            &format!("payment/{PAYMENT_A}"),
            json!([{"type": "query"}]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Installs the bridge app's completion guard through the inspection API.
async fn install_completion_guard(h: &Harness, on: bool) {
    let response = reqwest::Client::new()
        .put(h.url("/sandbox/rules"))
        .json(&json!({"paymentsCoverTotal": on}))
        .send()
        .await
        .expect("PUT /sandbox/rules");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_the_completion_guard_a_cart_whose_payments_do_not_cover_it_is_not_completed() {
    let h = Harness::start().await;
    install_completion_guard(&h, true).await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "TSHIRT-001", 1).await;
    // The cart costs 148.90 (99.90 plus shipping); the authorization covers the item only.
    h.create_payment(&token, PAYMENT_A, "pay-1", json!(99.90))
        .await;

    let (status, body) = h
        .actor(
            &token,
            &format!("ticket/{cart}"),
            link_and_complete(PAYMENT_A),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "PAYMENTS_DO_NOT_COVER_TOTAL");
    assert_eq!(body["errors"][0]["details"]["orderTotal"], "148.90");
    // The whole batch was refused: the cart is open and nothing was linked.
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(rendered["cartState"], "open");
    let (_, inspected) = h.get(&format!("/sandbox/carts/{cart}")).await;
    assert_eq!(inspected["relations"], json!([]));
}

#[tokio::test]
async fn with_the_completion_guard_payments_that_cover_the_total_complete_the_cart() {
    let h = Harness::start().await;
    install_completion_guard(&h, true).await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "TSHIRT-001", 1).await;
    // Two payments together cover 148.90 exactly.
    h.create_payment(&token, PAYMENT_A, "pay-1", json!(100))
        .await;
    h.create_payment(&token, PAYMENT_B, "pay-2", json!(48.90))
        .await;
    let batch = json!([
        {"type": "applyCommands", "body": {"commands": [
            {"type": "createRelation", "relationKey": "payments", "nodeId": PAYMENT_A},
            {"type": "createRelation", "relationKey": "payments", "nodeId": PAYMENT_B}]}},
        {"type": "complete"}
    ]);
    let (status, body) = h.actor(&token, &format!("ticket/{cart}"), batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(rendered["cartState"], "completed");
}

#[tokio::test]
async fn without_the_bridge_app_hantera_completes_whatever_the_payments_cover() {
    let h = Harness::start().await;
    let (_, rules) = h.get("/sandbox/rules").await;
    assert_eq!(rules, json!({"paymentsCoverTotal": false}));
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "TSHIRT-001", 1).await;
    h.create_payment(&token, PAYMENT_A, "pay-1", json!(1)).await;
    let (status, body) = h
        .actor(
            &token,
            &format!("ticket/{cart}"),
            link_and_complete(PAYMENT_A),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
