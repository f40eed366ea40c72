use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{error_code, number, Harness};

/// Every field of the rendered cart in `docs/hantera-wire.md`.
const RENDERED_FIELDS: &[&str] = &[
    "cartId",
    "cartNumber",
    "cartState",
    "profileKey",
    "orderId",
    "orderNumber",
    "channelKey",
    "currencyCode",
    "taxIncluded",
    "locale",
    "email",
    "phone",
    "coupons",
    "fields",
    "productTotal",
    "orderTotal",
    "orderTaxTotal",
    "shippingTotal",
    "shippingTax",
    "shippingDiscount",
    "address",
    "invoiceAddress",
    "invoiceRecipient",
    "items",
    "promotions",
];

#[tokio::test]
async fn cart_profiles_list_the_seeded_profiles_in_hanteras_shape() {
    let h = Harness::start().await;
    let (status, body) = h.get("/ingress/commerce/cart-profiles").await;
    assert_eq!(status, StatusCode::OK);
    let profiles = body.as_array().expect("an array");
    let keys: Vec<&str> = profiles
        .iter()
        .filter_map(|p| p["profileKey"].as_str())
        .collect();
    assert_eq!(keys, ["default", "eu", "jp", "kw"]);
    assert_eq!(
        profiles[0],
        json!({"profileKey": "default", "channelKey": "web-default", "currencyCode": "SEK",
               "taxIncluded": true, "defaultCountryCode": "SE", "allowedCountries": ["SE"]})
    );
    assert_eq!(profiles[3]["taxIncluded"], false);
}

#[tokio::test]
async fn a_sek_cart_prices_three_items_at_25_percent_tax_included_with_shipping_exactly() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    let (status, rendered) = h.add_item(&cart, "TSHIRT-001", 3).await;
    assert_eq!(status, StatusCode::OK, "{rendered}");
    for field in RENDERED_FIELDS {
        assert!(rendered.get(field).is_some(), "rendered cart lacks {field}");
    }
    assert_eq!(rendered["cartId"], cart.as_str());
    assert_eq!(rendered["cartState"], "open");
    assert_eq!(rendered["currencyCode"], "SEK");
    assert_eq!(rendered["taxIncluded"], true);
    assert_eq!(rendered["locale"], "sv-SE");
    assert_eq!(rendered["orderId"], Value::Null);
    let item = &rendered["items"][0];
    assert_eq!(item["productNumber"], "TSHIRT-001");
    assert_eq!(item["quantity"], 3);
    assert_eq!(number(&item["unitPrice"]), "99.90");
    assert_eq!(number(&item["total"]), "299.70");
    assert_eq!(number(&item["tax"]), "59.94");
    assert_eq!(number(&item["discount"]), "0.00");
    assert_eq!(number(&rendered["productTotal"]), "299.70");
    // Below the profile's 500.00 free-shipping threshold: 49.00 shipping with 9.80 tax.
    assert_eq!(number(&rendered["shippingTotal"]), "49.00");
    assert_eq!(number(&rendered["shippingTax"]), "9.80");
    assert_eq!(number(&rendered["orderTotal"]), "348.70");
    assert_eq!(number(&rendered["orderTaxTotal"]), "69.74");

    let (_, fetched) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(fetched, rendered, "GET renders what add-item answered");
}

#[tokio::test]
async fn adding_a_product_already_in_the_cart_increases_that_line() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "MUG-002", 1).await;
    h.add_item(&cart, "CAP-003", 1).await;
    let (_, rendered) = h.add_item(&cart, "MUG-002", 2).await;
    let items = rendered["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["productNumber"], "MUG-002");
    assert_eq!(items[0]["quantity"], 3);
    // 3 × 149.00 + 249.50 = 696.50, which ships free; taxes 89.40 + 49.90.
    assert_eq!(number(&rendered["orderTotal"]), "696.50");
    assert_eq!(number(&rendered["orderTaxTotal"]), "139.30");
}

