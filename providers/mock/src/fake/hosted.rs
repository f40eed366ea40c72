//! The hosted payment page: what the customer sees after the storefront redirects them to
//! the payment's `hosted_url`, and the Approve and Decline actions behind its buttons.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use super::api::ApiError;
use super::{ApproveOptions, FakeError, FakeMockPsp, Payment, PaymentStatus};

pub(super) fn router(fake: FakeMockPsp) -> Router {
    Router::new()
        .route("/pay/{id}", get(page))
        .route("/pay/{id}/approve", post(approve))
        .route("/pay/{id}/decline", post(decline))
        .with_state(fake)
}

/// Whether the caller sent JSON (and so wants JSON errors) rather than a browser form.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|v| v == "application/json" || v.ends_with("+json"))
}

/// Reads the test triggers from a form or JSON body. Unknown fields are refused, so that a
/// test that misspells `amount_override` fails loudly instead of authorizing the full
/// amount and passing for the wrong reason.
pub(super) fn parse_options(headers: &HeaderMap, body: &Bytes) -> Result<ApproveOptions, String> {
    let mut options = ApproveOptions::default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(options);
    }
    if is_json(headers) {
        let map: serde_json::Map<String, Value> =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
        for (key, value) in map {
            match (key.as_str(), value) {
                (_, Value::Null) => {}
                ("card", Value::String(s)) => options.card = Some(s),
                ("amount_override", Value::Number(n)) => {
                    let amount = n
                        .as_i64()
                        .ok_or_else(|| "amount_override must be an integer".to_string())?;
                    options.amount_override = Some(amount);
                }
                ("amount_override", Value::String(s)) => {
                    options.amount_override = parse_amount(&s)?;
                }
                ("webhook", Value::String(s)) => options.skip_webhook = parse_webhook(&s)?,
                (other, _) => return Err(format!("unexpected field {other:?} or value type")),
            }
        }
    } else {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| format!("invalid form body: {e}"))?;
        for (key, value) in pairs {
            match key.as_str() {
                "card" if value.trim().is_empty() => {}
                "card" => options.card = Some(value),
                "amount_override" => options.amount_override = parse_amount(&value)?,
                "webhook" => options.skip_webhook = parse_webhook(&value)?,
                other => return Err(format!("unexpected field {other:?}")),
            }
        }
    }
    Ok(options)
}

fn parse_amount(value: &str) -> Result<Option<i64>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<i64>()
        .map(Some)
        .map_err(|_| format!("amount_override must be an integer in minor units, got {value:?}"))
}

fn parse_webhook(value: &str) -> Result<bool, String> {
    match value.trim() {
        "skip" => Ok(true),
        "" | "send" => Ok(false),
        other => Err(format!(
            "webhook must be \"skip\" or \"send\", got {other:?}"
        )),
    }
}

async fn page(State(fake): State<FakeMockPsp>, Path(id): Path<String>) -> Response {
    match fake.payment(&id) {
        Some(p) if p.status == PaymentStatus::Pending => {
            Html(payment_page(&p, None)).into_response()
        }
        Some(p) => Html(result_page(&p)).into_response(),
        None => not_found_page(&id),
    }
}

async fn approve(
    State(fake): State<FakeMockPsp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = is_json(&headers);
    let result = parse_options(&headers, &body)
        .map_err(FakeError::InvalidOptions)
        .and_then(|options| fake.approve(&id, options));
    respond(&fake, &id, json, result)
}

async fn decline(
    State(fake): State<FakeMockPsp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = is_json(&headers);
    // The Decline button submits the same form as Approve, so the card fields arrive too;
    // only `webhook` matters here.
    let result = parse_options(&headers, &body)
        .map_err(FakeError::InvalidOptions)
        .and_then(|options| fake.decline(&id, options.skip_webhook));
    respond(&fake, &id, json, result)
}

/// After a choice: back to the shop when it gave a return URL, else a small result page.
fn respond(
    fake: &FakeMockPsp,
    id: &str,
    json: bool,
    result: Result<Payment, FakeError>,
) -> Response {
    match result {
        Ok(p) => match &p.return_url {
            Some(url) => Redirect::to(&return_to(url, &p)).into_response(),
            None => Html(result_page(&p)).into_response(),
        },
        Err(err) if json => ApiError::from(err).into_response(),
        Err(err) => {
            let (status, _) = err.status_and_code();
            match (&err, fake.payment(id)) {
                (FakeError::NotFound(_), _) | (_, None) => not_found_page(id),
                (FakeError::NotPending { .. }, Some(p)) => {
                    (status, Html(result_page(&p))).into_response()
                }
                (_, Some(p)) => {
                    (status, Html(payment_page(&p, Some(&err.to_string())))).into_response()
                }
            }
        }
    }
}

