//! The contracts the fuzz targets check: what every parser at the edge promises about what
//! it accepts, and how it refuses the rest.

use std::str::FromStr;

use actix_web::http::StatusCode;
use croupier::api::{operator, provider};
use croupier::error::Error;
use croupier::money::{json_number, Amount, Currency};
use rust_decimal::Decimal;

/// Every currency croupier keeps, and one it does not.
pub const CURRENCY_CODES: [&str; 16] = [
    "USD", "EUR", "KRW", "JPY", "CNY", "PHP", "HKD", "THB", "VND", "BDT", "INR", "USDT", "USDC",
    "BTC", "ETH", "XXX",
];

/// A known currency picked by a byte of the input.
pub fn currency(pick: u8) -> Currency {
    let known = &CURRENCY_CODES[..CURRENCY_CODES.len() - 1];
    let code = known[usize::from(pick) % known.len()];
    Currency::parse(code).expect("a listed currency is known")
}

/// Splits the first byte off the input (a choice, such as the currency), leaving the rest.
pub fn split_pick(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(pick, rest)| (*pick, rest))
}

/// An accepted amount: non-negative, canonical (no trailing zeros), within its currency's
/// scale and bound, and its JSON text reads back as the same value.
pub fn check_amount(amount: &Amount, currency: Currency) {
    let value = amount.value();
    assert_eq!(amount.currency(), currency);
    assert!(
        !value.is_sign_negative() || value.is_zero(),
        "{value} is negative"
    );
    assert!(
        value.scale() <= currency.scale(),
        "{value} beyond the scale of {currency}"
    );
    assert!(
        value <= currency.max(),
        "{value} above the bound of {currency}"
    );
    assert_eq!(value, value.normalize(), "{value} is not canonical");
    let text = json_number(value);
    assert!(!text.contains(['e', 'E']), "{text} has an exponent");
    let again = Decimal::from_str(&text).expect("a JSON number reads back");
    assert_eq!(again, value, "{text} reads back as another value");
    assert_eq!(
        Amount::parse(&text, currency).expect("its own text is accepted"),
        *amount
    );
}

/// An accepted id: at most `max` bytes (at least one if `non_empty`), no control character
/// (a NUL byte included, which PostgreSQL cannot store in text).
pub fn check_id(text: &str, non_empty: bool, max: usize) {
    assert!(!non_empty || !text.is_empty(), "an empty id was accepted");
    assert!(
        text.len() <= max,
        "an id of {} bytes was accepted",
        text.len()
    );
    assert!(
        !text.chars().any(char::is_control),
        "an id with a control character was accepted: {text:?}"
    );
}

/// A refusal on the bet API: code 5 (malformed), HTTP 402, never an internal error.
pub fn check_provider_refusal(e: &Error) {
    assert_eq!(
        provider::wire_code(e),
        (provider::code::MALFORMED, StatusCode::PAYMENT_REQUIRED),
        "{e:?}"
    );
}

/// A refusal on the operator API: missing data (2), format (4) or value (100), HTTP 202.
pub fn check_operator_refusal(e: &Error) {
    let (code, status) = operator::wire_code(e);
    assert_eq!(status, StatusCode::ACCEPTED, "{e:?}");
    assert!(
        [
            operator::code::MISSING_DATA,
            operator::code::DATA_FORMAT,
            operator::code::DATA_VALUE
        ]
        .contains(&code),
        "{e:?} answers {code}"
    );
}

/// The wire text of an amount field parsed in `currency` on the bet API.
pub fn check_bet_amount(raw: &serde_json::value::RawValue, currency: Currency) {
    match Amount::parse_json(raw.get(), currency) {
        Ok(amount) => check_amount(&amount, currency),
        Err(e) => check_provider_refusal(&Error::Amount(e)),
    }
}

/// An accepted asset or blockchain code: 1 to 32 letters, digits, `-` or `_`.
pub fn check_code(text: &str) {
    assert!(!text.is_empty() && text.len() <= 32, "{text:?}");
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{text:?}"
    );
}
