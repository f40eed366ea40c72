//! Callers who mean harm get nothing useful: rate limits in front of the PSP-costly
//! storefront routes, request ids they cannot use to forge logs, no upstream error text,
//! `/metrics` behind a token or on its own address, and one error shape for every error.

use std::time::Duration;

use serde_json::{json, Value};
use tests::*;

/// The status, the body and the `x-request-id` of an answer, after checking that the body
/// has the error shape and carries that request id.
async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp.text().await.expect("body");
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: the error is not JSON ({e}): {text:?}"));
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let error = &body["errors"][0];
    assert!(error["code"].is_string(), "{status}: {body}");
    assert!(error["message"].is_string(), "{status}: {body}");
    assert!(error["details"].is_object(), "{status}: {body}");
    assert_eq!(
        error["details"]["requestId"].as_str(),
        id.as_deref(),
        "{status}: the details carry the answer's request id: {body}"
    );
    (status, body)
}

fn code(body: &Value) -> &str {
    body["errors"][0]["code"].as_str().unwrap_or_default()
}

async fn pay(gateway: &str, cart: &str, confirm: bool) -> reqwest::Response {
    let suffix = if confirm { "/confirm" } else { "" };
    http()
        .post(format!(
            "{gateway}/ingress/commerce/carts/{cart}/payment/mock{suffix}"
        ))
        .json(&json!({ "returnUrl": "http://127.0.0.1:9/thanks" }))
        .send()
        .await
        .expect("storefront call")
}

#[tokio::test]
async fn a_client_beyond_its_rate_limit_gets_429_with_retry_after_on_checkout_and_confirm() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[
        ("PSP_SERVER__RATE_LIMIT__CLIENT_BURST", "4"),
        ("PSP_SERVER__RATE_LIMIT__CLIENT_PER_MINUTE", "1"),
    ]);
    for _ in 0..4 {
        let cart = uuid::Uuid::new_v4().to_string();
        let (status, body) = error_of(pay(&gateway.url, &cart, false).await).await;
        assert_eq!((status, code(&body)), (404, "CART_NOT_FOUND"));
    }
    for confirm in [false, true] {
        let cart = uuid::Uuid::new_v4().to_string();
        let resp = pay(&gateway.url, &cart, confirm).await;
        let retry_after: u64 = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let (status, body) = error_of(resp).await;
        assert_eq!((status, code(&body)), (429, "RATE_LIMITED"));
        assert_eq!(body["errors"][0]["details"]["limit"], "client");
        assert_eq!(
            body["errors"][0]["details"]["retryAfterSeconds"],
            retry_after
        );
    }
    // Webhooks and health are not storefront calls.
    let health = http()
        .get(format!("{}/healthz", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics = http()
        .get(format!("{}/metrics", gateway.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"psp_gateway_rate_limited_total{route="confirm",scope="client"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_cart_beyond_its_rate_limit_gets_429_while_other_carts_are_served() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[
        ("PSP_SERVER__RATE_LIMIT__CART_BURST", "2"),
        ("PSP_SERVER__RATE_LIMIT__CART_PER_MINUTE", "1"),
    ]);
    let product = a_product(&sandbox.url).await;
    let (busy, _) = create_cart(&sandbox.url, &[(&product, 1)]).await;
    let (other, _) = create_cart(&sandbox.url, &[(&product, 1)]).await;
    let first = checkout(&gateway.url, &busy).await;
    assert_eq!(checkout(&gateway.url, &busy).await, first);
    for confirm in [false, true] {
        let (status, body) = error_of(pay(&gateway.url, &busy, confirm).await).await;
        assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "{body}");
        assert_eq!(body["errors"][0]["details"]["limit"], "cart");
    }
    checkout(&gateway.url, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_taken_only_when_short_and_safe_and_logs_carry_no_colour_codes() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let (gateway, logs) = files.start_logged(&[("RUST_LOG", "info,tower_http=debug")]);
    let with_id = |id: &str| {
        http()
            .get(format!("{}/healthz", gateway.url))
            .header("x-request-id", id)
            .send()
    };
    let id_of =
        |resp: &reqwest::Response| resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let kept = with_id("shop-7.checkout_42").await.unwrap();
    assert_eq!(id_of(&kept), "shop-7.checkout_42");
    let forged = "abc method=DELETE request_id=forged-by-caller";
    let replaced = with_id(forged).await.unwrap();
    let made = id_of(&replaced);
    assert_ne!(made, forged);
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    let long = "a".repeat(60_000);
    let replaced = with_id(&long).await.unwrap();
    assert!(id_of(&replaced).len() <= 64);
    // An error answer carries the same id in its details.
    let missing = http()
        .get(format!("{}/no/such/route", gateway.url))
        .header("x-request-id", "err-1")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(missing).await;
    assert_eq!((status, code(&body)), (404, "NOT_FOUND"));
    assert_eq!(body["errors"][0]["details"]["requestId"], "err-1");

    wait_for("the request log lines", Duration::from_secs(10), || async {
        let lines = logs.lock().unwrap().clone();
        (lines.iter().any(|l| l.contains("err-1")) && lines.iter().any(|l| l.contains(&made)))
            .then_some(())
    })
    .await;
    let lines = logs.lock().unwrap().clone();
    assert!(lines.iter().any(|l| l.contains("shop-7.checkout_42")));
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "a colour code in {line:?}");
        assert!(
            !line.contains("forged-by-caller"),
            "a forged field in {line:?}"
        );
        assert!(line.len() < 2_000, "a line of {} bytes", line.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psp_error_text_never_reaches_the_storefront() {
    let sandbox = start_sandbox();
    let psp = Upstream::answering(
        401,
        r#"{"error":{"code":"unauthorized","message":"Invalid API Key provided: mock_sk_live_4eC39HqLyjWDarjtT1zdp7dc"}}"#,
    )
    .await;
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[("PSP_PROVIDERS__MOCK__API_BASE", psp.url.as_str())]);
    let product = a_product(&sandbox.url).await;
    let (cart_id, _) = create_cart(&sandbox.url, &[(&product, 1)]).await;
    let resp = pay(&gateway.url, &cart_id, false).await;
    let (status, body) = error_of(resp).await;
    assert_eq!((status, code(&body)), (502, "PSP_REJECTED"));
    let text = body.to_string();
    assert!(psp.connections() > 0, "the PSP was asked");
    assert!(!text.contains("Invalid API Key"), "{text}");
    assert!(!text.contains("mock_sk_live"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hantera_error_text_never_reaches_the_storefront_or_the_readiness_probe() {
    let hantera = Upstream::answering(
        401,
        r#"{"errors":[{"code":"invalid_client","message":"tenant acme-prod-7 client psp-gateway disabled by ops@acme"}]}"#,
    )
    .await;
    let files = GatewayFiles::new(&hantera.url, "");
    let gateway = files.start(&[]);
    let ready = http()
        .get(format!("{}/readyz", gateway.url))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(ready).await;
    assert_eq!((status, code(&body)), (503, "NOT_READY"));
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["store"], "ok");
    assert_eq!(body["hantera"], "unavailable");
    assert!(hantera.connections() > 0, "Hantera was asked");
    assert!(!body.to_string().contains("acme"), "{body}");

    let resp = pay(&gateway.url, &uuid::Uuid::new_v4().to_string(), false).await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.to_string().contains("acme"), "{body}");

    // Hantera gone altogether: the connection error stays in the log too.
    drop(hantera);
    let ready = http()
        .get(format!("{}/readyz", gateway.url))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(ready).await;
    assert_eq!(status, 503);
    assert_eq!(body["hantera"], "unavailable");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
}

#[tokio::test]
async fn metrics_behind_a_token_want_it() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let token = "metrics-token-for-the-scraper";
    let gateway = files.start(&[("PSP_SERVER__METRICS_TOKEN", token)]);
    let url = format!("{}/metrics", gateway.url);
    let (status, body) = error_of(http().get(&url).send().await.unwrap()).await;
    assert_eq!((status, code(&body)), (401, "INVALID_TOKEN"));
    let wrong = http()
        .get(&url)
        .bearer_auth("metrics-token-for-the-scrapes")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(wrong).await.0, 401);
    let scraped = http().get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("psp_gateway_"));
}

