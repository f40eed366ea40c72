//! The fake Stripe over raw HTTP: it must refuse what Stripe refuses, with Stripe's status
//! codes and error shapes, and replay what Stripe replays.

use crate::common;

use common::{http, start_fake, Fake, PUBLISHABLE_KEY, SECRET_KEY};
use psp_core::signature::unix_now;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use stripe::fake::{Faults, IntentStatus, PM_AUTHENTICATION_REQUIRED, PM_DECLINED, PM_VISA};

const CREATE: &[(&str, &str)] = &[
    ("amount", "1000"),
    ("currency", "sek"),
    ("capture_method", "manual"),
    ("automatic_payment_methods[enabled]", "true"),
    ("metadata[cart_id]", "c1"),
];

async fn post(fake: &Fake, path: &str, form: &[(&str, &str)], key: Option<&str>) -> Response {
    let mut req = http()
        .post(format!("{}{path}", fake.base))
        .bearer_auth(SECRET_KEY)
        .form(form);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    req.send().await.expect("the fake answers")
}

async fn json_of(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON answer"))
}

async fn create(fake: &Fake) -> Value {
    let (status, pi) = json_of(post(fake, "/v1/payment_intents", CREATE, None).await).await;
    assert_eq!(status, 200, "{pi}");
    pi
}

/// One request the fake must refuse as Stripe would.
struct Refusal {
    what: &'static str,
    method: Method,
    path: &'static str,
    body: &'static str,
    content_type: &'static str,
    auth: Option<&'static str>,
    status: u16,
    error_type: &'static str,
    code: Option<&'static str>,
    param: Option<&'static str>,
}

const FORM: &str = "application/x-www-form-urlencoded";

fn refusal(
    what: &'static str,
    body: &'static str,
    status: u16,
    code: Option<&'static str>,
    param: Option<&'static str>,
) -> Refusal {
    Refusal {
        what,
        method: Method::POST,
        path: "/v1/payment_intents",
        body,
        content_type: FORM,
        auth: Some(SECRET_KEY),
        status,
        error_type: "invalid_request_error",
        code,
        param,
    }
}