/// The return URL with `payment_id` and `status` appended to whatever query it has.
fn return_to(url: &str, p: &Payment) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.query_pairs_mut()
                .append_pair("payment_id", &p.id)
                .append_pair("status", p.status.as_str());
            u.to_string()
        }
        // The API accepted only absolute URLs, so this is not reached; the plain URL is
        // still a better place to send the customer than an error.
        Err(_) => url.to_string(),
    }
}

fn display_amount(amount: i64, currency: &str) -> String {
    match psp_core::Currency::from_code(currency) {
        Ok(c) => psp_core::Money::from_minor(amount, c).to_string(),
        Err(_) => format!("{amount} {currency}"),
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;\
background:#f4f5f7;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328}\
main{width:100%;max-width:380px;margin:24px;background:#fff;border-radius:12px;\
box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06);padding:28px}\
header{display:flex;align-items:center;gap:8px;font-weight:600}\
.logo{display:inline-grid;place-items:center;width:28px;height:28px;border-radius:8px;\
background:#5b5bd6;color:#fff;font-size:14px}\
.badge{margin-left:auto;font-size:11px;font-weight:600;letter-spacing:.04em;color:#8a5a00;\
background:#fff4d6;border-radius:999px;padding:2px 8px}\
.label{margin:24px 0 0;color:#667085;font-size:14px}\
.amount{margin:0 0 20px;font-size:32px;font-weight:700;letter-spacing:-.01em}\
label{display:block;font-size:14px;color:#475467;margin-bottom:6px}\
input[type=text]{width:100%;padding:10px 12px;border:1px solid #d0d5dd;border-radius:8px;\
font:inherit;letter-spacing:.06em}\
input[type=text]:focus{outline:2px solid #5b5bd6;outline-offset:1px;border-color:transparent}\
.hint{font-size:12px;color:#667085;margin:6px 0 16px}\
details{font-size:14px;color:#475467;margin-bottom:20px}\
summary{cursor:pointer}\
details label{margin:10px 0 0}\
.check{display:flex;gap:8px;align-items:center}\
.actions{display:flex;gap:10px}\
button{flex:1;padding:11px 0;border-radius:8px;border:1px solid transparent;font:inherit;\
font-weight:600;cursor:pointer}\
.approve{background:#5b5bd6;color:#fff}.approve:hover{background:#4a4ac4}\
.decline{background:#fff;color:#b42318;border-color:#f3c4c0}.decline:hover{background:#fef3f2}\
.error{background:#fef3f2;color:#b42318;border-radius:8px;padding:10px 12px;font-size:14px}\
.status{display:inline-block;padding:2px 10px;border-radius:999px;font-weight:600;font-size:14px}\
.status.authorized,.status.captured{background:#ecfdf3;color:#067647}\
.status.failed,.status.voided{background:#fef3f2;color:#b42318}\
.status.pending{background:#f2f4f7;color:#475467}\
footer{margin-top:20px;font-size:12px;color:#98a2b3;word-break:break-all}";

fn layout(title: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{CSS}</style></head><body><main>\
<header><span class=\"logo\">M</span> Mock PSP <span class=\"badge\">TEST MODE</span></header>\
{content}</main></body></html>\n",
        title = escape(title),
    )
}

fn payment_page(p: &Payment, error: Option<&str>) -> String {
    let amount = escape(&display_amount(p.amount, &p.currency));
    let id = escape(&p.id);
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    // The form actions are relative ("<id>/approve" from ".../pay/<id>"), so the page works
    // wherever the router is mounted and whatever host name the browser used.
    let content = format!(
        "<p class=\"label\">Pay</p><p class=\"amount\">{amount}</p>{error}\
<form method=\"post\" action=\"{id}/approve\">\
<label for=\"card\">Card number</label>\
<input type=\"text\" id=\"card\" name=\"card\" value=\"4242 4242 4242 4242\" \
inputmode=\"numeric\" autocomplete=\"off\">\
<p class=\"hint\">4242 4242 4242 4242 approves; 4000 0000 0000 0002 is declined.</p>\
<details><summary>Test options</summary>\
<label for=\"amount_override\">Authorize another amount (minor units)</label>\
<input type=\"text\" id=\"amount_override\" name=\"amount_override\" inputmode=\"numeric\">\
<label class=\"check\"><input type=\"checkbox\" name=\"webhook\" value=\"skip\"> \
Do not send the webhook</label></details>\
<div class=\"actions\"><button type=\"submit\" class=\"approve\">Approve</button>\
<button type=\"submit\" class=\"decline\" formaction=\"{id}/decline\">Decline</button></div>\
</form><footer>Payment {id}</footer>"
    );
    layout(
        &format!("Mock PSP: pay {}", display_amount(p.amount, &p.currency)),
        &content,
    )
}

fn result_page(p: &Payment) -> String {
    let status = p.status.as_str();
    let amount = match p.status {
        PaymentStatus::Authorized | PaymentStatus::Captured => {
            display_amount(p.authorized_amount, &p.currency)
        }
        _ => display_amount(p.amount, &p.currency),
    };
    let reason = p
        .failure_reason
        .as_deref()
        .map(|r| format!("<p>Reason: {}</p>", escape(r)))
        .unwrap_or_default();
    let back = p
        .return_url
        .as_deref()
        .map(|u| {
            format!(
                "<p><a href=\"{}\">Back to the shop</a></p>",
                escape(&return_to(u, p))
            )
        })
        .unwrap_or_default();
    let content = format!(
        "<p class=\"label\">Payment</p><p class=\"amount\">{amount}</p>\
<p><span class=\"status {status}\">{status}</span></p>{reason}{back}\
<footer>Payment {id}</footer>",
        amount = escape(&amount),
        id = escape(&p.id),
    );
    layout(&format!("Mock PSP: payment {status}"), &content)
}

fn not_found_page(id: &str) -> Response {
    let content = format!(
        "<p class=\"label\">Not found</p><p>There is no payment {}.</p>",
        escape(id)
    );
    (
        StatusCode::NOT_FOUND,
        Html(layout("Mock PSP: not found", &content)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn payment(return_url: Option<&str>) -> Payment {
        Payment {
            id: "mpay_1".into(),
            status: PaymentStatus::Authorized,
            amount: 12345,
            currency: "SEK".into(),
            cart_id: "c".into(),
            return_url: return_url.map(Into::into),
            hosted_url: "http://x/pay/mpay_1".into(),
            authorized_amount: 12345,
            captured_amount: 0,
            failure_reason: None,
            created: 1,
        }
    }

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    }

    #[test]
    fn the_return_url_keeps_its_query_and_fragment() {
        let p = payment(None);
        assert_eq!(
            return_to("https://shop.example/done?order=7#top", &p),
            "https://shop.example/done?order=7&payment_id=mpay_1&status=authorized#top"
        );
        assert_eq!(
            return_to("http://shop.example/done", &p),
            "http://shop.example/done?payment_id=mpay_1&status=authorized"
        );
    }

    #[test]
    fn form_options_are_read_and_blank_fields_mean_unset() {
        let body = Bytes::from_static(b"card=4000+0000+0000+0002&amount_override=&webhook=skip");
        let o = parse_options(&HeaderMap::new(), &body).unwrap();
        assert_eq!(o.card.as_deref(), Some("4000 0000 0000 0002"));
        assert_eq!(o.amount_override, None);
        assert!(o.skip_webhook);
    }

    #[test]
    fn json_options_accept_integers_and_refuse_unknown_fields() {
        let body = Bytes::from_static(br#"{"amount_override":500,"webhook":"send"}"#);
        let o = parse_options(&json_headers(), &body).unwrap();
        assert_eq!(o.amount_override, Some(500));
        assert!(!o.skip_webhook);
        let typo = Bytes::from_static(br#"{"amountOverride":500}"#);
        assert!(parse_options(&json_headers(), &typo).is_err());
        let float = Bytes::from_static(br#"{"amount_override":5.5}"#);
        assert!(parse_options(&json_headers(), &float).is_err());
    }

    #[test]
    fn the_payment_page_shows_the_amount_the_test_card_and_both_buttons() {
        let mut p = payment(None);
        p.status = PaymentStatus::Pending;
        let html = payment_page(&p, None);
        assert!(html.contains("Mock PSP"));
        assert!(html.contains("123.45 SEK"));
        assert!(html.contains("value=\"4242 4242 4242 4242\""));
        assert!(html.contains("action=\"mpay_1/approve\""));
        assert!(html.contains("formaction=\"mpay_1/decline\""));
        assert!(!html.contains("http"), "the page loads no external assets");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
