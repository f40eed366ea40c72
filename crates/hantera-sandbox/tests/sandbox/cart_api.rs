//! The storefront SDK's cart mutations, one by one, in the shapes of its `Cart` type.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{error_code, number, Harness};

fn path(cart: &str, action: &str) -> String {
    format!("/ingress/commerce/carts/{cart}/{action}")
}

/// A cart with one line of `product` and that line's id.
async fn cart_with(h: &Harness, product: &str, quantity: i64) -> (String, String) {
    let cart = h.new_cart("default").await;
    let (status, rendered) = h.add_item(&cart, product, quantity).await;
    assert_eq!(status, StatusCode::OK, "{rendered}");
    let item = rendered["items"][0]["cartItemId"]
        .as_str()
        .expect("cartItemId")
        .to_owned();
    (cart, item)
}

#[tokio::test]
async fn set_quantity_replaces_a_lines_quantity_and_reprices_the_cart() {
    let h = Harness::start().await;
    let (cart, item) = cart_with(&h, "MUG-002", 1).await;
    let (status, rendered) = h
        .post(
            &path(&cart, "set-quantity"),
            json!({"cartItemId": item, "quantity": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rendered}");
    assert_eq!(rendered["items"][0]["quantity"], 4);
    // 4 × 149.00 = 596.00: past the free-shipping threshold.
    assert_eq!(number(&rendered["items"][0]["total"]), "596.00");
    assert_eq!(number(&rendered["shippingTotal"]), "0.00");
    assert_eq!(number(&rendered["orderTotal"]), "596.00");
}

#[tokio::test]
async fn set_quantity_refuses_zero_and_an_unknown_item_and_changes_nothing() {
    let h = Harness::start().await;
    let (cart, item) = cart_with(&h, "MUG-002", 2).await;
    let (status, body) = h
        .post(
            &path(&cart, "set-quantity"),
            json!({"cartItemId": item, "quantity": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_QUANTITY");
    let (status, body) = h
        .post(
            &path(&cart, "set-quantity"),
            json!({"cartItemId": "0199a9b6-8608-7360-b98b-d2f9adeb2848", "quantity": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "CART_ITEM_NOT_FOUND");
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(rendered["items"][0]["quantity"], 2);
}

#[tokio::test]
async fn remove_item_drops_the_line_and_an_empty_cart_owes_nothing() {
    let h = Harness::start().await;
    let (cart, item) = cart_with(&h, "CAP-003", 1).await;
    let (status, rendered) = h
        .post(&path(&cart, "remove-item"), json!({"cartItemId": item}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rendered}");
    assert_eq!(rendered["items"], json!([]));
    assert_eq!(number(&rendered["orderTotal"]), "0.00");
    assert_eq!(number(&rendered["shippingTotal"]), "0.00");
    let (status, body) = h
        .post(&path(&cart, "remove-item"), json!({"cartItemId": item}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "CART_ITEM_NOT_FOUND");
}

#[tokio::test]
async fn coupons_show_as_codes_and_promotions_and_come_off_the_total() {
    let h = Harness::start().await;
    let (cart, _) = cart_with(&h, "TSHIRT-001", 2).await;
    let (status, rendered) = h
        .post(
            &path(&cart, "add-coupon"),
            json!({"couponCode": "welcome10"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rendered}");
    assert_eq!(rendered["coupons"], json!(["WELCOME10"]));
    // 10% of 199.80 is 19.98 off the line.
    assert_eq!(number(&rendered["items"][0]["discount"]), "19.98");
    assert_eq!(number(&rendered["items"][0]["total"]), "179.82");
    let promotion = &rendered["promotions"][0];
    assert_eq!(number(&promotion["calculatedTotal"]), "19.98");
    assert_eq!(promotion["description"], "10% off every item");
    for field in ["messageRendered", "messageTemplate", "messageType"] {
        assert!(promotion.get(field).is_some(), "promotion lacks {field}");
    }

    let (_, rendered) = h
        .post(
            &path(&cart, "add-coupon"),
            json!({"couponCode": "FREESHIP"}),
        )
        .await;
    assert_eq!(number(&rendered["shippingTotal"]), "49.00");
    assert_eq!(number(&rendered["shippingDiscount"]), "49.00");
    assert_eq!(number(&rendered["shippingTax"]), "0.00");
    assert_eq!(number(&rendered["orderTotal"]), "179.82");

    let (status, body) = h
        .post(
            &path(&cart, "add-coupon"),
            json!({"couponCode": "FREESHIP"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "COUPON_ALREADY_ADDED");
    let (status, body) = h
        .post(&path(&cart, "add-coupon"), json!({"couponCode": "BOGUS"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "COUPON_NOT_FOUND");

    let (status, rendered) = h
        .post(
            &path(&cart, "remove-coupon"),
            json!({"couponCode": "WELCOME10"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rendered["coupons"], json!(["FREESHIP"]));
    assert_eq!(number(&rendered["orderTotal"]), "199.80");
    let (status, body) = h
        .post(
            &path(&cart, "remove-coupon"),
            json!({"couponCode": "WELCOME10"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "COUPON_NOT_IN_CART");
}

#[tokio::test]
async fn address_sets_delivery_and_invoice_addresses_within_the_profiles_countries() {
    let h = Harness::start().await;
    let cart = h.new_cart("eu").await;
    let address = json!({"name": "Ada Lovelace", "addressLine1": "Unter den Linden 1",
                         "city": "Berlin", "postalCode": "10117", "countryCode": "de"});
    let recipient = json!({"name": "Analytical Engines GmbH", "city": "Wien",
                           "countryCode": "AT", "taxId": "ATU12345678", "taxIdType": "vat",
                           "taxCountryCode": "AT"});
    let (status, rendered) = h
        .post(
            &path(&cart, "address"),
            json!({"address": address, "invoiceRecipient": recipient}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rendered}");
    assert_eq!(rendered["address"]["city"], "Berlin");
    assert_eq!(
        rendered["address"]["countryCode"], "DE",
        "country codes are kept in upper case"
    );
    assert_eq!(rendered["invoiceRecipient"]["taxId"], "ATU12345678");
    assert_eq!(rendered["invoiceAddress"], rendered["invoiceRecipient"]);

    let (status, rendered) = h
        .post(
            &path(&cart, "address"),
            json!({"invoiceRecipient": "unset"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rendered["invoiceRecipient"], Value::Null);
    assert_eq!(
        rendered["address"]["city"], "Berlin",
        "unsetting the invoice keeps the address"
    );

    let (status, body) = h
        .post(
            &path(&cart, "address"),
            json!({"address": {"city": "Stockholm", "countryCode": "SE"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_COUNTRY");
    let (status, body) = h
        .post(
            &path(&cart, "address"),
            json!({"address": {"town": "Berlin"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&body),
        "INVALID_BODY",
        "a misspelt field is refused"
    );
    let (status, body) = h.post(&path(&cart, "address"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_BODY");
}

#[tokio::test]
async fn email_and_phone_are_checked_and_shown() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    let (status, rendered) = h
        .post(&path(&cart, "email"), json!({"email": " ada@example.com "}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rendered}");
    assert_eq!(rendered["email"], "ada@example.com");
    let (status, body) = h
        .post(&path(&cart, "email"), json!({"email": "not an address"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_EMAIL");

    let (status, rendered) = h
        .post(&path(&cart, "phone"), json!({"phone": "+46 70 123 45 67"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rendered["phone"], "+46 70 123 45 67");
    let (status, body) = h
        .post(&path(&cart, "phone"), json!({"phone": "call me"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_PHONE");
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(rendered["email"], "ada@example.com");
    assert_eq!(rendered["phone"], "+46 70 123 45 67");
}

#[tokio::test]
async fn custom_fields_are_set_shown_without_prefix_and_removed() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    let (status, rendered) = h
        .post(
            &path(&cart, "set-field/giftMessage"),
            json!({"value": {"text": "Happy birthday", "wrap": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rendered}");
    assert_eq!(
        rendered["fields"],
        json!({"giftMessage": {"text": "Happy birthday", "wrap": true}})
    );
    let (_, inspected) = h.get(&format!("/sandbox/carts/{cart}")).await;
    assert!(
        inspected["ticket"]["dynamic"]["field:giftMessage"].is_object(),
        "stored as a field:-prefixed dynamic field: {inspected}"
    );
    // The SDK posts remove-field with no body at all.
    let response = h
        .http
        .post(h.url(&path(&cart, "remove-field/giftMessage")))
        .header("content-type", "application/json")
        .send()
        .await
        .expect("remove-field");
    assert_eq!(response.status(), StatusCode::OK);
    let rendered: Value = response.json().await.expect("JSON");
    assert_eq!(rendered["fields"], json!({}));

    let (status, body) = h
        .post(&path(&cart, "set-field/has%20space"), json!({"value": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_FIELD_KEY");
    let (status, body) = h
        .post(&path(&cart, "set-field/x"), json!({"wrong": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_BODY");
}

/// Every mutation the SDK can send, with a body that would succeed on an open cart.
pub(crate) fn every_mutation(item: &str) -> Vec<(&'static str, Value)> {
    vec![
        (
            "add-item",
            json!({"productNumber": "MUG-002", "quantity": 1}),
        ),
        ("set-quantity", json!({"cartItemId": item, "quantity": 3})),
        ("add-coupon", json!({"couponCode": "VIP20"})),
        ("remove-coupon", json!({"couponCode": "VIP20"})),
        (
            "address",
            json!({"address": {"city": "Malmö", "countryCode": "SE"}}),
        ),
        ("email", json!({"email": "ada@example.com"})),
        ("phone", json!({"phone": "+46701234567"})),
        ("set-field/note", json!({"value": "leave at the door"})),
        ("remove-field/note", json!({})),
        ("remove-item", json!({"cartItemId": item})),
    ]
}

#[tokio::test]
async fn a_completed_or_rejected_cart_refuses_every_mutation_with_cart_not_open() {
    let h = Harness::start().await;
    for (end, state) in [("complete", "completed"), ("reject", "rejected")] {
        let (cart, item) = cart_with(&h, "TSHIRT-001", 1).await;
        let (status, _) = h
            .actor_once(&format!("ticket/{cart}"), json!([{"type": end}]))
            .await;
        assert_eq!(status, StatusCode::OK);
        for (action, body) in every_mutation(&item) {
            let (status, answer) = h.post(&path(&cart, action), body).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{action} on a {state} cart"
            );
            assert_eq!(error_code(&answer), "CART_NOT_OPEN", "{action}");
            assert_eq!(answer["errors"][0]["details"]["cartState"], state);
            assert!(
                answer["errors"][0]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(state),
                "the message says why: {answer}"
            );
        }
    }
}

#[tokio::test]
async fn cancel_order_cancels_an_uncaptured_order_and_explains_every_refusal() {
    let h = Harness::start().await;
    let (cart, _) = cart_with(&h, "TSHIRT-001", 1).await;
    let (status, body) = h.post(&path(&cart, "cancel-order"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "NO_ORDER");

    h.actor_once(&format!("ticket/{cart}"), json!([{"type": "complete"}]))
        .await;
    let (status, rendered) = h.post(&path(&cart, "cancel-order"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rendered}");
    assert_eq!(rendered["cartState"], "completed");
    let (_, inspected) = h.get(&format!("/sandbox/carts/{cart}")).await;
    assert_eq!(inspected["order"]["orderState"], "cancelled");

    let (status, body) = h.post(&path(&cart, "cancel-order"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "CANCEL_ORDER_FAILED");
}

#[tokio::test]
async fn the_ingress_answers_cors_preflights_for_browser_storefronts_on_other_origins() {
    let h = Harness::start().await;
    let response = h
        .http
        .request(
            reqwest::Method::OPTIONS,
            h.url("/ingress/commerce/carts/0199a9b6-8608-7360-b98b-d2f9adeb2848/add-item"),
        )
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let allowed = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(allowed("access-control-allow-origin"), "*");
    assert!(allowed("access-control-allow-methods").contains("POST"));
    assert_eq!(allowed("access-control-allow-headers"), "content-type");
    let response = h
        .http
        .get(h.url("/ingress/commerce/cart-profiles"))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .expect("profiles");
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
}