#[tokio::test]
async fn requests_real_stripe_rejects_are_rejected_with_stripes_error_shape() {
    let fake = start_fake(None).await;
    let pi = create(&fake).await;
    let id = pi["id"].as_str().unwrap().to_string();
    let leaked_path: &'static str =
        Box::leak(format!("/v1/payment_intents/{id}/capture").into_boxed_str());
    let cancel_path: &'static str =
        Box::leak(format!("/v1/payment_intents/{id}/cancel").into_boxed_str());
    let long_key = "k".repeat(41);
    let long_meta: &'static str =
        Box::leak(format!("amount=1000&currency=sek&metadata[{long_key}]=v").into_boxed_str());
    let cases = vec![
        refusal("an unknown parameter", "amount=1000&currency=sek&foo=bar", 400, Some("parameter_unknown"), Some("foo")),
        refusal("an unknown nested parameter", "amount=1000&currency=sek&automatic_payment_methods[enabled]=true&automatic_payment_methods[bogus]=1", 400, Some("parameter_unknown"), Some("automatic_payment_methods[bogus]")),
        refusal("an upper-case currency", "amount=1000&currency=SEK", 400, None, Some("currency")),
        refusal("an unknown currency", "amount=1000&currency=xyz", 400, None, Some("currency")),
        refusal("a decimal amount", "amount=12.5&currency=sek", 400, Some("parameter_invalid_integer"), Some("amount")),
        refusal("an amount in exponent form", "amount=1e3&currency=sek", 400, Some("parameter_invalid_integer"), Some("amount")),
        refusal("an amount with a sign", "amount=%2B100&currency=sek", 400, Some("parameter_invalid_integer"), Some("amount")),
        refusal("a missing amount", "currency=sek", 400, Some("parameter_missing"), Some("amount")),
        refusal("a missing currency", "amount=1000", 400, Some("parameter_missing"), Some("currency")),
        refusal("a zero amount", "amount=0&currency=sek", 400, Some("parameter_invalid_integer"), Some("amount")),
        refusal("more than eight digits", "amount=100000000&currency=sek", 400, Some("amount_too_large"), Some("amount")),
        refusal("a KWD amount whose last digit is not 0", "amount=5125&currency=kwd", 400, Some("invalid_charge_amount"), Some("amount")),
        refusal("fractional ISK", "amount=12345&currency=isk", 400, Some("invalid_charge_amount_no_decimal_compatible"), Some("amount")),
        refusal("an unknown capture method", "amount=1000&currency=sek&capture_method=later", 400, None, Some("capture_method")),
        refusal("a boolean that is not true or false", "amount=1000&currency=sek&automatic_payment_methods[enabled]=yes", 400, None, Some("automatic_payment_methods[enabled]")),
        refusal("automatic_payment_methods without enabled", "amount=1000&currency=sek&automatic_payment_methods[allow_redirects]=never", 400, Some("parameter_missing"), Some("automatic_payment_methods[enabled]")),
        refusal("a metadata key over 40 characters", long_meta, 400, None, None),
        refusal("a return_url without confirm", "amount=1000&currency=sek&return_url=https%3A%2F%2Fshop.example", 400, None, Some("return_url")),
        refusal("both payment method settings", "amount=1000&currency=sek&automatic_payment_methods[enabled]=true&payment_method_types[]=card", 400, Some("parameters_exclusive"), None),
        refusal("a value and an object under one name", "amount=1000&currency=sek&metadata=x&metadata[a]=b", 400, None, None),
        Refusal { content_type: "application/json", ..refusal("a JSON body", r#"{"amount":1000,"currency":"sek"}"#, 400, None, None) },
        Refusal { auth: None, status: 401, ..refusal("no API key", "amount=1000&currency=sek", 0, None, None) },
        Refusal { auth: Some("sk_test_wrong"), status: 401, ..refusal("a wrong API key", "amount=1000&currency=sek", 0, None, None) },
        Refusal { auth: Some(PUBLISHABLE_KEY), status: 401, ..refusal("the publishable key creating a PaymentIntent", "amount=1000&currency=sek", 0, None, None) },
        Refusal { method: Method::GET, path: "/v1/payment_intents/pi_doesnotexist", status: 404, ..refusal("an unknown PaymentIntent", "", 0, Some("resource_missing"), Some("intent")) },
        Refusal { path: leaked_path, ..refusal("capturing an unconfirmed PaymentIntent", "", 400, Some("payment_intent_unexpected_state"), None) },
        Refusal { path: leaked_path, ..refusal("capturing with a non-integer amount", "amount_to_capture=5.5", 400, Some("parameter_invalid_integer"), Some("amount_to_capture")) },
        Refusal { path: cancel_path, ..refusal("an unknown cancellation reason", "cancellation_reason=bored", 400, None, Some("cancellation_reason")) },
        Refusal { path: "/v1/webhook_endpoints", ..refusal("a webhook endpoint without a URL", "enabled_events[]=*", 400, Some("parameter_missing"), Some("url")) },
        Refusal { path: "/v1/webhook_endpoints", ..refusal("a webhook endpoint for an unknown event", "url=https%3A%2F%2Fx.example%2Fh&enabled_events[]=payment_intent.exploded", 400, None, Some("enabled_events[0]")) },
        Refusal { path: "/v1/webhook_endpoints", ..refusal("a webhook endpoint with a relative URL", "url=%2Fhooks&enabled_events[]=*", 400, None, Some("url")) },
        Refusal { method: Method::GET, path: "/v1/payment_intents/search", ..refusal("a search without a query", "", 400, Some("parameter_missing"), Some("query")) },
        Refusal { method: Method::GET, path: "/v1/payment_intents?limit=101", ..refusal("a list limit over 100", "", 400, None, Some("limit")) },
        Refusal { method: Method::GET, path: "/v1/charges", status: 404, ..refusal("a URL Stripe does not have", "", 0, None, None) },
        Refusal { method: Method::DELETE, path: "/v1/payment_intents", status: 404, ..refusal("a method the URL does not take", "", 0, None, None) },
    ];
    let before = fake.fake.intents().len();
    for case in cases {
        let mut req = http()
            .request(case.method.clone(), format!("{}{}", fake.base, case.path))
            .header("Content-Type", case.content_type);
        if let Some(key) = case.auth {
            req = req.bearer_auth(key);
        }
        if !case.body.is_empty() {
            req = req.body(case.body);
        }
        let resp = req.send().await.expect("the fake answers");
        assert!(
            resp.headers().contains_key("Request-Id"),
            "{}: Request-Id",
            case.what
        );
        let (status, body) = json_of(resp).await;
        assert_eq!(status, case.status, "{}: {body}", case.what);
        let error = &body["error"];
        assert_eq!(error["type"], case.error_type, "{}: {body}", case.what);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: {body}",
            case.what
        );
        if let Some(code) = case.code {
            assert_eq!(error["code"], code, "{}: {body}", case.what);
            assert!(
                error["doc_url"].as_str().is_some(),
                "{}: doc_url",
                case.what
            );
        }
        if let Some(param) = case.param {
            assert_eq!(error["param"], param, "{}: {body}", case.what);
        }
    }
    assert_eq!(
        fake.fake.intents().len(),
        before,
        "no refused request created anything"
    );
    // A bad Stripe-Version is refused too.
    let resp = http()
        .get(format!("{}/v1/payment_intents/{id}", fake.base))
        .bearer_auth(SECRET_KEY)
        .header("Stripe-Version", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_other_parameters() {
    let fake = start_fake(None).await;
    let (s1, first) =
        json_of(post(&fake, "/v1/payment_intents", CREATE, Some("key-1")).await).await;
    let replay = post(&fake, "/v1/payment_intents", CREATE, Some("key-1")).await;
    assert_eq!(replay.headers()["Idempotent-Replayed"], "true");
    assert_eq!(replay.headers()["Idempotency-Key"], "key-1");
    let (s2, second) = json_of(replay).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, second, "the same body, the same PaymentIntent");
    assert_eq!(fake.fake.intents().len(), 1);

    // The parameters may come in another order: they are compared, not their text.
    let mut reordered = CREATE.to_vec();
    reordered.reverse();
    let (status, again) =
        json_of(post(&fake, "/v1/payment_intents", &reordered, Some("key-1")).await).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]));

    let (status, body) = json_of(
        post(
            &fake,
            "/v1/payment_intents",
            &[("amount", "2000"), ("currency", "sek")],
            Some("key-1"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "idempotency_error");

    let id = first["id"].as_str().unwrap();
    let (status, body) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{id}/cancel"),
            &[],
            Some("key-1"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "another endpoint under the same key: {body}");
    assert_eq!(body["error"]["type"], "idempotency_error");
    assert_eq!(fake.fake.intents().len(), 1);
}

#[tokio::test]
async fn a_request_refused_by_validation_is_not_saved_under_its_key() {
    let fake = start_fake(None).await;
    let (status, _) = json_of(
        post(
            &fake,
            "/v1/payment_intents",
            &[("amount", "12.5"), ("currency", "sek")],
            Some("k"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    // A corrected request with the same key is executed, not refused as another request.
    let (status, body) = json_of(post(&fake, "/v1/payment_intents", CREATE, Some("k")).await).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_saved_500_replays_under_its_key_and_a_new_key_acts() {
    let fake = start_fake(None).await;
    fake.fake.set_faults(Faults {
        error_next: 1,
        ..Faults::default()
    });
    let (status, body) =
        json_of(post(&fake, "/v1/payment_intents", CREATE, Some("k500")).await).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "api_error");
    let replay = post(&fake, "/v1/payment_intents", CREATE, Some("k500")).await;
    assert_eq!(replay.headers()["Idempotent-Replayed"], "true");
    assert_eq!(
        replay.status(),
        500,
        "Stripe saves even a 500 under its key"
    );
    assert!(
        fake.fake.intents().is_empty(),
        "the failed request created nothing"
    );
    let (status, _) =
        json_of(post(&fake, "/v1/payment_intents", CREATE, Some("k-new")).await).await;
    assert_eq!(status, 200);

    // Rejected before Stripe's logic (a 503 at the edge, with Stripe-Should-Retry):
    // nothing is saved, and the same key then works.
    fake.fake.set_faults(Faults {
        reject_next: 1,
        reject_status: 503,
        should_retry: Some(true),
        ..Faults::default()
    });
    let resp = post(&fake, "/v1/payment_intents", CREATE, Some("k503")).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["Stripe-Should-Retry"], "true");
    let (status, _) = json_of(post(&fake, "/v1/payment_intents", CREATE, Some("k503")).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_status_machine_moves_as_stripes_does() {
    let fake = start_fake(None).await;
    let pi = create(&fake).await;
    let id = pi["id"].as_str().unwrap();
    assert_eq!(pi["status"], "requires_payment_method");
    assert_eq!(pi["object"], "payment_intent");
    assert!(pi["client_secret"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{id}_secret_")));

    // Amount changes while unconfirmed.
    let (status, updated) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{id}"),
            &[
                ("amount", "1500"),
                ("metadata[cart_id]", ""),
                ("metadata[x]", "y"),
            ],
            Some("u1"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["amount"], 1500);
    assert_eq!(
        updated["metadata"],
        json!({ "x": "y" }),
        "an empty value unsets a key"
    );

    // A decline returns a 402 card_error with the PaymentIntent, which waits for another
    // payment method.
    let (status, declined) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{id}/confirm"),
            &[("payment_method", PM_DECLINED)],
            Some("c1"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 402);
    assert_eq!(declined["error"]["type"], "card_error");
    assert_eq!(declined["error"]["decline_code"], "generic_decline");
    assert_eq!(
        declined["error"]["payment_intent"]["status"],
        "requires_payment_method"
    );

    let (status, confirmed) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{id}/confirm"),
            &[("payment_method", PM_VISA)],
            Some("c2"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(confirmed["status"], "requires_capture");
    assert_eq!(confirmed["amount_capturable"], 1500);
    assert!(confirmed["latest_charge"]
        .as_str()
        .unwrap()
        .starts_with("ch_"));

    let (status, locked) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{id}"),
            &[("amount", "2000")],
            Some("u2"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(locked["error"]["code"], "payment_intent_unexpected_state");

    let (status, too_much) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{id}/capture"),
            &[("amount_to_capture", "1501")],
            Some("cap0"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(too_much["error"]["param"], "amount_to_capture");

    let (status, captured) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{id}/capture"),
            &[("amount_to_capture", "1000")],
            Some("cap1"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(captured["status"], "succeeded");
    assert_eq!(captured["amount_received"], 1000);
    assert_eq!(
        captured["amount_capturable"], 0,
        "capturing less releases the rest"
    );

    let (status, twice) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{id}/capture"),
            &[],
            Some("cap2"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "a PaymentIntent is captured once");
    assert_eq!(twice["error"]["code"], "payment_intent_unexpected_state");
    let (status, _) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{id}/cancel"),
            &[],
            Some("x1"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "a succeeded PaymentIntent cannot be cancelled");

    // 3-D Secure: requires_action with a redirect to the hosted page.
    let other = create(&fake).await;
    let other_id = other["id"].as_str().unwrap();
    let (_, action) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{other_id}/confirm"),
            &[("payment_method", PM_AUTHENTICATION_REQUIRED)],
            Some("c3"),
        )
        .await,
    )
    .await;
    assert_eq!(action["status"], "requires_action");
    assert!(action["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/pay/{other_id}")));
    let (status, canceled) = json_of(
        post(
            &fake,
            &format!("/v1/payment_intents/{other_id}/cancel"),
            &[("cancellation_reason", "abandoned")],
            Some("x2"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["cancellation_reason"], "abandoned");

    // Automatic capture goes straight to succeeded, and confirm=true confirms at create.
    let (status, auto) = json_of(
        post(
            &fake,
            "/v1/payment_intents",
            &[
                ("amount", "300"),
                ("currency", "jpy"),
                ("confirm", "true"),
                ("payment_method", PM_VISA),
            ],
            Some("auto"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{auto}");
    assert_eq!(auto["status"], "succeeded");
    assert_eq!(auto["amount_received"], 300);
    assert_eq!(auto["capture_method"], "automatic");
}

#[tokio::test]
async fn the_publishable_key_may_confirm_only_with_the_client_secret() {
    let fake = start_fake(None).await;
    let pi = create(&fake).await;
    let id = pi["id"].as_str().unwrap();
    let secret = pi["client_secret"].as_str().unwrap();
    let confirm = |client_secret: &str| {
        http()
            .post(format!("{}/v1/payment_intents/{id}/confirm", fake.base))
            .bearer_auth(PUBLISHABLE_KEY)
            .form(&[
                ("payment_method", PM_VISA),
                ("client_secret", client_secret),
            ])
            .send()
    };
    assert_eq!(confirm("pi_wrong_secret_x").await.unwrap().status(), 404);
    let (status, body) = json_of(confirm(secret).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "requires_capture");
    let read = http()
        .get(format!(
            "{}/v1/payment_intents/{id}?client_secret={secret}",
            fake.base
        ))
        .bearer_auth(PUBLISHABLE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
}

#[tokio::test]
async fn list_search_and_events_answer_in_stripes_shapes() {
    let fake = start_fake(None).await;
    let since = unix_now() - 5;
    let a = create(&fake).await;
    let b = create(&fake).await;
    let get = |path: String| {
        let url = format!("{}{path}", fake.base);
        async move {
            json_of(
                http()
                    .get(url)
                    .bearer_auth(SECRET_KEY)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, list) = get(format!("/v1/payment_intents?limit=1&created[gte]={since}")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], b["id"], "newest first");
    assert_eq!(list["has_more"], true);
    let (_, next) = get(format!(
        "/v1/payment_intents?limit=1&starting_after={}",
        b["id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(next["data"][0]["id"], a["id"]);
    assert_eq!(next["has_more"], false);

    let (status, found) = get("/v1/payment_intents/search?query=metadata%5B%27cart_id%27%5D%3A%27c1%27%20AND%20status%3A%27requires_payment_method%27".into()).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["object"], "search_result");
    assert_eq!(found["data"].as_array().unwrap().len(), 2);
    let (status, bad) = get("/v1/payment_intents/search?query=cart%3D1".into()).await;
    assert_eq!(status, 400, "{bad}");

    let (_, events) = get("/v1/events?type=payment_intent.created".into()).await;
    let events = events["data"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2);
    let event = &events[0];
    assert_eq!(event["object"], "event");
    assert_eq!(event["api_version"], stripe::DEFAULT_API_VERSION);
    assert_eq!(event["data"]["object"]["id"], b["id"]);
    assert_eq!(event["livemode"], false);
    assert!(event["request"]["id"].as_str().unwrap().starts_with("req_"));
    let (status, one) = get(format!("/v1/events/{}", event["id"].as_str().unwrap())).await;
    assert_eq!((status, &one["id"]), (200, &event["id"]));
}

#[tokio::test]
async fn registered_endpoints_get_signed_events_of_the_types_they_enabled() {
    let (url, inbox) = common::receiver().await;
    let fake = start_fake(None).await;
    let (status, endpoint) = json_of(
        post(
            &fake,
            "/v1/webhook_endpoints",
            &[
                ("url", url.as_str()),
                ("enabled_events[]", "payment_intent.succeeded"),
            ],
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{endpoint}");
    assert!(endpoint["id"].as_str().unwrap().starts_with("we_"));
    assert_eq!(endpoint["secret"], common::PRIMARY);
    let (_, listed) = json_of(
        http()
            .get(format!("{}/v1/webhook_endpoints", fake.base))
            .bearer_auth(SECRET_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(
        listed["data"][0].get("secret").is_none(),
        "the secret is shown once"
    );

    let (_, auto) = json_of(
        post(
            &fake,
            "/v1/payment_intents",
            &[("amount", "300"), ("currency", "sek")],
            None,
        )
        .await,
    )
    .await;
    let id = auto["id"].as_str().unwrap();
    fake.fake.confirm(id, PM_VISA, true).unwrap();
    let got = common::eventually("the succeeded event", || async {
        let got = inbox.received.lock().clone();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(got.len(), 1, "payment_intent.created was not enabled");
    let body: Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(body["type"], "payment_intent.succeeded");
    let deliveries = common::eventually("the delivery to be recorded", || async {
        let d = fake.fake.deliveries();
        (d.first().map(|d| d.state) == Some(stripe::fake::DeliveryState::Delivered)).then_some(d)
    })
    .await;
    assert_eq!(deliveries[0].last_status, Some(200));

    // A redelivery sends the same bytes again.
    let event_id = body["id"].as_str().unwrap();
    let resp = http()
        .post(format!(
            "{}/v1/_test/events/{event_id}/redeliver",
            fake.base
        ))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let again = common::eventually("the redelivery", || async {
        let got = inbox.received.lock().clone();
        (got.len() == 2).then_some(got)
    })
    .await;
    assert_eq!(again[0].1, again[1].1);

    let we = endpoint["id"].as_str().unwrap();
    let resp = http()
        .delete(format!("{}/v1/webhook_endpoints/{we}", fake.base))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap();
    let (status, deleted) = json_of(resp).await;
    assert_eq!((status, &deleted["deleted"]), (200, &json!(true)));
}

#[tokio::test]
async fn the_test_controls_confirm_and_authenticate_as_a_customer() {
    let fake = start_fake(None).await;
    let pi = create(&fake).await;
    let id = pi["id"].as_str().unwrap();
    let control = |path: String, body: Value| {
        let url = format!("{}/v1/_test/payment_intents/{path}", fake.base);
        async move {
            json_of(
                http()
                    .post(url)
                    .bearer_auth(SECRET_KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, body) =
        control(format!("{id}/confirm"), json!({ "payment_methd": PM_VISA })).await;
    assert_eq!(status, 400, "a misspelt field is refused: {body}");
    let (status, body) = control(
        format!("{id}/confirm"),
        json!({ "payment_method": PM_AUTHENTICATION_REQUIRED, "webhook": "skip" }),
    )
    .await;
    assert_eq!((status, &body["status"]), (200, &json!("requires_action")));
    let (status, body) = control(
        format!("{id}/authenticate"),
        json!({ "outcome": "succeed" }),
    )
    .await;
    assert_eq!((status, &body["status"]), (200, &json!("requires_capture")));
    assert_eq!(
        fake.fake.intent(id).unwrap().status,
        IntentStatus::RequiresCapture
    );
    let (status, _) = control("pi_missing/confirm".into(), json!({})).await;
    assert_eq!(status, 404);
    let resp = http()
        .get(format!("{}/v1/_test/faults", fake.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "the test controls need the secret key");
}

#[tokio::test]
async fn the_hosted_page_pays_declines_and_returns_to_the_shop() {
    let fake = start_fake(None).await;
    let pay = create(&fake).await;
    let id = pay["id"].as_str().unwrap();
    let page = http()
        .get(format!("{}/pay/{id}", fake.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(">Pay</button>") && html.contains(">Decline</button>"),
        "{html}"
    );
    assert!(html.contains("10.00 SEK"), "{html}");

    let resp = http()
        .post(format!("{}/pay/{id}/confirm", fake.base))
        .form(&[
            ("payment_method", PM_VISA),
            ("return_url", "https://shop.example/done?x=1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://shop.example/done?x=1&payment_intent="),
        "{location}"
    );
    assert!(location.contains("redirect_status=succeeded"), "{location}");
    assert_eq!(
        fake.fake.intent(id).unwrap().status,
        IntentStatus::RequiresCapture
    );
    let done = http()
        .get(format!("{}/pay/{id}", fake.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.contains("Paid"), "{done}");

    let decline = create(&fake).await;
    let did = decline["id"].as_str().unwrap();
    let resp = http()
        .post(format!("{}/pay/{did}/confirm", fake.base))
        .form(&[
            ("payment_method", PM_DECLINED),
            ("return_url", "https://shop.example/done"),
        ])
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("redirect_status=failed"), "{location}");

    // 3-D Secure: back to the page for the authentication step, then to the shop.
    let three = create(&fake).await;
    let tid = three["id"].as_str().unwrap();
    let resp = http()
        .post(format!("{}/pay/{tid}/confirm", fake.base))
        .form(&[
            ("payment_method", PM_AUTHENTICATION_REQUIRED),
            ("return_url", "https://shop.example/done"),
        ])
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{}/pay/{tid}?return_url=", fake.base)),
        "{location}"
    );
    let step = http()
        .get(&location)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(step.contains("Complete authentication"), "{step}");
    let resp = http()
        .post(format!("{}/pay/{tid}/authenticate", fake.base))
        .form(&[
            ("outcome", "succeed"),
            ("return_url", "https://shop.example/done"),
        ])
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .contains("redirect_status=succeeded"));

    let missing = http()
        .get(format!("{}/pay/pi_nope", fake.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let bad = http()
        .post(format!("{}/pay/{did}/confirm", fake.base))
        .form(&[("card", "4242")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
