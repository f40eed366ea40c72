//! The seeded catalog: products with prices per currency, and the cart profiles a
//! storefront can open carts under.
//!
//! The profiles cover the currency shapes that break payment code in practice: two
//! decimals (SEK, EUR), none (JPY) and three (KWD), and both tax-included and
//! tax-excluded pricing, so that the gateway's minor-unit conversion and its total checks
//! meet all of them against one sandbox. Each profile charges a flat shipping fee below
//! a free-shipping threshold, and a few coupons give promotions, so that a cart's total
//! moves for every reason a real shop's does.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

/// A product a cart line can refer to.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Product {
    pub(crate) product_number: String,
    pub(crate) name: String,
    pub(crate) image: String,
    /// The unit price per ISO 4217 currency code, in major units.
    #[serde(serialize_with = "serialize_prices")]
    pub(crate) prices: BTreeMap<String, Decimal>,
}

/// A Commerce cart profile. Only the fields Hantera documents are serialized; the tax
/// rate, the flat shipping price and its free-shipping threshold are how this sandbox
/// prices a cart, which real Hantera decides through its own pricing rules.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CartProfile {
    pub(crate) profile_key: String,
    pub(crate) channel_key: String,
    pub(crate) currency_code: String,
    pub(crate) tax_included: bool,
    pub(crate) default_country_code: String,
    pub(crate) allowed_countries: Vec<String>,
    #[serde(skip)]
    pub(crate) tax_rate: Decimal,
    #[serde(skip)]
    pub(crate) shipping: Decimal,
    /// The product total (after discounts, before tax added on top) from which shipping
    /// is free; `None` charges shipping on every non-empty cart.
    #[serde(skip)]
    pub(crate) free_shipping_from: Option<Decimal>,
}

/// What a coupon does to a cart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CouponEffect {
    /// Takes this share (0.10 = 10%) off every line, rounded per line.
    PercentOff(Decimal),
    /// Takes the whole shipping fee off, as a shipping discount.
    FreeShipping,
}

/// A coupon code a storefront can add to a cart. Cart lines keep a copy of the coupon
/// they were priced with, as they keep the profile.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Coupon {
    pub(crate) code: String,
    pub(crate) description: String,
    #[serde(skip)]
    pub(crate) effect: CouponEffect,
}

/// Everything a cart can be priced from. It never changes after start-up, so it lives
/// outside the state mutex.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    pub(crate) products: Vec<Product>,
    pub(crate) profiles: Vec<CartProfile>,
    pub(crate) coupons: Vec<Coupon>,
}

impl Catalog {
    pub(crate) fn seed() -> Self {
        // Prices are written with the currency's own number of decimals so that the
        // rendered amounts read the way a shop would print them.
        let products = [
            (
                "TSHIRT-001",
                "Organic cotton T-shirt",
                ["99.90", "9.95", "1500", "3.250"],
            ),
            (
                "MUG-002",
                "Enamel camping mug",
                ["149.00", "14.50", "2200", "4.500"],
            ),
            (
                "CAP-003",
                "Canvas cap",
                ["249.50", "22.99", "3300", "7.125"],
            ),
            (
                "SOCKS-004",
                "Merino wool socks",
                ["79.95", "7.49", "990", "2.375"],
            ),
            (
                "TOTE-005",
                "Recycled tote bag",
                ["199.00", "18.00", "2750", "5.999"],
            ),
            (
                "SHOE-006",
                "Trail running shoes",
                ["1299.00", "119.95", "17800", "39.875"],
            ),
        ]
        .into_iter()
        .map(|(number, name, prices)| Product {
            product_number: number.to_owned(),
            name: name.to_owned(),
            image: format!(
                "https://images.sandbox.invalid/products/{}.jpg",
                number.to_ascii_lowercase()
            ),
            prices: ["SEK", "EUR", "JPY", "KWD"]
                .into_iter()
                .zip(prices)
                .map(|(currency, price)| (currency.to_owned(), dec(price)))
                .collect(),
        })
        .collect();

        let profile = |key: &str,
                       currency: &str,
                       tax_included: bool,
                       (country, allowed): (&str, &[&str]),
                       tax_rate: &str,
                       (shipping, free_from): (&str, &str)| CartProfile {
            profile_key: key.to_owned(),
            channel_key: format!("web-{key}"),
            currency_code: currency.to_owned(),
            tax_included,
            default_country_code: country.to_owned(),
            allowed_countries: allowed.iter().map(|c| (*c).to_owned()).collect(),
            tax_rate: dec(tax_rate),
            shipping: dec(shipping),
            free_shipping_from: Some(dec(free_from)),
        };
        let profiles = vec![
            profile(
                "default",
                "SEK",
                true,
                ("SE", &["SE"]),
                "0.25",
                ("49.00", "500.00"),
            ),
            profile(
                "eu",
                "EUR",
                true,
                ("DE", &["DE", "AT", "FR", "NL"]),
                "0.19",
                ("4.90", "50.00"),
            ),
            profile("jp", "JPY", true, ("JP", &["JP"]), "0.10", ("500", "5000")),
            // Kuwait levies no VAT today; 5% (the GCC agreed rate) is used anyway so that
            // the tax-excluded path, where tax is added on top, is exercised in a
            // three-decimal currency.
            profile(
                "kw",
                "KWD",
                false,
                ("KW", &["KW"]),
                "0.05",
                ("1.500", "15.000"),
            ),
        ];
        let coupons = vec![
            Coupon {
                code: "WELCOME10".into(),
                description: "10% off every item".into(),
                effect: CouponEffect::PercentOff(dec("0.10")),
            },
            Coupon {
                code: "VIP20".into(),
                description: "20% off every item".into(),
                effect: CouponEffect::PercentOff(dec("0.20")),
            },
            Coupon {
                code: "FREESHIP".into(),
                description: "Free shipping".into(),
                effect: CouponEffect::FreeShipping,
            },
        ];
        Self {
            products,
            profiles,
            coupons,
        }
    }

