//! Money: currencies with a fixed scale and an upper bound, and exact amount parsing.
//!
//! Invariants kept here:
//! - an `Amount` is never negative, never has more decimals than its currency allows and
//!   never exceeds the currency's bound;
//! - amounts are parsed from their JSON text exactly (no `f64` anywhere), from a JSON number
//!   or a numeric string, and exponent notation is refused rather than interpreted.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// A currency the wallet keeps balances in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    /// Decimals allowed (USD 2, JPY 0, BTC 8 …).
    scale: u32,
    /// Largest amount one operation may move, in major units.
    max_units: i64,
}

/// The currencies we know. Scales follow ISO 4217 for fiat and the usual ledger precision for
/// coins (ETH is capped at 18 decimals, which still leaves 10 integer digits inside the 28
/// significant digits `Decimal` holds).
const CURRENCIES: &[Currency] = &[
    Currency::new("USD", 2, 1_000_000_000),
    Currency::new("EUR", 2, 1_000_000_000),
    Currency::new("KRW", 0, 1_000_000_000_000),
    Currency::new("JPY", 0, 100_000_000_000),
    Currency::new("CNY", 2, 10_000_000_000),
    Currency::new("PHP", 2, 100_000_000_000),
    Currency::new("HKD", 2, 10_000_000_000),
    Currency::new("THB", 2, 100_000_000_000),
    Currency::new("VND", 0, 10_000_000_000_000),
    Currency::new("BDT", 2, 100_000_000_000),
    Currency::new("INR", 2, 100_000_000_000),
    Currency::new("USDT", 6, 1_000_000_000),
    Currency::new("USDC", 6, 1_000_000_000),
    Currency::new("BTC", 8, 100_000),
    Currency::new("ETH", 18, 1_000_000),
];

impl Currency {
    const fn new(code: &'static str, scale: u32, max_units: i64) -> Self {
        Self {
            code,
            scale,
            max_units,
        }
    }

    /// Looks a currency up by its code (exact, upper case).
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        CURRENCIES
            .iter()
            .find(|c| c.code == code)
            .copied()
            .ok_or(MoneyError::UnknownCurrency)
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn scale(&self) -> u32 {
        self.scale
    }

    pub fn max(&self) -> Decimal {
        Decimal::from(self.max_units)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// Why an amount or currency was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is not a plain decimal number")]
    NotANumber,
    #[error("amount is negative")]
    Negative,
    #[error("amount has more decimals than the currency allows")]
    TooManyDecimals,
    #[error("amount is above the currency's upper bound")]
    TooLarge,
    #[error("unknown currency")]
    UnknownCurrency,
}

/// A non-negative amount that fits its currency. Can only be built by `Amount::parse*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    value: Decimal,
    currency: Currency,
}

impl Amount {
    /// Parses the text of a JSON value (`10.5` or `"10.5"`) exactly.
    pub fn parse_json(raw: &str, currency: Currency) -> Result<Self, MoneyError> {
        let text = match raw.strip_prefix('"') {
            Some(rest) => rest.strip_suffix('"').ok_or(MoneyError::NotANumber)?,
            None => raw,
        };
        Self::parse(text, currency)
    }

    /// Parses a plain decimal (`123`, `0.5`, `10.50`): digits, at most one dot, no sign, no
    /// exponent, no spaces.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let value = parse_decimal(text)?;
        Self::new(value, currency)
    }

    /// Checks a decimal against the currency's rules.
    pub fn new(value: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::Negative);
        }
        // Trailing zeros are not extra precision: 10.500 USD is exactly 10.50 USD.
        if value.normalize().scale() > currency.scale {
            return Err(MoneyError::TooManyDecimals);
        }
        if value > currency.max() {
            return Err(MoneyError::TooLarge);
        }
        Ok(Self {
            value: value.normalize(),
            currency,
        })
    }

    pub fn value(&self) -> Decimal {
        self.value
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }
}

