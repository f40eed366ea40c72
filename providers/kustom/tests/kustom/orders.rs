//! Every order the adapter sends is one the strict fake Kustom accepts: carts with several
//! tax rates, discounts, shipping and quantities above one, in SEK and EUR, and (a
//! property test) random carts priced the way Hantera prices them.

use crate::common;

use std::sync::OnceLock;

use common::{cart, item, world, World};
use proptest::prelude::*;
use psp_core::{CheckoutRequest, ExistingSession, Provider, ProviderError};
use serde_json::{json, Value};

fn lines_of(w: &World, order_id: &str) -> Vec<Value> {
    let order = w.fake.order(order_id).expect("the fake holds the order");
    order.checkout["order_lines"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn carts_with_several_rates_discounts_shipping_and_quantities_are_accepted_in_sek_and_eur() {
    let w = world(json!({})).await;
    let carts = [
        // Sweden: clothes at 25 % (one discounted), books at 6 %, food at 12 %, shipping.
        cart(
            "SEK",
            vec![
                item("TSHIRT", 3, "99.90", "29.97", "25"),
                item("BOOK", 2, "189.00", "0", "6"),
                item("COFFEE", 4, "64.95", "10.00", "12"),
            ],
            Some(("49.00", "25")),
        ),
        // Sweden: an order-level coupon instead of shipping.
        cart(
            "SEK",
            vec![
                item("MUG", 2, "149.00", "0", "25"),
                item("SOCKS", 5, "79.95", "0", "25"),
            ],
            Some(("-100.00", "25")),
        ),
        // Germany: 19 % and 7 % with shipping.
        cart(
            "EUR",
            vec![
                item("CAP", 2, "22.99", "2.00", "19"),
                item("BOOK", 3, "14.95", "0", "7"),
            ],
            Some(("4.95", "19")),
        ),
        // Finland: 25.5 %, 14 % and 10 %.
        cart(
            "EUR",
            vec![
                item("SHOE", 1, "119.95", "12.00", "25.5"),
                item("BREAD", 6, "3.49", "0", "14"),
                item("NEWS", 1, "4.90", "0", "10"),
            ],
            None,
        ),
    ];
    for c in carts {
        let (c, session) = w.cart_and_checkout(c).await;
        let total = c.total().unwrap();
        assert_eq!(session.amount, total);
        let order = w.fake.order(&session.psp_ref).expect("accepted and held");
        assert_eq!(order.checkout["order_amount"], total.minor);
        assert_eq!(order.checkout["purchase_currency"], total.currency.code());
        assert_eq!(
            order.checkout["merchant_reference1"],
            c.cart_id.to_string(),
            "the cart id is the merchant reference"
        );
        let lines = lines_of(&w, &session.psp_ref);
        assert!(lines.len() >= c.items.len());
        for l in &lines {
            let rate = l["tax_rate"].as_i64().unwrap();
            assert_eq!(rate % 50, 0, "a recognised rate, not {rate}");
        }
    }
}

#[tokio::test]
async fn a_cart_that_changed_before_payment_updates_the_same_order() {
    let w = world(json!({})).await;
    let (c, session) = w
        .cart_and_checkout(cart("SEK", vec![item("MUG", 1, "149.00", "0", "25")], None))
        .await;
    let grown = psp_core::RenderedCart {
        cart_id: c.cart_id,
        ..cart(
            "SEK",
            vec![
                item("MUG", 3, "149.00", "0", "25"),
                item("BOOK", 1, "189.00", "0", "6"),
            ],
            Some(("49.00", "25")),
        )
    };
    let existing = ExistingSession {
        psp_ref: session.psp_ref.clone(),
        amount: session.amount,
        client: session.client.clone(),
    };
    let updated = w
        .provider
        .checkout(CheckoutRequest {
            cart: &grown,
            amount: grown.total().unwrap(),
            body: &json!({}),
            existing: Some(&existing),
            idempotency_key: "k",
            webhook_url: "http://127.0.0.1:9/webhooks/kustom",
        })
        .await
        .expect("an open order takes the new cart");
    assert_eq!(updated.psp_ref, session.psp_ref, "the same order, updated");
    assert_eq!(w.fake.orders().len(), 1);
    let order = w.fake.order(&session.psp_ref).unwrap();
    assert_eq!(order.updates, 1);
    assert_eq!(order.checkout["order_amount"], grown.total().unwrap().minor);
}

#[tokio::test]
async fn a_cart_with_a_tax_no_authority_would_recognise_is_refused_before_kustom_is_called() {
    let w = world(json!({})).await;
    let mut c = cart("SEK", vec![item("ODD", 1, "10000.00", "0", "25")], None);
    // 25.07 %.
    c.items[0].tax = "2005.60".parse().unwrap();
    c.order_tax_total = c.items[0].tax;
    w.hantera.insert_cart(c.clone());
    let err = w
        .provider
        .checkout(CheckoutRequest {
            cart: &c,
            amount: c.total().unwrap(),
            body: &json!({}),
            existing: None,
            idempotency_key: "k-odd",
            webhook_url: "http://127.0.0.1:9/webhooks/kustom",
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::BadRequest(_)), "{err}");
    assert!(err.to_string().contains("recognised"), "{err}");
    assert_eq!(w.fake.orders().len(), 0, "nothing was sent");
}

// ---------------------------------------------------------------------------------------
// Property: random carts priced as Hantera prices them.
// ---------------------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn shared_world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| runtime().block_on(world(json!({}))))
}

#[derive(Debug, Clone)]
struct Line {
    quantity: i64,
    unit_minor: i64,
    discount_permille: i64,
    rate: &'static str,
    /// Tax rounded per unit and multiplied, as some shops price: up to half a minor unit
    /// per unit away from the line's exact tax.
    per_unit_tax: bool,
}

fn currency_and_rates() -> impl Strategy<Value = (&'static str, &'static [&'static str])> {
    prop_oneof![
        Just(("SEK", &["25", "12", "6", "0"][..])),
        Just(("EUR", &["19", "7", "0"][..])),
        Just(("EUR", &["25.5", "14", "10"][..])),
        Just(("NOK", &["25", "15", "12"][..])),
    ]
}

fn random_cart() -> impl Strategy<Value = psp_core::RenderedCart> {
    currency_and_rates().prop_flat_map(|(currency, rates)| {
        let line = (
            1i64..=25,
            1i64..=2_000_000,
            prop_oneof![Just(0i64), 1i64..=500],
            0..rates.len(),
            any::<bool>(),
        )
            .prop_map(
                move |(quantity, unit_minor, discount_permille, r, per_unit_tax)| Line {
                    quantity,
                    unit_minor,
                    discount_permille,
                    rate: rates[r],
                    per_unit_tax,
                },
            );
        let extra = prop_oneof![
            Just(None),
            (1i64..=20_000, 0..rates.len()).prop_map(move |(a, r)| Some((a, rates[r]))),
            (1i64..=5_000, 0..rates.len()).prop_map(move |(a, r)| Some((-a, rates[r]))),
        ];
        (proptest::collection::vec(line, 1..8), extra, Just(currency)).prop_map(
            |(lines, extra, currency)| {
                let items = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let gross = l.quantity * l.unit_minor;
                        let discount = gross * l.discount_permille / 1000;
                        let unit = rust_decimal::Decimal::new(l.unit_minor, 2).to_string();
                        let discount = rust_decimal::Decimal::new(discount, 2).to_string();
                        let mut it = item(&format!("P{i}"), l.quantity, &unit, &discount, l.rate);
                        if l.per_unit_tax && l.discount_permille == 0 {
                            it.tax = common::tax_of(it.unit_price, l.rate, 2)
                                * rust_decimal::Decimal::from(l.quantity);
                        }
                        it
                    })
                    .collect::<Vec<_>>();
                let items_total: rust_decimal::Decimal = items.iter().map(|i| i.total).sum();
                // Keep the cart payable: an order discount never exceeds the lines.
                let extra = extra.filter(|(a, _)| {
                    rust_decimal::Decimal::new(*a, 2) + items_total > rust_decimal::Decimal::ZERO
                });
                let extra_text =
                    extra.map(|(a, r)| (rust_decimal::Decimal::new(a, 2).to_string(), r));
                cart(
                    currency,
                    items,
                    extra_text.as_ref().map(|(a, r)| (a.as_str(), *r)),
                )
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn no_cart_priced_as_hantera_prices_yields_an_order_the_strict_fake_rejects(c in random_cart()) {
        let w = shared_world();
        prop_assume!(c.total().unwrap().minor > 0);
        let (c, session) = runtime().block_on(w.cart_and_checkout(c));
        let order = w.fake.order(&session.psp_ref).expect("the fake accepted the order");
        prop_assert_eq!(order.checkout["order_amount"].as_i64(), Some(c.total().unwrap().minor));
        let tax: i64 = order.checkout["order_lines"].as_array().unwrap().iter()
            .map(|l| l["total_tax_amount"].as_i64().unwrap()).sum();
        prop_assert_eq!(order.checkout["order_tax_amount"].as_i64(), Some(tax));
    }
}
