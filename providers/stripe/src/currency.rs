//! Stripe's own currency table: how many decimals Stripe's `amount` carries for a currency,
//! and which amounts it accepts.
//!
//! ISO 4217 is not enough. Stripe lists its own zero-decimal currencies (UGX among them),
//! takes three-decimal currencies only with a last digit of 0, and keeps ISK two-decimal
//! "for backwards compatibility" while accepting only whole krónur. A cart total that
//! Stripe cannot represent exactly is refused here, before any request: rounding would
//! charge the customer a different amount from the one the order says.

use psp_core::{Currency, Money};

/// Stripe's zero-decimal currencies: `amount=500` means 500 units.
pub const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Stripe's three-decimal currencies: `amount` is in thousandths, and its last digit must
/// be 0 (Stripe's payment partners settle in hundredths).
pub const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// Stripe's largest `amount`: eight digits.
pub const MAX_AMOUNT: i64 = 99_999_999;

/// How Stripe writes amounts of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripeUnit {
    /// The number of decimals in Stripe's `amount`.
    pub exponent: u32,
    /// Every amount must be a multiple of this (10 for three-decimal currencies, 100 for
    /// ISK, 1 otherwise).
    pub step: i64,
}

/// Why an amount cannot be sent to Stripe or read from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// The currency is not in Stripe's table.
    #[error("Stripe's currency table has no rule for {0}: its ISO 4217 exponent is {1}, and Stripe only documents two-decimal currencies besides its zero- and three-decimal lists")]
    Unsupported(&'static str, u32),
    /// The amount has a precision Stripe does not take for this currency.
    #[error("{amount} cannot be charged exactly with Stripe: {rule}")]
    NotRepresentable {
        /// The amount, with its currency.
        amount: String,
        /// Stripe's rule that it breaks.
        rule: String,
    },
    /// The amount is zero, negative, or larger than Stripe's eight digits.
    #[error("{amount} is outside what Stripe accepts (1 to {MAX_AMOUNT} in its minor unit)")]
    OutOfRange {
        /// The amount, with its currency.
        amount: String,
    },
    /// A currency code from Stripe that is not ISO 4217.
    #[error("Stripe answered with an unknown currency {0:?}")]
    UnknownCode(String),
}

/// Stripe's unit for a currency.
pub fn stripe_unit(currency: Currency) -> Result<StripeUnit, CurrencyError> {
    let code = currency.code();
    if ZERO_DECIMAL.contains(&code) {
        return Ok(StripeUnit {
            exponent: 0,
            step: 1,
        });
    }
    if THREE_DECIMAL.contains(&code) {
        return Ok(StripeUnit {
            exponent: 3,
            step: 10,
        });
    }
    if code == "ISK" {
        // Zero-decimal in effect, two-decimal on the wire: 5 ISK is `amount=500`.
        return Ok(StripeUnit {
            exponent: 2,
            step: 100,
        });
    }
    // Everything else is two-decimal at Stripe (HUF and TWD included: they are zero-decimal
    // for payouts only). A currency whose ISO exponent is not 2 and that Stripe does not
    // list (LYD, IQD, CLF…) has no documented rule, so it is refused rather than guessed.
    if currency.exponent() == 2 {
        Ok(StripeUnit {
            exponent: 2,
            step: 1,
        })
    } else {
        Err(CurrencyError::Unsupported(code, currency.exponent()))
    }
}

