//! Seamless `payments/accept` bodies: a clear refusal (400), or a verdict whose texts, and the
//! whole body kept as JSON, PostgreSQL can store (no NUL byte anywhere), and whose amounts
//! read back as the same values.
#![no_main]

use std::str::FromStr;

use croupier::api::casino;
use croupier::error::Error;
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use serde_json::Value;

fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

fuzz_target!(|body: &[u8]| {
    match casino::read_verdict(body) {
        Ok(verdict) => {
            assert!(verdict.reported.is_object());
            assert!(!holds_nul(&verdict.reported), "a NUL byte was accepted");
            for value in [verdict.amount, verdict.balance].into_iter().flatten() {
                let text = value.to_string();
                assert_eq!(Decimal::from_str(&text).ok(), Some(value), "{text}");
            }
        }
        Err(e) => assert!(
            matches!(
                e,
                Error::BadFormat(_) | Error::BadValue(_) | Error::MissingField(_)
            ),
            "{e:?}"
        ),
    }
});
