//! inabit webhooks: a clear refusal (400), or a webhook whose event and transaction id
//! PostgreSQL can store (no NUL byte) and whose text is the body.
#![no_main]

use croupier::crypto::read_webhook;
use croupier::error::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match read_webhook(body) {
        Ok(webhook) => {
            assert_eq!(webhook.text.as_bytes(), body);
            for text in [&webhook.event, &webhook.reference].into_iter().flatten() {
                assert!(!text.contains('\0'), "a NUL byte was accepted: {text:?}");
            }
        }
        Err(e) => assert!(
            matches!(e, Error::BadFormat(_) | Error::BadValue(_)),
            "{e:?}"
        ),
    }
});
