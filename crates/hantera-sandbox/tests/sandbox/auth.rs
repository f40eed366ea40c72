use std::time::Duration;

use hantera_sandbox::SandboxConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{error_code, Harness};

#[tokio::test]
async fn the_token_endpoint_issues_a_bearer_token_for_the_configured_client() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "psp-gateway"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().expect("access_token");
    assert!(
        token.len() >= 32,
        "a token should be long enough to be unguessable"
    );
    let other = h.token().await;
    assert_ne!(token, other, "tokens are random");
}

#[tokio::test]
async fn wrong_client_credentials_are_refused_with_401_invalid_client() {
    let h = Harness::start().await;
    for (id, secret) in [("psp-gateway", "wrong"), ("someone", "sandbox-secret")] {
        let response = h
            .http
            .post(h.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_client");
    }
}

#[tokio::test]
async fn a_grant_other_than_client_credentials_is_refused_with_400() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url("/oauth/token"))
        .form(&[("grant_type", "password"), ("client_id", "psp-gateway")])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn resources_without_a_bearer_token_or_with_an_unknown_one_answer_401_unauthorized() {
    let h = Harness::start().await;
    let batch = json!([{"type": "query"}]);
    let path = "/resources/actors/payment/0199a9b6-8608-7360-b98b-d2f9adeb2848";

    let response = h
        .http
        .post(h.url(path))
        .json(&batch)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), "UNAUTHORIZED");

    let (status, body) = h
        .actor("not-a-token", &path["/resources/actors/".len()..], batch)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "UNAUTHORIZED");

    let response = h
        .http
        .post(h.url("/resources/graph"))
        .json(&json!([]))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_token_is_refused_with_401_unauthorized() {
    // A zero lifetime makes every token expire the moment it is issued, which tests
    // expiry without waiting.
    let h = Harness::start_with(SandboxConfig {
        token_ttl: Duration::ZERO,
        ..SandboxConfig::default()
    })
    .await;
    let token = h.token().await;
    let (status, body) = h
        .actor(
            &token,
            "payment/0199a9b6-8608-7360-b98b-d2f9adeb2848",
            json!([{"type": "query"}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{body}"
    );
}

#[test]
fn the_client_secret_never_appears_in_debug_output() {
    let config = SandboxConfig {
        client_secret: "hunter2-very-secret".into(),
        ..SandboxConfig::default()
    };
    let printed = format!("{config:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("psp-gateway"), "{printed}");
    let sandbox = hantera_sandbox::Sandbox::new(config);
    assert!(!format!("{sandbox:?}").contains("hunter2"));
}
