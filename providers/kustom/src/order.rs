//! Kustom's order wire format and the conversion of a Hantera cart into order lines.
//!
//! Every amount is in minor units and includes tax. A cart line becomes one order line:
//! `unit_price` is Hantera's unit price, `total_discount_amount` the line's discount, and
//! `total_amount` Hantera's line total, so that `quantity × unit_price −
//! total_discount_amount = total_amount` holds as Kustom requires. The rate is derived
//! from the line's total and tax ([`crate::tax`]).
//!
//! Whatever the cart total holds beyond its lines (shipping, an order-level discount)
//! becomes one more line, with the tax that the cart's tax total holds beyond its lines:
//! `shipping_fee` when positive, `discount` when negative. The order's amounts are then
//! the sums of its lines, and [`OrderAmounts::check`] proves, before anything is sent,
//! that every line and both sums pass Kustom's rules and that the order amount is exactly
//! the cart total.

use psp_core::{Currency, Money, RenderedCart};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::tax::{line_tax, within_one, TaxError, TaxRates, MAX_TAX_RATE};

/// The largest `total_amount` of one line that Kustom's documentation allows.
pub const MAX_LINE_AMOUNT: i64 = 100_000_000;
/// The most order lines one order may have.
pub const MAX_LINES: usize = 1000;
const MAX_NAME: usize = 255;
const MAX_REFERENCE: usize = 64;

/// One order line, as Kustom's API reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// `physical`, `discount`, `shipping_fee`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The merchant's article number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// What the customer reads.
    pub name: String,
    /// How many units.
    pub quantity: i64,
    /// Price of one unit, tax included, discount not deducted.
    pub unit_price: i64,
    /// Basis points: 2500 is 25 %.
    pub tax_rate: i64,
    /// `quantity × unit_price − total_discount_amount`.
    pub total_amount: i64,
    /// The discount on the line, tax included; never negative.
    pub total_discount_amount: i64,
    /// The tax in `total_amount`.
    pub total_tax_amount: i64,
}

/// The amounts of an order: what a checkout order is created with and what a sync
/// replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAmounts {
    /// ISO 4217, upper case.
    pub purchase_currency: String,
    /// The sum of the lines' `total_amount`.
    pub order_amount: i64,
    /// The sum of the lines' `total_tax_amount`.
    pub order_tax_amount: i64,
    /// The lines.
    pub order_lines: Vec<OrderLine>,
}

/// Why a cart cannot become a Kustom order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// An amount cannot be expressed in the currency's minor units.
    #[error("{0}")]
    Money(String),
    /// A line's tax matches no recognised rate.
    #[error("line {line}: {source}")]
    Tax {
        /// The line, as Hantera names it.
        line: String,
        /// Why.
        source: TaxError,
    },
    /// The cart's figures contradict each other or Kustom's limits.
    #[error("{0}")]
    Inconsistent(String),
}

