//! The fake Kustom over HTTP: Kustom's status machine, its error shape, its amount rules,
//! its authentication, and the hosted page that stands in for the iframe.

use crate::common;

use common::{world, World, API_KEY};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn order() -> Value {
    json!({
        "purchase_country": "SE", "purchase_currency": "SEK", "locale": "sv-SE",
        "order_amount": 50000, "order_tax_amount": 4545,
        "order_lines": [{
            "type": "physical", "reference": "19-402-USA", "name": "Yellow T-Shirt",
            "quantity": 5, "quantity_unit": "pcs", "unit_price": 10000, "tax_rate": 1000,
            "total_amount": 50000, "total_discount_amount": 0, "total_tax_amount": 4545
        }],
        "merchant_reference1": "cart-1",
        "merchant_urls": {
            "terms": "https://shop.example/terms",
            "checkout": "https://shop.example/checkout?kustom_order_id={checkout.order.id}",
            "confirmation": "https://shop.example/confirmation?kustom_order_id={checkout.order.id}",
            "push": "http://127.0.0.1:9/push?kustom_order_id={checkout.order.id}"
        }
    })
}

async fn post(w: &World, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", w.fake_base))
        .header("Authorization", format!("Basic {API_KEY}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get(w: &World, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", w.fake_base))
        .header("Authorization", format!("Basic {API_KEY}"))
        .send()
        .await
        .unwrap()
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["correlation_id"].is_string(),
        "Kustom's error shape: {body}"
    );
    assert!(
        body["error_messages"].is_array(),
        "Kustom's error shape: {body}"
    );
    (status, body)
}

