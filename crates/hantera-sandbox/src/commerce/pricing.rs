//! Pricing a cart, in exact decimal arithmetic.
//!
//! - A line's gross is `unitPrice × quantity` (exact: unit prices carry the currency's
//!   decimals). Each percentage coupon takes `gross × share` off it, rounded per line and
//!   per coupon to the currency's decimals, half away from zero; the line's `discount` is
//!   the sum and its `total` is `gross − discount`.
//! - A line's tax is `total × rate / (1 + rate)` when prices include tax and
//!   `total × rate` when they do not, rounded per line.
//! - Shipping is the profile's flat fee for a non-empty cart whose product total is below
//!   the profile's free-shipping threshold, else zero. A free-shipping coupon gives a
//!   `shippingDiscount` of the whole fee. Shipping is taxed like a line, on
//!   `shippingTotal − shippingDiscount`.
//! - `productTotal` is the sum of line totals; `orderTaxTotal` the line taxes plus the
//!   shipping tax; `orderTotal` is `productTotal + shippingTotal − shippingDiscount`, plus
//!   `orderTaxTotal` when prices exclude tax.
//!
//! Rounding per line (rather than on the order) is what makes the order's numbers the
//! exact sums of the lines' numbers, which is what a storefront shows and what a PSP is
//! asked to charge.

use rust_decimal::Decimal;

use crate::catalog::{round_money, CartProfile, Coupon, CouponEffect};
use crate::state::CartLine;

/// The priced amounts of one line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PricedLine {
    pub(crate) discount: Decimal,
    pub(crate) total: Decimal,
    pub(crate) tax: Decimal,
}

/// The priced amounts of a cart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Totals {
    /// One per cart line, in line order.
    pub(crate) lines: Vec<PricedLine>,
    /// What each coupon of the cart took off, in coupon order.
    pub(crate) promotions: Vec<Decimal>,
    pub(crate) product_total: Decimal,
    pub(crate) shipping_total: Decimal,
    pub(crate) shipping_tax: Decimal,
    pub(crate) shipping_discount: Decimal,
    pub(crate) order_total: Decimal,
    pub(crate) order_tax_total: Decimal,
}