impl OrderAmounts {
    /// Builds the order amounts for a cart (tax-inclusive prices).
    pub fn from_cart(cart: &RenderedCart, rates: &TaxRates) -> Result<Self, BuildError> {
        let total = cart
            .total()
            .map_err(|e| BuildError::Money(format!("the cart total cannot be paid: {e}")))?;
        let currency = total.currency;
        let tax_total = minor(cart.order_tax_total, currency, "the cart's tax total")?;

        let mut drafts = Vec::with_capacity(cart.items.len() + 1);
        for item in &cart.items {
            let label = item
                .description
                .clone()
                .unwrap_or_else(|| item.product_number.clone());
            let quantity = item.quantity;
            let line_total = minor(item.total, currency, &format!("{label}: total"))?;
            let tax = minor(item.tax, currency, &format!("{label}: tax"))?;
            if quantity < 0 {
                return Err(BuildError::Inconsistent(format!(
                    "{label}: negative quantity {quantity}"
                )));
            }
            if quantity == 0 {
                if line_total != 0 || tax != 0 {
                    return Err(BuildError::Inconsistent(format!(
                        "{label}: no units but a total of {line_total}"
                    )));
                }
                // A line with nothing in it is not worth showing the customer.
                continue;
            }
            let unit = unit_minor(item.unit_price, currency, &label)?;
            // Kustom's identity `quantity × unit_price − discount = total` is made exact
            // through the discount. With Hantera's exact figures that is Hantera's own
            // discount; a unit price that had to be rounded leaves a remainder Kustom
            // tolerates up to one minor unit per unit, and no more.
            let gross = i128::from(quantity) * i128::from(unit);
            let discount = gross - i128::from(line_total);
            let discount = if discount >= 0 {
                i64::try_from(discount).map_err(|_| out_of_range(&label))?
            } else if -discount <= i128::from(quantity) {
                0
            } else {
                return Err(BuildError::Inconsistent(format!(
                    "{label}: total {line_total} exceeds {quantity} × {unit}"
                )));
            };
            drafts.push(Draft {
                kind: if line_total < 0 {
                    "discount"
                } else {
                    "physical"
                },
                reference: Some(truncate(&item.product_number, MAX_REFERENCE)),
                name: truncate(&label, MAX_NAME),
                quantity,
                unit_price: unit,
                discount,
                total: line_total,
                tax,
            });
        }

        let items_total: i128 = drafts.iter().map(|d| i128::from(d.total)).sum();
        let items_tax: i128 = drafts.iter().map(|d| i128::from(d.tax)).sum();
        let rest_total = i64::try_from(i128::from(total.minor) - items_total)
            .map_err(|_| out_of_range("the cart"))?;
        let rest_tax = i64::try_from(i128::from(tax_total) - items_tax)
            .map_err(|_| out_of_range("the cart"))?;
        if rest_total == 0 && rest_tax != 0 {
            return Err(BuildError::Inconsistent(format!(
                "the cart's tax total differs from its lines' taxes by {rest_tax} although its total equals theirs"
            )));
        }
        if rest_total != 0 {
            let (kind, name) = match (drafts.is_empty(), rest_total > 0) {
                (true, _) => ("physical", cart_name(cart)),
                (false, true) => ("shipping_fee", "Shipping".to_string()),
                (false, false) => ("discount", "Discount".to_string()),
            };
            drafts.push(Draft {
                kind,
                reference: Some(kind.to_string()),
                name,
                quantity: 1,
                unit_price: rest_total,
                discount: 0,
                total: rest_total,
                tax: rest_tax,
            });
        }
        if drafts.is_empty() {
            return Err(BuildError::Inconsistent(
                "the cart has nothing to pay".into(),
            ));
        }
        if drafts.len() > MAX_LINES {
            return Err(BuildError::Inconsistent(format!(
                "{} lines; Kustom takes at most {MAX_LINES}",
                drafts.len()
            )));
        }

        // Rates of the lines with money on them; a line of zero total (a free gift) takes
        // the order's most common rate, since it carries no tax either way.
        let mut rated = Vec::with_capacity(drafts.len());
        for d in &drafts {
            let rate = if d.total == 0 {
                if d.tax != 0 {
                    return Err(BuildError::Tax {
                        line: d.name.clone(),
                        source: TaxError::TaxOnZero(d.tax),
                    });
                }
                None
            } else {
                Some(rates.derive(d.total, d.tax, d.quantity).map_err(|source| {
                    BuildError::Tax {
                        line: d.name.clone(),
                        source,
                    }
                })?)
            };
            rated.push(rate);
        }
        let usual = most_common(&rated);

        let order_lines: Vec<OrderLine> = drafts
            .into_iter()
            .zip(rated)
            .map(|(d, rate)| {
                let rate = rate.unwrap_or(usual);
                OrderLine {
                    kind: d.kind.to_string(),
                    reference: d.reference,
                    name: d.name,
                    quantity: d.quantity,
                    unit_price: d.unit_price,
                    tax_rate: rate,
                    total_amount: d.total,
                    total_discount_amount: d.discount,
                    total_tax_amount: line_tax(d.total, rate, d.tax),
                }
            })
            .collect();
        let amounts = Self {
            purchase_currency: currency.code().to_string(),
            order_amount: order_lines.iter().map(|l| l.total_amount).sum(),
            order_tax_amount: order_lines.iter().map(|l| l.total_tax_amount).sum(),
            order_lines,
        };
        amounts.check(total)?;
        Ok(amounts)
    }

    /// Proves the order passes Kustom's amount rules and pays exactly `expected`.
    pub fn check(&self, expected: Money) -> Result<(), BuildError> {
        let bad = |what: String| Err(BuildError::Inconsistent(what));
        if !self
            .purchase_currency
            .eq_ignore_ascii_case(expected.currency.code())
        {
            return bad(format!(
                "the order is in {}, the cart in {}",
                self.purchase_currency, expected.currency
            ));
        }
        let mut amount: i128 = 0;
        let mut tax: i128 = 0;
        for (i, l) in self.order_lines.iter().enumerate() {
            if l.quantity < 0 {
                return bad(format!("order_lines[{i}].quantity is negative"));
            }
            if !(0..=MAX_TAX_RATE).contains(&l.tax_rate) {
                return bad(format!("order_lines[{i}].tax_rate is out of range"));
            }
            if l.total_discount_amount < 0 {
                return bad(format!(
                    "order_lines[{i}].total_discount_amount is negative"
                ));
            }
            if l.total_amount.abs() > MAX_LINE_AMOUNT {
                return bad(format!(
                    "order_lines[{i}].total_amount exceeds Kustom's maximum"
                ));
            }
            let expected_total = i128::from(l.quantity) * i128::from(l.unit_price)
                - i128::from(l.total_discount_amount);
            if (expected_total - i128::from(l.total_amount)).abs() > i128::from(l.quantity) {
                return bad(format!(
                    "order_lines[{i}].total_amount is not quantity × unit_price − total_discount_amount"
                ));
            }
            if !within_one(l.total_amount, l.tax_rate, l.total_tax_amount) {
                return bad(format!(
                    "order_lines[{i}].total_tax_amount is outside Kustom's ±1 of its rate"
                ));
            }
            amount += i128::from(l.total_amount);
            tax += i128::from(l.total_tax_amount);
        }
        if amount != i128::from(self.order_amount) || tax != i128::from(self.order_tax_amount) {
            return bad("the order amounts are not the sums of the lines".into());
        }
        if self.order_amount != expected.minor {
            return bad(format!(
                "the order amount {} is not the cart total {}",
                self.order_amount, expected.minor
            ));
        }
        Ok(())
    }
}