#[tokio::test]
async fn metrics_on_their_own_address_are_not_served_on_the_public_one() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let gateway = files.start(&[("PSP_SERVER__METRICS_LISTEN", listen.as_str())]);
    let public = http()
        .get(format!("{}/metrics", gateway.url))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(public).await;
    assert_eq!((status, code(&body)), (404, "NOT_FOUND"));
    let private = http()
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    assert!(private.text().await.unwrap().contains("psp_gateway_"));
    let other = http()
        .get(format!("http://{listen}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(other).await.0, 404);
}

#[tokio::test]
async fn every_error_has_the_error_shape() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(
        &sandbox.url,
        &format!(
            "[providers.kustom]\napi_key = \"kco_test_api_sandbox\"\napi_base = \"{}/fakes/kustom\"\n",
            sandbox.url
        ),
    );
    let gateway = files.start(&[]);
    let gw = &gateway.url;
    let big = vec![b' '; 70_000];
    let c = http();
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "an unknown route",
            c.get(format!("{gw}/no/such/route")),
            404,
            "NOT_FOUND",
        ),
        (
            "GET on a POST route",
            c.get(format!("{gw}/webhooks/mock")),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "POST on a GET route",
            c.post(format!("{gw}/healthz")),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "a large checkout body",
            c.post(format!(
                "{gw}/ingress/commerce/carts/{}/payment/mock",
                uuid::Uuid::new_v4()
            ))
            .body(big.clone()),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "a large webhook body",
            c.post(format!("{gw}/webhooks/mock")).body(big.clone()),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "a large body on a provider's route",
            c.post(format!("{gw}/providers/kustom/validate"))
                .body(big.clone()),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "a path parameter of the wrong type",
            c.get(format!("{gw}/admin/jobs/not-a-number"))
                .bearer_auth(ADMIN_TOKEN),
            400,
            "INVALID_PATH",
        ),
        (
            "a query that does not parse",
            c.get(format!("{gw}/admin/failed?kind=a&kind=b"))
                .bearer_auth(ADMIN_TOKEN),
            400,
            "INVALID_QUERY",
        ),
    ];
    for (what, request, want_status, want_code) in cases {
        let (status, body) = error_of(request.send().await.unwrap()).await;
        assert_eq!(
            (status, code(&body)),
            (want_status, want_code),
            "{what}: {body}"
        );
    }
}
