//! Money as integer minor units plus an ISO 4217 currency.
//!
//! Hantera speaks decimal major units (`orderTotal: 123.45`), PSPs speak integer minor
//! units (`amount=12345`). Every conversion here is exact: a value with more decimals than
//! the currency has is an error, never rounded, because a silently rounded amount is a
//! wrong charge.

use std::fmt;
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Why an amount or a currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The code is not an ISO 4217 currency.
    #[error("unknown currency code {0:?}")]
    UnknownCurrency(String),
    /// ISO 4217 lists the code but gives it no minor unit (e.g. XAU), so it cannot be paid.
    #[error("currency {0} has no minor unit")]
    NoMinorUnit(&'static str),
    /// The value has more decimals than the currency's exponent allows.
    #[error("{value} has more decimals than {currency} allows ({exponent})")]
    TooPrecise {
        /// The offending value, as text.
        value: String,
        /// The currency code.
        currency: &'static str,
        /// The currency's exponent.
        exponent: u32,
    },
    /// The value does not fit in an `i64` of minor units.
    #[error("{0} is out of range")]
    OutOfRange(String),
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {0} and {1}")]
    CurrencyMismatch(&'static str, &'static str),
}

/// An ISO 4217 currency with a minor unit. The table comes from the `iso_currency` crate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Looks a currency up by its code. Hantera sends upper case; PSPs such as Stripe send
    /// lower case, so the lookup folds case.
    pub fn from_code(code: &str) -> Result<Self, MoneyError> {
        let upper = code.trim().to_ascii_uppercase();
        let iso = iso_currency::Currency::from_code(&upper)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))?;
        if iso.exponent().is_none() {
            return Err(MoneyError::NoMinorUnit(iso.code()));
        }
        Ok(Self(iso))
    }

    /// The upper-case ISO code, e.g. `SEK`.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// The number of decimals of the minor unit: 2 for SEK, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u32 {
        // `from_code` refuses currencies without an exponent, so this never defaults.
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_code(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount of money: integer minor units of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in the currency's minor unit (öre, cents, fils, yen).
    pub minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// Builds money from minor units.
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Converts a decimal amount in major units (Hantera's form) exactly.
    pub fn from_decimal(value: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = currency.exponent();
        let normalized = value.normalize();
        if normalized.scale() > exponent {
            return Err(MoneyError::TooPrecise {
                value: value.to_string(),
                currency: currency.code(),
                exponent,
            });
        }
        let scaled = normalized
            .checked_mul(Decimal::from(10_i64.pow(exponent)))
            .ok_or_else(|| MoneyError::OutOfRange(value.to_string()))?;
        // `scaled` is a whole number here, so the conversion is exact or out of range.
        let minor = scaled
            .to_i64()
            .ok_or_else(|| MoneyError::OutOfRange(value.to_string()))?;
        Ok(Self { minor, currency })
    }

    /// Parses a decimal string in major units, e.g. `"123.45"`.
    pub fn parse_major(value: &str, currency: Currency) -> Result<Self, MoneyError> {
        let d = Decimal::from_str_exact(value.trim())
            .map_err(|_| MoneyError::OutOfRange(value.to_string()))?;
        Self::from_decimal(d, currency)
    }

    /// The amount in major units, exactly, with the currency's number of decimals.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    /// Adds two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(
                self.currency.code(),
                other.currency.code(),
            ));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or_else(|| MoneyError::OutOfRange(format!("{self} + {other}")))?;
        Ok(Money { minor, ..self })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn decimal_amounts_convert_to_minor_units_by_the_currency_exponent() {
        assert_eq!(
            Money::from_decimal(dec("123.45"), cur("SEK"))
                .unwrap()
                .minor,
            12345
        );
        assert_eq!(
            Money::from_decimal(dec("123.4"), cur("EUR")).unwrap().minor,
            12340
        );
        assert_eq!(
            Money::from_decimal(dec("500"), cur("JPY")).unwrap().minor,
            500
        );
        assert_eq!(
            Money::from_decimal(dec("5.125"), cur("KWD")).unwrap().minor,
            5125
        );
        assert_eq!(Money::from_decimal(dec("0"), cur("SEK")).unwrap().minor, 0);
        assert_eq!(
            Money::from_decimal(dec("-1.5"), cur("SEK")).unwrap().minor,
            -150
        );
    }

    #[test]
    fn trailing_zeros_beyond_the_exponent_are_not_extra_precision() {
        assert_eq!(
            Money::from_decimal(dec("10.500"), cur("SEK"))
                .unwrap()
                .minor,
            1050
        );
        assert_eq!(
            Money::from_decimal(dec("7.00"), cur("JPY")).unwrap().minor,
            7
        );
    }

    #[test]
    fn more_decimals_than_the_currency_allows_is_an_error_not_a_rounding() {
        let err = Money::from_decimal(dec("1.005"), cur("SEK")).unwrap_err();
        assert!(
            matches!(err, MoneyError::TooPrecise { exponent: 2, .. }),
            "{err}"
        );
        assert!(Money::from_decimal(dec("1.5"), cur("JPY")).is_err());
        assert!(Money::from_decimal(dec("1.0001"), cur("KWD")).is_err());
    }

    #[test]
    fn unknown_and_unit_less_currencies_are_refused() {
        assert_eq!(
            Currency::from_code("XYZ").unwrap_err(),
            MoneyError::UnknownCurrency("XYZ".into())
        );
        assert!(matches!(
            Currency::from_code("XAU"),
            Err(MoneyError::NoMinorUnit(_))
        ));
    }

    #[test]
    fn currency_codes_fold_case_and_render_upper_case() {
        assert_eq!(cur("sek").code(), "SEK");
        assert_eq!(cur("kwd").exponent(), 3);
        assert_eq!(cur("JPY").exponent(), 0);
    }

    #[test]
    fn amounts_beyond_i64_minor_units_are_out_of_range() {
        let huge = dec("99999999999999999999");
        assert!(matches!(
            Money::from_decimal(huge, cur("SEK")),
            Err(MoneyError::OutOfRange(_))
        ));
    }

    #[test]
    fn to_decimal_renders_the_currency_scale() {
        assert_eq!(
            Money::from_minor(12345, cur("SEK"))
                .to_decimal()
                .to_string(),
            "123.45"
        );
        assert_eq!(
            Money::from_minor(5, cur("JPY")).to_decimal().to_string(),
            "5"
        );
        assert_eq!(
            Money::from_minor(5120, cur("KWD")).to_decimal().to_string(),
            "5.120"
        );
    }

    #[test]
    fn adding_different_currencies_fails() {
        let a = Money::from_minor(1, cur("SEK"));
        let b = Money::from_minor(1, cur("EUR"));
        assert!(a.checked_add(b).is_err());
        assert_eq!(a.checked_add(a).unwrap().minor, 2);
    }

    proptest! {
        #[test]
        fn minor_units_round_trip_through_decimal_exactly(minor in -1_000_000_000_000i64..1_000_000_000_000, idx in 0usize..4) {
            let code = ["SEK", "EUR", "JPY", "KWD"][idx];
            let m = Money::from_minor(minor, cur(code));
            prop_assert_eq!(Money::from_decimal(m.to_decimal(), m.currency).unwrap(), m);
            prop_assert_eq!(Money::parse_major(&m.to_decimal().to_string(), m.currency).unwrap(), m);
        }
    }
}
