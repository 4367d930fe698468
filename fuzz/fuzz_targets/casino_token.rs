//! Seamless `auth/token` bodies: a clear refusal (400 or 401), or an operator id of the shape
//! of a counterparty id (1 to 64 letters, digits, `.`, `_`, `-`: no NUL byte for PostgreSQL).
#![no_main]

use croupier::api::casino;
use croupier::error::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match casino::read_token_request(body) {
        Ok(asked) => {
            let id = &asked.partner_client_id;
            assert!((1..=64).contains(&id.len()), "{id:?}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
                "{id:?}"
            );
        }
        Err(e) => assert!(matches!(e, Error::BadFormat(_) | Error::Auth(_)), "{e:?}"),
    }
});