/// Exact decimal grammar: `-?[0-9]+(\.[0-9]+)?`. The sign is accepted by the grammar only to
/// tell "negative" apart from "not a number".
fn parse_decimal(text: &str) -> Result<Decimal, MoneyError> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) || frac_part.is_some_and(|f| !all_digits(f)) {
        return Err(MoneyError::NotANumber);
    }
    if negative {
        return Err(MoneyError::Negative);
    }
    // `Decimal` holds 28 significant digits and rounds what goes beyond: refuse instead, so
    // that an amount is taken exactly as written or not at all.
    let significant_int = int_part.trim_start_matches('0').len();
    let significant_frac = frac_part.map_or(0, |f| f.trim_end_matches('0').len());
    if significant_int + significant_frac > MAX_DIGITS {
        return Err(if significant_frac > 0 {
            MoneyError::TooManyDecimals
        } else {
            MoneyError::TooLarge
        });
    }
    // Trailing zeros beyond what `Decimal` holds change nothing: drop them before parsing.
    let text = match frac_part {
        Some(f) if f.len() > MAX_DIGITS => {
            let kept = f.trim_end_matches('0');
            if kept.is_empty() {
                int_part.to_string()
            } else {
                format!("{int_part}.{kept}")
            }
        }
        _ => unsigned.to_string(),
    };
    Decimal::from_str(&text).map_err(|_| MoneyError::TooLarge)
}

/// Significant digits a `Decimal` holds exactly.
const MAX_DIGITS: usize = 28;

/// Writes a decimal as a JSON number: no trailing zeros, never exponent notation.
pub fn json_number(value: Decimal) -> String {
    value.normalize().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").expect("USD is known")
    }

    #[test]
    fn accepts_numbers_and_numeric_strings_exactly() {
        let a = Amount::parse_json("10.5", usd()).expect("valid");
        let b = Amount::parse_json("\"10.50\"", usd()).expect("valid");
        assert_eq!(a.value(), b.value());
        assert_eq!(a.value().to_string(), "10.5");
        let c = Amount::parse_json("0.1", usd()).expect("valid");
        let d = Amount::parse_json("0.2", usd()).expect("valid");
        assert_eq!((c.value() + d.value()).to_string(), "0.3");
    }

    #[test]
    fn trailing_zeros_beyond_the_decimal_range_change_nothing() {
        let long = format!("1.5{}", "0".repeat(40));
        let a = Amount::parse_json(&long, usd()).expect("valid");
        assert_eq!(a.value().to_string(), "1.5");
        let whole = format!("2.{}", "0".repeat(40));
        assert_eq!(
            Amount::parse_json(&whole, usd())
                .expect("valid")
                .value()
                .to_string(),
            "2"
        );
    }

    #[test]
    fn refuses_what_is_not_exact() {
        use MoneyError::*;
        let cases = [
            ("-1", Negative),
            ("\"-0.01\"", Negative),
            ("1.001", TooManyDecimals),
            ("1e3", NotANumber),
            ("1E3", NotANumber),
            ("\"abc\"", NotANumber),
            ("null", NotANumber),
            ("true", NotANumber),
            ("\" 1\"", NotANumber),
            ("1.", NotANumber),
            (".5", NotANumber),
            ("+1", NotANumber),
            ("\"1", NotANumber),
            ("1000000000.01", TooLarge),
            ("1000000001", TooLarge),
            ("99999999999999999999999999999999", TooLarge),
            // Beyond the 28 digits a Decimal holds: refused, never rounded to 1.
            ("1.00000000000000000000000000001", TooManyDecimals),
            ("\"0.99999999999999999999999999999\"", TooManyDecimals),
        ];
        for (raw, want) in cases {
            assert_eq!(Amount::parse_json(raw, usd()), Err(want), "{raw}");
        }
    }

    #[test]
    fn scale_follows_the_currency() {
        let jpy = Currency::parse("JPY").expect("known");
        assert_eq!(Amount::parse("1.5", jpy), Err(MoneyError::TooManyDecimals));
        assert!(Amount::parse("1.0", jpy).is_ok());
        let btc = Currency::parse("BTC").expect("known");
        assert!(Amount::parse("0.00000001", btc).is_ok());
        assert_eq!(
            Amount::parse("0.000000001", btc),
            Err(MoneyError::TooManyDecimals)
        );
        let eth = Currency::parse("ETH").expect("known");
        assert!(Amount::parse("999999.000000000000000001", eth).is_ok());
        assert_eq!(Currency::parse("usd"), Err(MoneyError::UnknownCurrency));
    }

    #[test]
    fn json_numbers_have_no_exponent_and_no_trailing_zeros() {
        assert_eq!(json_number(Decimal::new(158850, 2)), "1588.5");
        assert_eq!(json_number(Decimal::new(1, 18)), "0.000000000000000001");
        assert_eq!(json_number(Decimal::new(2000, 2)), "20");
    }
}
