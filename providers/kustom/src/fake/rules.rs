//! What Kustom refuses in a checkout order, checked on the raw JSON the way Kustom's API
//! checks it, and written apart from the adapter's own order building so that one can
//! test the other.
//!
//! Refused with `400 BAD_VALUE` and one `"Bad value: <path>"` message per fault:
//! - a missing or malformed `purchase_country` (2 letters), `purchase_currency` (3
//!   letters), `locale`, `order_amount`, `order_tax_amount`, `order_lines` (1 to 1000) or
//!   required `merchant_urls` (`terms`, `checkout`, `confirmation`, `push`: absolute URLs);
//! - amounts that are not JSON integers;
//! - per line: no `name`, an unknown `type`, a negative `quantity` or
//!   `total_discount_amount`, a `tax_rate` outside 0..=10000, `|total_amount|` over
//!   100 000 000, `total_amount` further than `quantity` from `quantity × unit_price −
//!   total_discount_amount`, or `total_tax_amount` further than 1 from
//!   `total_amount − total_amount·10000/(10000+tax_rate)` computed exactly (the strictest
//!   reading of Kustom's rule: what passes it passes any rounding of the reference);
//! - `order_amount` ≠ Σ `total_amount`, or a negative `order_amount`;
//! - `order_tax_amount` further from Σ `total_tax_amount` than the number of lines.

use serde_json::{Map, Value};

const LINE_TYPES: &[&str] = &[
    "physical",
    "discount",
    "shipping_fee",
    "sales_tax",
    "digital",
    "gift_card",
    "store_credit",
    "surcharge",
];
const MAX_LINE_AMOUNT: i128 = 100_000_000;

