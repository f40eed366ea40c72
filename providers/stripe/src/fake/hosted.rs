//! A hosted test page standing in for Stripe.js, which cannot run offline: the demo
//! storefront sends the customer to `GET /pay/{pi_id}` after checkout, and the buttons
//! confirm the PaymentIntent with a test payment method, as Stripe.js's `confirmPayment`
//! would. The 3-D Secure step (`requires_action`) is shown on the same page.
//!
//! Query parameters of the page: `return_url` (where to send the customer afterwards, with
//! `payment_intent`, `payment_intent_client_secret` and `redirect_status` appended, as
//! Stripe does) and `client_secret` (checked when given).

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::{
    FakeStripe, IntentStatus, PaymentIntent, PM_AUTHENTICATION_REQUIRED, PM_DECLINED,
    PM_INSUFFICIENT_FUNDS, PM_VISA,
};

pub(super) fn router(fake: FakeStripe) -> Router {
    Router::new()
        .route("/pay/{id}", get(page))
        .route("/pay/{id}/confirm", post(confirm))
        .route("/pay/{id}/authenticate", post(authenticate))
        .with_state(fake)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    #[serde(default)]
    return_url: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn absolute_http(url: &str) -> bool {
    reqwest::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

fn shell(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; color: #1a1f36; }}
.card {{ border: 1px solid #e3e8ee; border-radius: 8px; padding: 1.5rem; box-shadow: 0 2px 5px rgba(60,66,87,.08); }}
.amount {{ font-size: 2rem; font-weight: 600; margin: .5rem 0 1rem; }}
button {{ display: block; width: 100%; padding: .75rem; margin: .5rem 0; border-radius: 6px; border: 0; font-size: 1rem; cursor: pointer; }}
.pay {{ background: #635bff; color: white; }}
.decline {{ background: #fff; border: 1px solid #df1b41; color: #df1b41; }}
.other {{ background: #f6f9fc; border: 1px solid #e3e8ee; }}
.note {{ color: #697386; font-size: .85rem; }}
</style></head>
<body><div class="card">{body}</div>
<p class="note">Fake Stripe test page: no real card is charged. It stands in for Stripe.js, which cannot run offline.</p>
</body></html>"#
    )
}

fn amount_text(pi: &PaymentIntent) -> String {
    match crate::currency::from_stripe_amount(pi.amount, &pi.currency) {
        Ok(money) => money.to_string(),
        Err(_) => format!("{} {} (Stripe's minor units)", pi.amount, pi.currency),
    }
}

fn hidden(return_url: Option<&str>, client_secret: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(url) = return_url {
        s.push_str(&format!(
            r#"<input type="hidden" name="return_url" value="{}">"#,
            escape(url)
        ));
    }
    if let Some(secret) = client_secret {
        s.push_str(&format!(
            r#"<input type="hidden" name="client_secret" value="{}">"#,
            escape(secret)
        ));
    }
    s
}

fn payment_page(
    pi: &PaymentIntent,
    return_url: Option<&str>,
    client_secret: Option<&str>,
) -> String {
    let id = escape(&pi.id);
    let hidden = hidden(return_url, client_secret);
    let error = pi
        .last_payment_error
        .as_ref()
        .and_then(|e| e["message"].as_str())
        .map(|m| format!(r#"<p style="color:#df1b41">{}</p>"#, escape(m)))
        .unwrap_or_default();
    let body = if pi.status == IntentStatus::RequiresAction {
        format!(
            r#"<h1>3-D Secure</h1><p>Authenticate the payment of</p><div class="amount">{amount}</div>
<form method="post" action="{id}/authenticate">{hidden}
<button class="pay" name="outcome" value="succeed">Complete authentication</button>
<button class="decline" name="outcome" value="fail">Fail authentication</button>
</form>"#,
            amount = escape(&amount_text(pi)),
        )
    } else {
        format!(
            r#"<h1>Pay</h1><p>PaymentIntent <code>{id}</code></p><div class="amount">{amount}</div>{error}
<form method="post" action="{id}/confirm">{hidden}
<button class="pay" name="payment_method" value="{PM_VISA}">Pay</button>
<button class="decline" name="payment_method" value="{PM_DECLINED}">Decline</button>
<button class="other" name="payment_method" value="{PM_INSUFFICIENT_FUNDS}">Decline: insufficient funds</button>
<button class="other" name="payment_method" value="{PM_AUTHENTICATION_REQUIRED}">Pay with 3-D Secure</button>
</form>"#,
            amount = escape(&amount_text(pi)),
        )
    };
    shell("Fake Stripe: pay", &body)
}

fn result_page(pi: &PaymentIntent) -> String {
    let body = format!(
        r#"<h1>{}</h1><p>PaymentIntent <code>{}</code> is <strong>{}</strong>.</p><div class="amount">{}</div>"#,
        match pi.status {
            IntentStatus::RequiresCapture | IntentStatus::Succeeded => "Paid",
            IntentStatus::Canceled => "Cancelled",
            _ => "Not paid",
        },
        escape(&pi.id),
        pi.status.as_str(),
        escape(&amount_text(pi))
    );
    shell("Fake Stripe: result", &body)
}

fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(shell(
            "Fake Stripe: not found",
            &format!(
                "<h1>Not found</h1><p>No PaymentIntent <code>{}</code>.</p>",
                escape(id)
            ),
        )),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(shell(
            "Fake Stripe: bad request",
            &format!("<h1>Bad request</h1><p>{}</p>", escape(message)),
        )),
    )
        .into_response()
}

async fn page(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return bad_request("the page takes return_url and client_secret only");
    };
    let Some(pi) = fake.intent(&id) else {
        return not_found(&id);
    };
    if query
        .client_secret
        .as_deref()
        .is_some_and(|s| s != pi.client_secret)
    {
        return not_found(&id);
    }
    if let Some(url) = &query.return_url {
        if !absolute_http(url) {
            return bad_request("return_url must be an absolute http(s) URL");
        }
    }
    if pi.status.is_unconfirmed() {
        Html(payment_page(
            &pi,
            query.return_url.as_deref(),
            query.client_secret.as_deref(),
        ))
        .into_response()
    } else {
        Html(result_page(&pi)).into_response()
    }
}

/// The fields the page's forms send; anything else is refused.
#[derive(Debug, Default)]
struct FormFields {
    payment_method: Option<String>,
    outcome: Option<String>,
    return_url: Option<String>,
    client_secret: Option<String>,
}

fn form_fields(body: &Bytes) -> Result<FormFields, String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| format!("invalid form: {e}"))?;
    let mut f = FormFields::default();
    for (k, v) in pairs {
        let v = (!v.trim().is_empty()).then_some(v);
        match k.as_str() {
            "payment_method" => f.payment_method = v,
            "outcome" => f.outcome = v,
            "return_url" => f.return_url = v,
            "client_secret" => f.client_secret = v,
            other => return Err(format!("unexpected field {other:?}")),
        }
    }
    if let Some(url) = &f.return_url {
        if !absolute_http(url) {
            return Err("return_url must be an absolute http(s) URL".into());
        }
    }
    Ok(f)
}

/// Where the customer goes after acting: back to the 3-D Secure step, back to the shop
/// with Stripe's redirect parameters, or to a result page.
fn after(fake: &FakeStripe, pi: &PaymentIntent, fields: &FormFields) -> Response {
    if pi.status == IntentStatus::RequiresAction {
        let mut url = format!("{}/pay/{}", fake.public_base(), pi.id);
        let mut query = Vec::new();
        if let Some(r) = &fields.return_url {
            query.push(("return_url", r.as_str()));
        }
        if let Some(s) = &fields.client_secret {
            query.push(("client_secret", s.as_str()));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&serde_urlencoded::to_string(&query).unwrap_or_default());
        }
        return Redirect::to(&url).into_response();
    }
    let return_url = fields.return_url.clone().or_else(|| pi.return_url.clone());
    match return_url.and_then(|u| reqwest::Url::parse(&u).ok()) {
        Some(mut url) => {
            let status = match pi.status {
                IntentStatus::RequiresCapture
                | IntentStatus::Succeeded
                | IntentStatus::Processing => "succeeded",
                _ => "failed",
            };
            url.query_pairs_mut()
                .append_pair("payment_intent", &pi.id)
                .append_pair("payment_intent_client_secret", &pi.client_secret)
                .append_pair("redirect_status", status);
            Redirect::to(url.as_str()).into_response()
        }
        None => Html(result_page(pi)).into_response(),
    }
}

fn check_secret(fake: &FakeStripe, id: &str, fields: &FormFields) -> Option<Response> {
    let pi = fake.intent(id)?;
    fields
        .client_secret
        .as_deref()
        .is_some_and(|s| s != pi.client_secret)
        .then(|| not_found(id))
}

async fn confirm(State(fake): State<FakeStripe>, Path(id): Path<String>, body: Bytes) -> Response {
    let fields = match form_fields(&body) {
        Ok(f) => f,
        Err(e) => return bad_request(&e),
    };
    if let Some(resp) = check_secret(&fake, &id, &fields) {
        return resp;
    }
    let pm = fields
        .payment_method
        .clone()
        .unwrap_or_else(|| PM_VISA.to_string());
    if super::card_outcome(&pm).is_none() {
        return bad_request(&format!("{pm} is not a test payment method"));
    }
    let public_base = fake.public_base().to_string();
    match fake.act_as_customer(&id, true, |st| st.confirm(&id, Some(pm), &public_base)) {
        Ok((_, pi)) => after(&fake, &pi, &fields),
        Err(_) => not_found(&id),
    }
}

async fn authenticate(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = match form_fields(&body) {
        Ok(f) => f,
        Err(e) => return bad_request(&e),
    };
    if let Some(resp) = check_secret(&fake, &id, &fields) {
        return resp;
    }
    let succeed = match fields.outcome.as_deref() {
        None | Some("succeed") => true,
        Some("fail") => false,
        Some(other) => return bad_request(&format!("unknown outcome {other:?}")),
    };
    match fake.act_as_customer(&id, true, |st| st.authenticate(&id, succeed)) {
        Ok((_, pi)) => after(&fake, &pi, &fields),
        Err(_) => not_found(&id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_form_refuses_unknown_fields_and_relative_return_urls() {
        assert!(form_fields(&Bytes::from_static(b"payment_method=pm_card_visa")).is_ok());
        assert!(form_fields(&Bytes::from_static(b"card=4242")).is_err());
        assert!(form_fields(&Bytes::from_static(b"return_url=%2Fthanks")).is_err());
    }
}
