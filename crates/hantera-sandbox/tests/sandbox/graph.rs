use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{error_code, Harness};

async fn graph(h: &Harness, token: &str, query: Value) -> (StatusCode, Value) {
    let response = h
        .http
        .post(h.url("/resources/graph"))
        .bearer_auth(token)
        .json(&query)
        .send()
        .await
        .expect("graph request");
    let status = response.status();
    (status, response.json().await.expect("JSON"))
}

fn lookup(reference: &str) -> Value {
    let quoted = reference.replace('\'', "''");
    json!([{"edge": "payments", "alias": "found",
            "filter": format!("externalReference == '{quoted}'"),
            "node": {"fields": ["paymentId", "paymentNumber", "providerKey",
                                "externalReference", "currencyCode"]}}])
}

#[tokio::test]
async fn the_graph_finds_a_payment_by_external_reference_keyed_by_alias() {
    let h = Harness::start().await;
    let token = h.token().await;
    let id = "0199a9b6-8608-7360-b98b-d2f9adeb2848";
    h.create_payment(&token, id, "it's_1", json!(1)).await;
    h.create_payment(&token, "new", "other", json!(1)).await;

    let (status, body) = graph(&h, &token, lookup("it's_1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"found": {"nodes": [{"paymentId": id, "paymentNumber": "MOCK-1001",
            "providerKey": "mock", "externalReference": "it's_1", "currencyCode": "SEK"}]}})
    );
}

#[tokio::test]
async fn the_graph_answers_no_nodes_for_an_unknown_external_reference() {
    let h = Harness::start().await;
    let token = h.token().await;
    let (status, body) = graph(&h, &token, lookup("nobody")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"found": {"nodes": []}}));
}

#[tokio::test]
async fn edges_filters_and_fields_the_sandbox_lacks_answer_400_with_a_reason() {
    let h = Harness::start().await;
    let token = h.token().await;
    for query in [
        json!([{"edge": "orders", "node": {"fields": ["orderId"]}}]),
        json!([{"edge": "payments", "filter": "createdAt > now - 7 days"}]),
        json!([{"edge": "payments", "node": {"fields": ["nope"]}}]),
        json!([{"edge": "payments", "navigate": []}]),
    ] {
        let (status, body) = graph(&h, &token, query.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error_code(&body), "INVALID_QUERY");
        assert!(body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}