fn int(v: Option<&Value>) -> Option<i128> {
    // Kustom's amounts are integers; 100.0 and "100" are refused.
    match v? {
        Value::Number(n) if n.is_i64() => n.as_i64().map(i128::from),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

fn absolute_url(v: Option<&Value>) -> bool {
    text(v).is_some_and(|u| {
        let u = u.replace("{checkout.order.id}", "x");
        reqwest::Url::parse(&u)
            .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some())
    })
}

/// Every fault Kustom would report for this order, as its error messages; empty when it
/// would accept it.
pub(crate) fn check_order(order: &Map<String, Value>) -> Vec<String> {
    let mut bad = Vec::new();
    let mut flag = |path: &str| bad.push(format!("Bad value: {path}"));

    if !text(order.get("purchase_country"))
        .is_some_and(|c| c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()))
    {
        flag("purchase_country");
    }
    if !text(order.get("purchase_currency"))
        .is_some_and(|c| c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()))
    {
        flag("purchase_currency");
    }
    if !text(order.get("locale"))
        .is_some_and(|l| l.len() <= 10 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        flag("locale");
    }
    match order.get("merchant_urls").and_then(Value::as_object) {
        None => flag("merchant_urls"),
        Some(urls) => {
            for key in ["terms", "checkout", "confirmation", "push"] {
                if !absolute_url(urls.get(key)) {
                    flag(&format!("merchant_urls.{key}"));
                }
            }
            for key in [
                "validation",
                "notification",
                "address_update",
                "country_change",
                "shipping_option_update",
                "cancellation_terms",
            ] {
                if urls.get(key).is_some_and(|v| !v.is_null()) && !absolute_url(urls.get(key)) {
                    flag(&format!("merchant_urls.{key}"));
                }
            }
        }
    }

    let order_amount = int(order.get("order_amount"));
    let order_tax = int(order.get("order_tax_amount"));
    if order_amount.is_none_or(|a| a < 0) {
        flag("order_amount");
    }
    if order_tax.is_none() {
        flag("order_tax_amount");
    }
    let Some(lines) = order.get("order_lines").and_then(Value::as_array) else {
        flag("order_lines");
        return bad;
    };
    if lines.is_empty() || lines.len() > 1000 {
        flag("order_lines");
        return bad;
    }

    let mut sum_amount: i128 = 0;
    let mut sum_tax: i128 = 0;
    let mut lines_ok = true;
    for (i, line) in lines.iter().enumerate() {
        let at = |field: &str| format!("order_lines[{i}].{field}");
        let Some(line) = line.as_object() else {
            flag(&format!("order_lines[{i}]"));
            lines_ok = false;
            continue;
        };
        if text(line.get("name")).is_none_or(|n| n.chars().count() > 255) {
            flag(&at("name"));
        }
        match line.get("type") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if LINE_TYPES.contains(&t.as_str()) => {}
            Some(_) => flag(&at("type")),
        }
        if line
            .get("reference")
            .is_some_and(|r| !r.is_null() && r.as_str().is_none_or(|s| s.chars().count() > 64))
        {
            flag(&at("reference"));
        }
        let quantity = int(line.get("quantity"));
        let unit_price = int(line.get("unit_price"));
        let tax_rate = int(line.get("tax_rate"));
        let total = int(line.get("total_amount"));
        let discount = match line.get("total_discount_amount") {
            None | Some(Value::Null) => Some(0),
            v => int(v),
        };
        let tax = int(line.get("total_tax_amount"));

        if quantity.is_none_or(|q| q < 0) {
            flag(&at("quantity"));
        }
        if unit_price.is_none() {
            flag(&at("unit_price"));
        }
        if tax_rate.is_none_or(|r| !(0..=10_000).contains(&r)) {
            flag(&at("tax_rate"));
        }
        if discount.is_none_or(|d| d < 0) {
            flag(&at("total_discount_amount"));
        }
        if tax.is_none() {
            flag(&at("total_tax_amount"));
        }
        let (Some(q), Some(u), Some(r), Some(t), Some(d), Some(x)) =
            (quantity, unit_price, tax_rate, total, discount, tax)
        else {
            flag(&at("total_amount"));
            lines_ok = false;
            continue;
        };
        if t.abs() > MAX_LINE_AMOUNT || (q >= 0 && (q * u - d - t).abs() > q) {
            flag(&at("total_amount"));
        }
        // |x − t·r/(10000+r)| ≤ 1, multiplied out so that it is decided exactly.
        if (0..=10_000).contains(&r) && (x * (10_000 + r) - t * r).abs() > 10_000 + r {
            flag(&at("total_tax_amount"));
        }
        sum_amount += t;
        sum_tax += x;
    }
    if lines_ok {
        if order_amount.is_some_and(|a| a != sum_amount) {
            flag("order_amount");
        }
        if order_tax.is_some_and(|x| (x - sum_tax).abs() > lines.len() as i128) {
            flag("order_tax_amount");
        }
    }
    bad.dedup();
    bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Map<String, Value> {
        json!({
            "purchase_country": "SE", "purchase_currency": "SEK", "locale": "sv-SE",
            "order_amount": 50000, "order_tax_amount": 4545,
            "order_lines": [{
                "type": "physical", "reference": "19-402", "name": "Yellow T-Shirt",
                "quantity": 5, "unit_price": 10000, "tax_rate": 1000,
                "total_amount": 50000, "total_discount_amount": 0, "total_tax_amount": 4545
            }],
            "merchant_reference1": "cart",
            "merchant_urls": {
                "terms": "https://shop.example/terms",
                "checkout": "https://shop.example/checkout?kustom_order_id={checkout.order.id}",
                "confirmation": "https://shop.example/confirm?kustom_order_id={checkout.order.id}",
                "push": "https://gw.example/webhooks/kustom?kustom_order_id={checkout.order.id}"
            }
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn with(change: impl FnOnce(&mut Map<String, Value>)) -> Map<String, Value> {
        let mut o = valid();
        change(&mut o);
        o
    }

    fn line(o: &mut Map<String, Value>) -> &mut Map<String, Value> {
        o.get_mut("order_lines").unwrap()[0]
            .as_object_mut()
            .unwrap()
    }

    #[test]
    fn kustoms_own_example_order_is_accepted() {
        assert_eq!(check_order(&valid()), Vec::<String>::new());
    }

    #[test]
    fn the_fake_rejects_exactly_what_kustom_rejects() {
        // (what, the order, the messages Kustom answers with; none = accepted)
        type Case = (&'static str, Map<String, Value>, &'static [&'static str]);
        let cases: Vec<Case> = vec![
            (
                "tax one above the formula",
                with(|o| {
                    line(o).insert("total_tax_amount".into(), json!(4546));
                    o.insert("order_tax_amount".into(), json!(4546));
                }),
                &[],
            ),
            // The exact tax is 4545.45…: 4544 is 1.45 away (refused by the strictest reading).
            (
                "tax 1.45 below the formula",
                with(|o| {
                    line(o).insert("total_tax_amount".into(), json!(4544));
                    o.insert("order_tax_amount".into(), json!(4544));
                }),
                &["Bad value: order_lines[0].total_tax_amount"],
            ),
            (
                "tax two off",
                with(|o| {
                    line(o).insert("total_tax_amount".into(), json!(4547));
                    o.insert("order_tax_amount".into(), json!(4547));
                }),
                &["Bad value: order_lines[0].total_tax_amount"],
            ),
            (
                "tax as if added on top",
                with(|o| {
                    line(o).insert("total_tax_amount".into(), json!(5000));
                    o.insert("order_tax_amount".into(), json!(5000));
                }),
                &["Bad value: order_lines[0].total_tax_amount"],
            ),
            (
                "total within ±quantity",
                with(|o| {
                    line(o).insert("total_amount".into(), json!(50005));
                    line(o).insert("total_tax_amount".into(), json!(4546));
                    o.insert("order_amount".into(), json!(50005));
                    o.insert("order_tax_amount".into(), json!(4546));
                }),
                &[],
            ),
            (
                "total beyond ±quantity",
                with(|o| {
                    line(o).insert("total_amount".into(), json!(50006));
                    line(o).insert("total_tax_amount".into(), json!(4546));
                    o.insert("order_amount".into(), json!(50006));
                    o.insert("order_tax_amount".into(), json!(4546));
                }),
                &["Bad value: order_lines[0].total_amount"],
            ),
            (
                "discount not deducted",
                with(|o| {
                    line(o).insert("total_discount_amount".into(), json!(1000));
                }),
                &["Bad value: order_lines[0].total_amount"],
            ),
            (
                "negative discount",
                with(|o| {
                    line(o).insert("total_discount_amount".into(), json!(-1));
                }),
                &["Bad value: order_lines[0].total_discount_amount"],
            ),
            (
                "order amount not the sum",
                with(|o| {
                    o.insert("order_amount".into(), json!(50001));
                }),
                &["Bad value: order_amount"],
            ),
            (
                "order tax within the number of lines",
                with(|o| {
                    o.insert("order_tax_amount".into(), json!(4546));
                }),
                &[],
            ),
            (
                "order tax beyond the number of lines",
                with(|o| {
                    o.insert("order_tax_amount".into(), json!(4547));
                }),
                &["Bad value: order_tax_amount"],
            ),
            (
                "rate above 100 %",
                with(|o| {
                    line(o).insert("tax_rate".into(), json!(10001));
                }),
                &["Bad value: order_lines[0].tax_rate"],
            ),
            (
                "fractional amount",
                with(|o| {
                    line(o).insert("unit_price".into(), json!(100.5));
                }),
                &[
                    "Bad value: order_lines[0].unit_price",
                    "Bad value: order_lines[0].total_amount",
                ],
            ),
            (
                "amount as text",
                with(|o| {
                    o.insert("order_amount".into(), json!("50000"));
                }),
                &["Bad value: order_amount"],
            ),
            (
                "negative quantity",
                with(|o| {
                    line(o).insert("quantity".into(), json!(-5));
                }),
                &["Bad value: order_lines[0].quantity"],
            ),
            (
                "line over the maximum",
                with(|o| {
                    line(o).insert("quantity".into(), json!(100_000));
                    line(o).insert("total_amount".into(), json!(1_000_000_000));
                    line(o).insert("total_tax_amount".into(), json!(90_909_091));
                    o.insert("order_amount".into(), json!(1_000_000_000));
                    o.insert("order_tax_amount".into(), json!(90_909_091));
                }),
                &["Bad value: order_lines[0].total_amount"],
            ),
            (
                "unknown line type",
                with(|o| {
                    line(o).insert("type".into(), json!("coupon"));
                }),
                &["Bad value: order_lines[0].type"],
            ),
            (
                "no name",
                with(|o| {
                    line(o).remove("name");
                }),
                &["Bad value: order_lines[0].name"],
            ),
            (
                "no lines",
                with(|o| {
                    o.insert("order_lines".into(), json!([]));
                }),
                &["Bad value: order_lines"],
            ),
            (
                "no push URL",
                with(|o| {
                    o["merchant_urls"].as_object_mut().unwrap().remove("push");
                }),
                &["Bad value: merchant_urls.push"],
            ),
            (
                "a relative confirmation URL",
                with(|o| {
                    o["merchant_urls"]["confirmation"] = json!("/confirm");
                }),
                &["Bad value: merchant_urls.confirmation"],
            ),
            (
                "no country",
                with(|o| {
                    o.remove("purchase_country");
                }),
                &["Bad value: purchase_country"],
            ),
            (
                "negative order",
                with(|o| {
                    line(o).insert("unit_price".into(), json!(-10000));
                    line(o).insert("total_amount".into(), json!(-50000));
                    line(o).insert("total_tax_amount".into(), json!(-4545));
                    o.insert("order_amount".into(), json!(-50000));
                    o.insert("order_tax_amount".into(), json!(-4545));
                }),
                &["Bad value: order_amount"],
            ),
            (
                "a discount line with negative tax",
                with(|o| {
                    o["order_lines"].as_array_mut().unwrap().push(json!({"type":"discount","name":"Coupon","quantity":1,"unit_price":-11000,"tax_rate":1000,"total_amount":-11000,"total_discount_amount":0,"total_tax_amount":-1000}));
                    o.insert("order_amount".into(), json!(39000));
                    o.insert("order_tax_amount".into(), json!(3545));
                }),
                &[],
            ),
        ];
        for (what, order, expected) in cases {
            let got = check_order(&order);
            let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            assert_eq!(got, expected, "{what}");
        }
    }
}
