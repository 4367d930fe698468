//! History query strings: a clear refusal (2, 4 or 100), or a player id, a page size and
//! bounds that pass their checks.
#![no_main]

use croupier::api::operator::history;
use croupier_fuzz::{check_id, check_operator_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &str| {
    match history::decode(query) {
        Ok(request) => {
            check_id(&request.external_id, true, 128);
            assert!((1..=100).contains(&request.limit));
            for bound in [&request.from, &request.to].into_iter().flatten() {
                // Epoch milliseconds, or an RFC 3339 time with its offset.
                let millis = bound.len() <= 15 && bound.bytes().all(|b| b.is_ascii_digit());
                let rfc3339 = bound.len() >= 20
                    && bound.bytes().all(|b| {
                        b.is_ascii_digit()
                            || matches!(b, b'-' | b':' | b'.' | b'+' | b'T' | b't' | b'Z' | b'z')
                    });
                assert!(!bound.is_empty() && (millis || rfc3339), "{bound:?}");
            }
            if let Some(cursor) = &request.cursor {
                assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit()), "{cursor:?}");
            }
        }
        Err(e) => check_operator_refusal(&e),
    }
});