struct Draft {
    kind: &'static str,
    reference: Option<String>,
    name: String,
    quantity: i64,
    unit_price: i64,
    discount: i64,
    total: i64,
    tax: i64,
}

fn cart_name(cart: &RenderedCart) -> String {
    match &cart.cart_number {
        Some(n) => truncate(&format!("Order {n}"), MAX_NAME),
        None => "Order".to_string(),
    }
}

/// The most frequent rate among rated lines (the highest on a tie), or 0 when none is.
fn most_common(rates: &[Option<i64>]) -> i64 {
    let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
    for r in rates.iter().flatten() {
        *counts.entry(*r).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(rate, n)| (n, rate))
        .map(|(rate, _)| rate)
        .unwrap_or(0)
}

fn minor(value: Decimal, currency: Currency, what: &str) -> Result<i64, BuildError> {
    Money::from_decimal(value, currency)
        .map(|m| m.minor)
        .map_err(|e| BuildError::Money(format!("{what}: {e}")))
}

/// A unit price in minor units. Hantera may compute unit prices with more decimals than
/// the currency has (a price entered without tax, for example); Kustom's unit price is a
/// display figure checked against the total within a minor unit per unit, so it is
/// rounded, while totals and taxes must be exact.
fn unit_minor(value: Decimal, currency: Currency, label: &str) -> Result<i64, BuildError> {
    let rounded =
        value.round_dp_with_strategy(currency.exponent(), RoundingStrategy::MidpointAwayFromZero);
    minor(rounded, currency, &format!("{label}: unit price"))
}