/// Prices cart lines with coupons under a profile; see the module documentation.
pub(crate) fn price(lines: &[CartLine], coupons: &[Coupon], profile: &CartProfile) -> Totals {
    let currency = profile.currency_code.as_str();
    let money = |amount: Decimal| round_money(amount, currency);
    let tax_of = |amount: Decimal| {
        let rate = profile.tax_rate;
        money(if profile.tax_included {
            amount * rate / (Decimal::ONE + rate)
        } else {
            amount * rate
        })
    };
    let zero = money(Decimal::ZERO);

    let mut promotions = vec![zero; coupons.len()];
    let priced: Vec<PricedLine> = lines
        .iter()
        .map(|line| {
            let gross = money(line.unit_price * Decimal::from(line.quantity));
            let mut discount = zero;
            for (taken, coupon) in promotions.iter_mut().zip(coupons) {
                if let CouponEffect::PercentOff(share) = coupon.effect {
                    let off = money(gross * share);
                    *taken += off;
                    discount += off;
                }
            }
            let total = gross - discount;
            PricedLine {
                discount,
                total,
                tax: tax_of(total),
            }
        })
        .collect();

    let product_total = priced.iter().fold(zero, |sum, line| sum + line.total);
    let free = profile
        .free_shipping_from
        .is_some_and(|from| product_total >= from);
    let shipping_total = if lines.is_empty() || free {
        zero
    } else {
        money(profile.shipping)
    };
    let mut shipping_discount = zero;
    for (taken, coupon) in promotions.iter_mut().zip(coupons) {
        if coupon.effect == CouponEffect::FreeShipping {
            // A second free-shipping coupon has nothing left to take.
            let off = shipping_total - shipping_discount;
            *taken += off;
            shipping_discount += off;
        }
    }
    let shipping_tax = tax_of(shipping_total - shipping_discount);
    let order_tax_total = priced.iter().fold(shipping_tax, |sum, line| sum + line.tax);
    let mut order_total = product_total + shipping_total - shipping_discount;
    if !profile.tax_included {
        order_total += order_tax_total;
    }
    Totals {
        lines: priced,
        promotions,
        product_total,
        shipping_total,
        shipping_tax,
        shipping_discount,
        order_total,
        order_tax_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use uuid::Uuid;

    fn line(unit_price: &str, quantity: i64) -> CartLine {
        CartLine {
            cart_item_id: Uuid::nil(),
            product_number: "P".into(),
            quantity,
            description: None,
            image: None,
            unit_price: unit_price.parse().unwrap_or_default(),
        }
    }

    fn profile(key: &str) -> CartProfile {
        Catalog::seed()
            .profile(key)
            .cloned()
            .unwrap_or_else(|| panic!("profile {key} is seeded"))
    }

    fn coupon(code: &str) -> Coupon {
        Catalog::seed()
            .coupon(code)
            .cloned()
            .unwrap_or_else(|| panic!("coupon {code} is seeded"))
    }

    fn s(d: Decimal) -> String {
        d.to_string()
    }

    #[test]
    fn tax_included_prices_extract_the_tax_from_the_line_total() {
        let totals = price(&[line("99.90", 3)], &[], &profile("default"));
        assert_eq!(s(totals.lines[0].total), "299.70");
        assert_eq!(s(totals.lines[0].tax), "59.94");
        // Below the 500.00 threshold: 49.00 shipping, of which 9.80 is tax.
        assert_eq!(s(totals.shipping_total), "49.00");
        assert_eq!(s(totals.shipping_tax), "9.80");
        assert_eq!(s(totals.order_total), "348.70");
        assert_eq!(s(totals.order_tax_total), "69.74");
    }

    #[test]
    fn tax_excluded_prices_add_the_tax_on_top() {
        // 2 × 3.250 = 6.500 KWD; 5% of it is 0.325.
        let totals = price(&[line("3.250", 2), line("5.999", 1)], &[], &profile("kw"));
        assert_eq!(s(totals.product_total), "12.499");
        // 5.999 × 0.05 = 0.29995, rounded half away from zero to 0.300.
        assert_eq!(s(totals.lines[1].tax), "0.300");
        // Shipping 1.500 carries 0.075 tax.
        assert_eq!(s(totals.shipping_tax), "0.075");
        assert_eq!(s(totals.order_tax_total), "0.700");
        assert_eq!(s(totals.order_total), "14.699");
    }

    #[test]
    fn shipping_is_free_from_the_threshold_and_for_an_empty_cart() {
        let p = profile("default");
        let at = price(&[line("250.00", 2)], &[], &p);
        assert_eq!(s(at.shipping_total), "0.00");
        assert_eq!(s(at.order_total), "500.00");
        let below = price(&[line("249.99", 2)], &[], &p);
        assert_eq!(s(below.shipping_total), "49.00");
        let empty = price(&[], &[], &p);
        assert_eq!(s(empty.order_total), "0.00");
        assert_eq!(s(empty.shipping_total), "0.00");
    }

    #[test]
    fn a_percentage_coupon_discounts_each_line_before_tax_and_threshold() {
        // 10% of 599.70 is 59.97, which leaves 539.73: still free shipping.
        let totals = price(
            &[line("199.90", 3)],
            &[coupon("WELCOME10")],
            &profile("default"),
        );
        assert_eq!(s(totals.lines[0].discount), "59.97");
        assert_eq!(s(totals.lines[0].total), "539.73");
        // 539.73 × 0.25 / 1.25 = 107.946, rounded to 107.95.
        assert_eq!(s(totals.lines[0].tax), "107.95");
        assert_eq!(s(totals.promotions[0]), "59.97");
        assert_eq!(s(totals.order_total), "539.73");
        // 20% more pushes it under 500.00, so shipping comes back.
        let totals = price(
            &[line("199.90", 3)],
            &[coupon("WELCOME10"), coupon("VIP20")],
            &profile("default"),
        );
        assert_eq!(s(totals.lines[0].discount), "179.91");
        assert_eq!(s(totals.shipping_total), "49.00");
        assert_eq!(s(totals.order_total), "468.79");
    }

    #[test]
    fn a_free_shipping_coupon_discounts_the_whole_fee_and_its_tax() {
        let totals = price(
            &[line("99.90", 1)],
            &[coupon("FREESHIP")],
            &profile("default"),
        );
        assert_eq!(s(totals.shipping_total), "49.00");
        assert_eq!(s(totals.shipping_discount), "49.00");
        assert_eq!(s(totals.shipping_tax), "0.00");
        assert_eq!(s(totals.promotions[0]), "49.00");
        assert_eq!(s(totals.order_total), "99.90");
    }

    #[test]
    fn yen_totals_have_no_decimals() {
        let totals = price(&[line("1500", 3)], &[], &profile("jp"));
        // 4500 × 0.10 / 1.10 = 409.0909…, which rounds to 409; shipping 500 adds
        // 45.4545…, which rounds to 45.
        assert_eq!(s(totals.order_total), "5000");
        assert_eq!(s(totals.order_tax_total), "454");
    }
}
