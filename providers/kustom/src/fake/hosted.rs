//! What stands in for Kustom's checkout iframe: the `html_snippet` (an iframe on the
//! fake's hosted page, plus a `window._klarnaCheckout` offering `suspend`/`resume` as
//! Kustom's script does), and the page with its "Complete purchase" button, so that a
//! storefront can be paid offline.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use psp_core::Currency;
use serde_json::Value;

use super::{CompleteOptions, CompleteOutcome, FakeKustom};

pub(super) fn router(fake: FakeKustom) -> Router {
    Router::new()
        .route("/checkout/{id}", get(page))
        .route("/checkout/{id}/complete", post(complete))
        .with_state(fake)
}

/// Escapes text for HTML bodies and attribute values.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A string as a JavaScript literal safe inside a `<script>` element.
fn js_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_else(|_| "\"\"".into())
        .replace("</", "<\\/")
}

/// The snippet the storefront injects (its scripts re-executed, as Kustom's must be).
pub(super) fn snippet(base: &str, order_id: &str, confirmation: bool) -> String {
    let src = esc(&format!("{base}/checkout/{order_id}"));
    let title = if confirmation {
        "Kustom order confirmation (sandbox)"
    } else {
        "Kustom Checkout (sandbox)"
    };
    format!(
        r#"<div id="kustom-checkout-container" data-kustom-order-id="{id}"><iframe id="kustom-checkout-iframe" src="{src}" title="{title}" style="width:100%;min-height:480px;border:0"></iframe></div><script>(function(){{var f=document.getElementById('kustom-checkout-iframe');window._klarnaCheckout=function(cb){{cb({{suspend:function(){{if(f){{f.style.opacity='0.4';}}}},resume:function(){{if(f){{f.style.opacity='1';f.src=f.src;}}}}}});}};}})();</script>"#,
        id = esc(order_id),
    )
}

fn amount(minor: i64, currency: &str) -> String {
    let exponent = Currency::from_code(currency)
        .map(Currency::exponent)
        .unwrap_or(2);
    format!(
        "{} {}",
        rust_decimal::Decimal::new(minor, exponent),
        esc(currency)
    )
}

fn shell(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#17120f}}table{{border-collapse:collapse;width:100%}}td,th{{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left}}td.n{{text-align:right}}button{{font-size:1.1rem;padding:.6rem 1.4rem;background:#17120f;color:#fff;border:0;border-radius:6px;cursor:pointer}}.note{{color:#666;font-size:.85rem}}</style></head>
<body>{body}<p class="note">Sandbox stand-in for Kustom Checkout: no money moves.</p></body></html>"#,
        title = esc(title),
    ))
}

async fn page(State(fake): State<FakeKustom>, Path(id): Path<String>) -> Response {
    let Some(order) = fake.order(&id) else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            shell("Unknown order", "<h1>This checkout does not exist</h1>"),
        )
            .into_response();
    };
    let c = &order.checkout;
    let currency = c
        .get("purchase_currency")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut rows = String::new();
    for line in c
        .get("order_lines")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let n = |k: &str| line.get(k).and_then(Value::as_i64).unwrap_or(0);
        rows.push_str(&format!(
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(line.get("name").and_then(Value::as_str).unwrap_or("")),
            n("quantity"),
            amount(n("total_discount_amount"), currency),
            amount(n("total_amount"), currency),
        ));
    }
    let total = amount(
        c.get("order_amount").and_then(Value::as_i64).unwrap_or(0),
        currency,
    );
    let tax = amount(
        c.get("order_tax_amount")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        currency,
    );
    let action = if order.status() == "checkout_incomplete" && !order.aborted {
        format!(
            r#"<form method="post" action="{}"><button type="submit">Complete purchase</button></form>"#,
            esc(&format!("{}/checkout/{id}/complete", fake.public_base()))
        )
    } else if order.aborted {
        "<p><strong>This checkout was aborted by the shop.</strong></p>".to_string()
    } else {
        "<p><strong>Thank you! Your purchase is complete.</strong></p>".to_string()
    };
    shell(
        "Kustom Checkout (sandbox)",
        &format!(
            "<h1>Kustom Checkout</h1><table><tr><th>Item</th><th>Qty</th><th>Discount</th><th>Total</th></tr>{rows}</table>\
             <p>Total <strong>{total}</strong> (incl. tax {tax})</p>{action}"
        ),
    )
    .into_response()
}

/// The customer's click. The answer navigates the whole storefront page (not just the
/// iframe) on, as Kustom's checkout does.
async fn complete(State(fake): State<FakeKustom>, Path(id): Path<String>) -> Response {
    let redirect = |to: &str, text: &str| {
        shell(
            text,
            &format!(
                r#"<p>{}</p><p><a href="{}" target="_top">Continue</a></p><script>window.top.location.href={};</script>"#,
                esc(text),
                esc(to),
                js_string(to)
            ),
        )
        .into_response()
    };
    match fake.complete(&id, CompleteOptions::default()).await {
        Ok(CompleteOutcome::Completed { confirmation_url }) => {
            redirect(&confirmation_url, "Purchase complete")
        }
        Ok(CompleteOutcome::Denied {
            location: Some(location),
        }) => redirect(&location, "The shop could not accept this purchase"),
        Ok(CompleteOutcome::Denied { location: None }) => shell(
            "Purchase refused",
            "<h1>The shop could not accept this purchase</h1>",
        )
        .into_response(),
        Ok(CompleteOutcome::Failed) => shell(
            "Purchase failed",
            "<h1>The shop did not answer in time; nothing was charged</h1>",
        )
        .into_response(),
        Err(e) => (
            axum::http::StatusCode::CONFLICT,
            shell("Not possible", &format!("<h1>{}</h1>", esc(&e.to_string()))),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_script_literals_are_escaped() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(js_string("</script><x>"), r#""<\/script><x>""#);
    }

    #[test]
    fn the_snippet_frames_the_hosted_page_and_offers_suspend_and_resume() {
        let s = snippet("http://h/fakes/kustom", "o-1", false);
        assert!(
            s.contains(r#"src="http://h/fakes/kustom/checkout/o-1""#),
            "{s}"
        );
        assert!(s.contains("window._klarnaCheckout"), "{s}");
    }

    #[test]
    fn amounts_are_shown_in_the_currencys_decimals() {
        assert_eq!(amount(12_345, "SEK"), "123.45 SEK");
        assert_eq!(amount(1_500, "JPY"), "1500 JPY");
    }
}