#[tokio::test]
async fn a_yen_cart_has_whole_yen_totals() {
    let h = Harness::start().await;
    let cart = h.new_cart("jp").await;
    let (status, rendered) = h.add_item(&cart, "SOCKS-004", 3).await;
    assert_eq!(status, StatusCode::OK);
    // 3 × 990 = 2970; 2970 × 0.1 / 1.1 = 270 exactly; shipping 500 carries 45.45…,
    // rounded to 45.
    assert_eq!(number(&rendered["orderTotal"]), "3470");
    assert_eq!(number(&rendered["orderTaxTotal"]), "315");
    let (_, rendered) = h.add_item(&cart, "TSHIRT-001", 1).await;
    // 1500 × 0.1 / 1.1 = 136.36…, rounded to 136.
    assert_eq!(number(&rendered["items"][1]["tax"]), "136");
    assert_eq!(number(&rendered["orderTotal"]), "4970");
    assert_eq!(number(&rendered["orderTaxTotal"]), "451");
}

#[tokio::test]
async fn a_dinar_cart_adds_tax_on_top_with_three_decimals() {
    let h = Harness::start().await;
    let cart = h.new_cart("kw").await;
    let (status, rendered) = h.add_item(&cart, "TOTE-005", 1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rendered["taxIncluded"], false);
    // 5.999 × 5% = 0.29995, rounded half away from zero to 0.300; shipping 1.500
    // adds 0.075 of tax.
    assert_eq!(number(&rendered["productTotal"]), "5.999");
    assert_eq!(number(&rendered["shippingTotal"]), "1.500");
    assert_eq!(number(&rendered["orderTaxTotal"]), "0.375");
    assert_eq!(number(&rendered["orderTotal"]), "7.874");
}

#[tokio::test]
async fn an_unknown_cart_and_a_malformed_cart_id_answer_404_not_found() {
    let h = Harness::start().await;
    for id in ["0199a9b6-8608-7360-b98b-d2f9adeb2848", "not-a-uuid"] {
        let (status, body) = h.get(&format!("/ingress/commerce/carts/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(error_code(&body), "NOT_FOUND");
        let (status, body) = h.add_item(id, "MUG-002", 1).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(error_code(&body), "NOT_FOUND");
    }
}

#[tokio::test]
async fn add_item_refuses_unknown_products_and_quantities_below_one() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    let (status, body) = h.add_item(&cart, "NOPE-999", 1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "PRODUCT_NOT_FOUND");
    for quantity in [json!(0), json!(-1), json!(1.5), json!("2")] {
        let (status, body) = h
            .post(
                &format!("/ingress/commerce/carts/{cart}/add-item"),
                json!({"productNumber": "MUG-002", "quantity": quantity}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{quantity}");
        assert_eq!(error_code(&body), "INVALID_QUANTITY", "{quantity}");
    }
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(rendered["items"], json!([]));
}

#[tokio::test]
async fn add_item_on_a_completed_cart_answers_cart_not_open() {
    let h = Harness::start().await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    h.actor(
        &token,
        &format!("ticket/{cart}"),
        json!([{"type": "complete"}]),
    )
    .await;
    let (status, body) = h.add_item(&cart, "MUG-002", 1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "CART_NOT_OPEN");
}

#[tokio::test]
async fn creating_a_cart_checks_the_profile_and_the_country() {
    let h = Harness::start().await;
    let (status, body) = h
        .post("/ingress/commerce/carts", json!({"profileKey": "mars"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_PROFILE");
    let (status, body) = h
        .post(
            "/ingress/commerce/carts",
            json!({"profileKey": "eu", "locale": "de-DE", "countryCode": "SE"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_COUNTRY");
    let (status, body) = h
        .post(
            "/ingress/commerce/carts",
            json!({"profileKey": "eu", "locale": "de-DE", "countryCode": "FR"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, rendered) = h
        .get(&format!(
            "/ingress/commerce/carts/{}",
            body["cartId"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(rendered["currencyCode"], "EUR");
    assert_eq!(number(&rendered["orderTotal"]), "0.00");
}
