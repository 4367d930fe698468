//! Amounts: `Amount::parse_json` accepts exactly what a plain reading of the text accepts, in
//! every currency, and gives the value written, never a rounded one.
#![no_main]

use croupier::money::{Amount, Currency, MoneyError};
use croupier_fuzz::{check_amount, currency, split_pick};
use libfuzzer_sys::fuzz_target;

/// Significant digits a decimal holds exactly.
const MAX_DIGITS: usize = 28;

/// What the amount should be, read digit by digit: its canonical text, or why it is refused.
fn expected(raw: &str, currency: Currency) -> Result<String, MoneyError> {
    let text = match raw.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or(MoneyError::NotANumber)?,
        None => raw,
    };
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(MoneyError::NotANumber);
    }
    if negative {
        return Err(MoneyError::Negative);
    }
    let int = int.trim_start_matches('0');
    let frac = frac.unwrap_or("").trim_end_matches('0');
    if int.len() + frac.len() > MAX_DIGITS {
        return Err(if frac.is_empty() {
            MoneyError::TooLarge
        } else {
            MoneyError::TooManyDecimals
        });
    }
    if frac.len() > currency.scale() as usize {
        return Err(MoneyError::TooManyDecimals);
    }
    let max = currency.max().to_string();
    let above = int.len() > max.len() || (int.len() == max.len() && int > max.as_str());
    if above || (int == max && !frac.is_empty()) {
        return Err(MoneyError::TooLarge);
    }
    let int = if int.is_empty() { "0" } else { int };
    Ok(if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((pick, rest)) = split_pick(data) else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let currency = currency(pick);
    match (Amount::parse_json(raw, currency), expected(raw, currency)) {
        (Ok(amount), Ok(text)) => {
            check_amount(&amount, currency);
            assert_eq!(amount.value().to_string(), text, "{raw:?} in {currency}");
        }
        (Err(got), Err(want)) => assert_eq!(got, want, "{raw:?} in {currency}"),
        (got, want) => panic!("{raw:?} in {currency}: got {got:?}, want {want:?}"),
    }
});