/// Converts a cart amount (ISO 4217 minor units) to Stripe's `amount`, exactly.
pub fn to_stripe_amount(money: Money) -> Result<i64, CurrencyError> {
    let unit = stripe_unit(money.currency)?;
    let iso = money.currency.exponent();
    let out_of_range = || CurrencyError::OutOfRange {
        amount: money.to_string(),
    };
    let amount = if unit.exponent >= iso {
        let factor = 10_i64.pow(unit.exponent - iso);
        money.minor.checked_mul(factor).ok_or_else(out_of_range)?
    } else {
        // Stripe has fewer decimals than ISO (UGX, should ISO give it any): only whole
        // Stripe units can be sent.
        let factor = 10_i64.pow(iso - unit.exponent);
        if money.minor % factor != 0 {
            return Err(CurrencyError::NotRepresentable {
                amount: money.to_string(),
                rule: format!(
                    "Stripe treats {} as having {} decimals",
                    money.currency, unit.exponent
                ),
            });
        }
        money.minor / factor
    };
    if amount % unit.step != 0 {
        let rule = if money.currency.code() == "ISK" {
            "ISK is charged in whole krónur only (Stripe's amount must be divisible by 100)"
                .to_string()
        } else {
            format!(
                "the last of {}'s three decimals must be 0 (Stripe's amount must be divisible by 10)",
                money.currency
            )
        };
        return Err(CurrencyError::NotRepresentable {
            amount: money.to_string(),
            rule,
        });
    }
    if !(1..=MAX_AMOUNT).contains(&amount) {
        return Err(out_of_range());
    }
    Ok(amount)
}

/// Converts Stripe's `amount` in `code` (Stripe writes it in lower case) back to cart
/// money. Zero is allowed here, because `amount_capturable` and `amount_received` are 0
/// on a PaymentIntent that has not got that far.
pub fn from_stripe_amount(amount: i64, code: &str) -> Result<Money, CurrencyError> {
    let currency =
        Currency::from_code(code).map_err(|_| CurrencyError::UnknownCode(code.to_string()))?;
    let unit = stripe_unit(currency)?;
    let iso = currency.exponent();
    let not_exact = || CurrencyError::NotRepresentable {
        amount: format!("{amount} (Stripe's {code} minor units)"),
        rule: format!("it is not a whole number of {currency}'s ISO 4217 minor units"),
    };
    let minor = if unit.exponent >= iso {
        let factor = 10_i64.pow(unit.exponent - iso);
        if amount % factor != 0 {
            return Err(not_exact());
        }
        amount / factor
    } else {
        let factor = 10_i64.pow(iso - unit.exponent);
        amount.checked_mul(factor).ok_or_else(not_exact)?
    };
    Ok(Money::from_minor(minor, currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(major: &str, code: &str) -> Money {
        Money::parse_major(major, Currency::from_code(code).unwrap()).unwrap()
    }

    #[test]
    fn every_listed_currency_is_an_iso_currency_so_the_table_has_no_dead_entries() {
        for code in ZERO_DECIMAL.iter().chain(THREE_DECIMAL).chain(&["ISK"]) {
            assert!(Currency::from_code(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn huf_and_twd_are_two_decimal_for_charges() {
        for code in ["HUF", "TWD", "SEK", "EUR", "USD"] {
            let unit = stripe_unit(Currency::from_code(code).unwrap()).unwrap();
            assert_eq!(
                unit,
                StripeUnit {
                    exponent: 2,
                    step: 1
                },
                "{code}"
            );
        }
    }

    #[test]
    fn a_currency_outside_stripes_rules_is_refused_not_guessed() {
        for code in ["LYD", "IQD", "CLF"] {
            let err = to_stripe_amount(money("1", code)).unwrap_err();
            assert!(
                matches!(err, CurrencyError::Unsupported(..)),
                "{code}: {err}"
            );
        }
    }

    #[test]
    fn amounts_round_trip_through_stripes_units() {
        for (major, code) in [
            ("1234.50", "SEK"),
            ("1500", "JPY"),
            ("5.120", "KWD"),
            ("123", "ISK"),
            ("5000", "UGX"),
        ] {
            let m = money(major, code);
            let stripe = to_stripe_amount(m).unwrap();
            let back = from_stripe_amount(stripe, &code.to_ascii_lowercase()).unwrap();
            assert_eq!(back, m, "{major} {code}");
        }
    }

    #[test]
    fn stripe_amounts_that_are_not_whole_iso_units_are_not_read_as_money() {
        // 12345 in ISK would be 123.45 krónur: ISO gives ISK no decimals.
        assert!(matches!(
            from_stripe_amount(12_345, "isk"),
            Err(CurrencyError::NotRepresentable { .. })
        ));
        assert!(matches!(
            from_stripe_amount(1, "xyz"),
            Err(CurrencyError::UnknownCode(_))
        ));
    }
}
