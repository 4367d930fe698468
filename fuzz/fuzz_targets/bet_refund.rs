//! Refund bodies: a clear refusal (code 5), or a bet id that passes its checks.
#![no_main]

use croupier::api::provider::refund;
use croupier_fuzz::{check_id, check_provider_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match refund::decode(body) {
        Ok(bet) => check_id(bet.as_str(), true, 128),
        Err(e) => check_provider_refusal(&e),
    }
});