    pub(crate) fn product(&self, product_number: &str) -> Option<&Product> {
        self.products
            .iter()
            .find(|p| p.product_number == product_number)
    }

    pub(crate) fn profile(&self, profile_key: &str) -> Option<&CartProfile> {
        self.profiles.iter().find(|p| p.profile_key == profile_key)
    }

    /// A coupon by code; codes are matched without regard to case, as customers type
    /// them.
    pub(crate) fn coupon(&self, code: &str) -> Option<&Coupon> {
        self.coupons
            .iter()
            .find(|c| c.code.eq_ignore_ascii_case(code.trim()))
    }
}

/// How many decimals an ISO 4217 currency has. The list of exceptions is the usual one;
/// everything else has two.
pub(crate) fn currency_decimals(currency_code: &str) -> u32 {
    match currency_code {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Rounds to the currency's decimals, half away from zero (0.125 SEK → 0.13), and
/// always writes that many decimals so that amounts print like money (`10.00`).
pub(crate) fn round_money(amount: Decimal, currency_code: &str) -> Decimal {
    let dp = currency_decimals(currency_code);
    let mut rounded = amount.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(dp);
    rounded
}

/// Parses a decimal literal of the seed data; the literals are constants of this file.
fn dec(literal: &str) -> Decimal {
    literal
        .parse()
        .unwrap_or_else(|_| panic!("seed literal {literal} is a decimal"))
}

fn serialize_prices<S: serde::Serializer>(
    prices: &BTreeMap<String, Decimal>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(prices.len()))?;
    for (currency, price) in prices {
        map.serialize_entry(currency, &crate::state::Amount(*price))?;
    }
    map.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_has_a_price_in_every_profile_currency() {
        let catalog = Catalog::seed();
        for product in &catalog.products {
            for profile in &catalog.profiles {
                let price = product.prices.get(&profile.currency_code);
                assert!(
                    price.is_some(),
                    "{} lacks {}",
                    product.product_number,
                    profile.currency_code
                );
                let price = price.copied().unwrap_or_default();
                assert_eq!(price.scale(), currency_decimals(&profile.currency_code));
            }
        }
    }

    #[test]
    fn all_percentage_coupons_together_never_take_more_than_a_line_is_worth() {
        // Pricing adds the discounts of every coupon on a cart without capping them, so
        // the seeded coupons must not add up to more than the whole price.
        let total: Decimal = Catalog::seed()
            .coupons
            .iter()
            .filter_map(|c| match c.effect {
                CouponEffect::PercentOff(share) => Some(share),
                CouponEffect::FreeShipping => None,
            })
            .sum();
        assert!(total <= Decimal::ONE, "{total}");
    }

    #[test]
    fn coupons_are_found_whatever_the_case_and_surrounding_spaces() {
        let catalog = Catalog::seed();
        assert!(catalog.coupon(" welcome10 ").is_some());
        assert!(catalog.coupon("NOPE").is_none());
    }

    #[test]
    fn shipping_fees_have_the_currency_decimals() {
        for profile in Catalog::seed().profiles {
            let dp = currency_decimals(&profile.currency_code);
            assert_eq!(profile.shipping.scale(), dp, "{}", profile.profile_key);
            let from = profile.free_shipping_from.unwrap_or_default();
            assert_eq!(from.scale(), dp, "{}", profile.profile_key);
        }
    }

    #[test]
    fn money_rounds_half_away_from_zero_to_the_currency_decimals() {
        assert_eq!(round_money(dec("0.125"), "SEK").to_string(), "0.13");
        assert_eq!(round_money(dec("-0.125"), "SEK").to_string(), "-0.13");
        assert_eq!(round_money(dec("10.5"), "JPY").to_string(), "11");
        assert_eq!(round_money(dec("1.0005"), "KWD").to_string(), "1.001");
        assert_eq!(round_money(dec("10"), "EUR").to_string(), "10.00");
    }
}