fn out_of_range(what: &str) -> BuildError {
    BuildError::Inconsistent(format!("{what}: amounts out of range"))
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use psp_core::{CartItem, CartState};
    use uuid::Uuid;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn item(
        product: &str,
        qty: i64,
        unit: &str,
        discount: &str,
        total: &str,
        tax: &str,
    ) -> CartItem {
        CartItem {
            product_number: product.into(),
            quantity: qty,
            description: Some(format!("{product} description")),
            unit_price: dec(unit),
            total: dec(total),
            tax: dec(tax),
            discount: dec(discount),
        }
    }

    fn cart(currency: &str, total: &str, tax: &str, items: Vec<CartItem>) -> RenderedCart {
        RenderedCart {
            cart_id: Uuid::new_v4(),
            cart_number: Some("C-1".into()),
            cart_state: CartState::Open,
            currency_code: currency.into(),
            order_total: dec(total),
            order_tax_total: dec(tax),
            items,
            order_number: None,
        }
    }

    fn build(c: &RenderedCart) -> OrderAmounts {
        OrderAmounts::from_cart(c, &TaxRates::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_swedish_cart_with_three_rates_a_discount_and_shipping_becomes_exact_lines() {
        // 2 × 99.90 at 25 % with 20.00 off, 3 × 45.00 books at 6 %, 1 × 28.00 food at 12 %,
        // and 49.00 shipping at 25 % that the lines do not hold.
        let c = cart(
            "SEK",
            "391.80",
            "56.40",
            vec![
                item("TSHIRT", 2, "99.90", "20.00", "179.80", "35.96"),
                item("BOOK", 3, "45.00", "0", "135.00", "7.64"),
                item("FOOD", 1, "28.00", "0", "28.00", "3.00"),
            ],
        );
        let o = build(&c);
        assert_eq!(o.purchase_currency, "SEK");
        assert_eq!(o.order_amount, 39_180);
        let rates: Vec<i64> = o.order_lines.iter().map(|l| l.tax_rate).collect();
        assert_eq!(rates, vec![2500, 600, 1200, 2500]);
        let t = &o.order_lines[0];
        assert_eq!(
            (
                t.quantity,
                t.unit_price,
                t.total_discount_amount,
                t.total_amount
            ),
            (2, 9_990, 2_000, 17_980)
        );
        let shipping = &o.order_lines[3];
        assert_eq!(shipping.kind, "shipping_fee");
        assert_eq!(shipping.total_amount, 4_900);
        assert_eq!(shipping.total_tax_amount, 980);
        assert_eq!(o.order_tax_amount, 5_640, "the cart's own tax total");
    }

    #[test]
    fn an_order_level_discount_becomes_a_negative_discount_line() {
        let c = cart(
            "EUR",
            "40.00",
            "6.38",
            vec![item("MUG", 2, "25.00", "0", "50.00", "7.98")],
        );
        let o = build(&c);
        let d = &o.order_lines[1];
        assert_eq!(d.kind, "discount");
        assert_eq!(
            (d.total_amount, d.total_tax_amount, d.tax_rate),
            (-1_000, -160, 1900)
        );
        assert_eq!(o.order_amount, 4_000);
    }

    #[test]
    fn a_cart_without_lines_is_one_line_for_the_whole_order() {
        let c = cart("SEK", "123.45", "0", vec![]);
        let o = build(&c);
        assert_eq!(o.order_lines.len(), 1);
        assert_eq!(o.order_lines[0].name, "Order C-1");
        assert_eq!(o.order_lines[0].tax_rate, 0);
    }

    #[test]
    fn a_free_line_takes_the_orders_usual_rate_and_an_empty_line_is_dropped() {
        let c = cart(
            "SEK",
            "125.00",
            "25.00",
            vec![
                item("A", 1, "125.00", "0", "125.00", "25.00"),
                item("GIFT", 1, "50.00", "50.00", "0", "0"),
                item("GONE", 0, "50.00", "0", "0", "0"),
            ],
        );
        let o = build(&c);
        assert_eq!(o.order_lines.len(), 2);
        assert_eq!(o.order_lines[1].tax_rate, 2500);
        assert_eq!(o.order_lines[1].total_discount_amount, 5_000);
    }

    #[test]
    fn a_unit_price_with_extra_decimals_is_rounded_within_kustoms_tolerance() {
        // 3 × 33.333… = 100.00: the unit price shows as 33.33 and the line stays exact.
        let c = cart(
            "SEK",
            "100.00",
            "20.00",
            vec![item("X", 3, "33.3333", "0", "100.00", "20.00")],
        );
        let o = build(&c);
        let l = &o.order_lines[0];
        assert_eq!(
            (l.unit_price, l.total_discount_amount, l.total_amount),
            (3_333, 0, 10_000)
        );
    }

    #[test]
    fn carts_that_cannot_be_an_honest_kustom_order_are_refused() {
        let cases = [
            // 25.07 %.
            cart(
                "SEK",
                "10000.00",
                "2005.60",
                vec![item("X", 1, "10000.00", "0", "10000.00", "2005.60")],
            ),
            // Tax on nothing.
            cart(
                "SEK",
                "100.00",
                "21.00",
                vec![item("X", 1, "100.00", "0", "100.00", "20.00")],
            ),
            // More decimals than the currency has.
            cart("SEK", "100.001", "0", vec![]),
            // A total larger than quantity × unit price.
            cart(
                "SEK",
                "150.00",
                "30.00",
                vec![item("X", 1, "100.00", "0", "150.00", "30.00")],
            ),
            // Nothing to pay.
            cart("SEK", "0", "0", vec![]),
            // One line over Kustom's maximum.
            cart(
                "SEK",
                "2000000.00",
                "400000.00",
                vec![item("X", 1, "2000000.00", "0", "2000000.00", "400000.00")],
            ),
        ];
        for c in cases {
            assert!(
                OrderAmounts::from_cart(&c, &TaxRates::default()).is_err(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn the_check_refuses_sums_that_do_not_add_up_and_a_wrong_total() {
        let c = cart(
            "SEK",
            "125.00",
            "25.00",
            vec![item("A", 1, "125.00", "0", "125.00", "25.00")],
        );
        let o = build(&c);
        let sek = Currency::from_code("SEK").unwrap();
        assert!(o.check(Money::from_minor(12_500, sek)).is_ok());
        assert!(o.check(Money::from_minor(12_501, sek)).is_err());
        let mut wrong = o.clone();
        wrong.order_tax_amount += 1;
        assert!(wrong.check(Money::from_minor(12_500, sek)).is_err());
        let mut wrong = o.clone();
        wrong.order_lines[0].total_tax_amount = 3_000;
        wrong.order_tax_amount = 3_000;
        assert!(wrong.check(Money::from_minor(12_500, sek)).is_err());
        let eur = Currency::from_code("EUR").unwrap();
        assert!(o.check(Money::from_minor(12_500, eur)).is_err());
    }
}