#[tokio::test]
async fn a_checkout_order_is_created_with_201_and_a_location_and_read_back_there() {
    let w = world(json!({})).await;
    let resp = post(&w, "/checkout/v3/orders", &order()).await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let created: Value = resp.json().await.unwrap();
    let id = created["order_id"].as_str().unwrap();
    assert_eq!(location, format!("{}/checkout/v3/orders/{id}", w.fake_base));
    assert_eq!(created["status"], "checkout_incomplete");
    assert!(created["html_snippet"]
        .as_str()
        .unwrap()
        .contains("<iframe"));
    let read: Value = client()
        .get(&location)
        .header("Authorization", format!("Basic {API_KEY}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["order_id"], id);
    let (status, body) = error_of(get(&w, &format!("/ordermanagement/v1/orders/{id}")).await).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (404, Some("NO_SUCH_ORDER"))
    );
}

#[tokio::test]
async fn orders_kustom_would_refuse_are_refused_with_bad_value_and_every_fault_named() {
    let w = world(json!({})).await;
    let mut bad = order();
    bad["order_lines"][0]["total_tax_amount"] = json!(5000);
    bad["order_tax_amount"] = json!(5000);
    bad["order_amount"] = json!(50001);
    let (status, body) = error_of(post(&w, "/checkout/v3/orders", &bad).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_code"], "BAD_VALUE");
    assert_eq!(
        body["error_messages"],
        json!([
            "Bad value: order_lines[0].total_tax_amount",
            "Bad value: order_amount"
        ])
    );
    let (status, _) = error_of(post(&w, "/checkout/v3/orders", &json!("not an order")).await).await;
    assert_eq!(status, 400);
    assert_eq!(w.fake.orders().len(), 0);
}

#[tokio::test]
async fn wrong_credentials_are_answered_401_in_kustoms_shape() {
    let w = world(json!({})).await;
    let resp = client()
        .post(format!("{}/checkout/v3/orders", w.fake_base))
        .header("Authorization", "Basic kco_test_api_nope")
        .json(&order())
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
}

#[tokio::test]
async fn an_order_changes_only_while_incomplete_and_after_purchase_is_read_only() {
    let w = world(json!({})).await;
    let created: Value = post(&w, "/checkout/v3/orders", &order())
        .await
        .json()
        .await
        .unwrap();
    let id = created["order_id"].as_str().unwrap().to_string();
    let mut update = json!({
        "order_amount": 100000, "order_tax_amount": 9091,
        "order_lines": [{
            "type": "physical", "name": "Yellow T-Shirt", "quantity": 10, "unit_price": 10000,
            "tax_rate": 1000, "total_amount": 100000, "total_discount_amount": 0,
            "total_tax_amount": 9091
        }]
    });
    let resp = post(&w, &format!("/checkout/v3/orders/{id}"), &update).await;
    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["order_amount"], 100000);
    assert_eq!(
        updated["merchant_reference1"], "cart-1",
        "a partial update keeps the rest"
    );

    // An update that breaks the sums is refused and changes nothing.
    update["order_amount"] = json!(99999);
    let (status, _) = error_of(post(&w, &format!("/checkout/v3/orders/{id}"), &update).await).await;
    assert_eq!(status, 400);
    assert_eq!(w.fake.order(&id).unwrap().checkout["order_amount"], 100000);

    let done: Value = post(
        &w,
        &format!("/_test/orders/{id}/complete"),
        &json!({ "skip_push": true }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(done["result"], "completed");
    assert_eq!(
        done["confirmation_url"],
        format!("https://shop.example/confirmation?kustom_order_id={id}")
    );
    let read: Value = get(&w, &format!("/checkout/v3/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "checkout_complete");
    update["order_amount"] = json!(100000);
    let (status, body) =
        error_of(post(&w, &format!("/checkout/v3/orders/{id}"), &update).await).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (403, Some("READ_ONLY_ORDER"))
    );
    let om: Value = get(&w, &format!("/ordermanagement/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(om["status"], "AUTHORIZED");
    assert_eq!(om["order_amount"], 100000);
    assert_eq!(om["remaining_authorized_amount"], 100000);
    assert_eq!(om["merchant_reference1"], "cart-1");
}

#[tokio::test]
async fn the_hosted_page_completes_the_purchase_and_sends_the_whole_page_to_the_confirmation() {
    let w = world(json!({})).await;
    let created: Value = post(&w, "/checkout/v3/orders", &order())
        .await
        .json()
        .await
        .unwrap();
    let id = created["order_id"].as_str().unwrap();
    let page = client()
        .get(format!("{}/checkout/{id}", w.fake_base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Complete purchase"), "{page}");
    assert!(page.contains("Yellow T-Shirt"), "{page}");
    assert!(page.contains("500.00 SEK"), "{page}");
    let done = client()
        .post(format!("{}/checkout/{id}/complete", w.fake_base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let confirmation = format!("https://shop.example/confirmation?kustom_order_id={id}");
    assert!(
        done.contains(&format!("window.top.location.href=\"{confirmation}\"")),
        "{done}"
    );
    assert_eq!(w.fake.order(id).unwrap().status(), "checkout_complete");
    let again = client()
        .post(format!("{}/checkout/{id}/complete", w.fake_base))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "a purchase is made once");
}

#[tokio::test]
async fn the_push_schedule_can_be_compressed_and_requests_are_counted() {
    let w = world(json!({})).await;
    let schedule: Value = client()
        .put(format!("{}/_test/push-schedule", w.fake_base))
        .header("Authorization", format!("Basic {API_KEY}"))
        .json(&json!({ "scale": 60000 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(schedule["first_ms"], 2);
    let created: Value = post(&w, "/checkout/v3/orders", &order())
        .await
        .json()
        .await
        .unwrap();
    let id = created["order_id"].as_str().unwrap();
    get(&w, &format!("/checkout/v3/orders/{id}")).await;
    let counted: Value = get(&w, "/_test/requests").await.json().await.unwrap();
    assert_eq!(counted["by_route"]["POST /checkout/v3/orders"], 1);
    assert_eq!(counted["order_reads"], 1);
}
