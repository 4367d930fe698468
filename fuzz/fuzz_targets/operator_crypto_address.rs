//! Crypto deposit-address bodies: a clear refusal (2, 4 or 100), or a player id and short codes
//! that pass their checks.
#![no_main]

use croupier::api::operator::crypto;
use croupier_fuzz::{check_code, check_id, check_operator_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match crypto::decode_address(body) {
        Ok(request) => {
            check_id(&request.external_id, true, 128);
            check_code(&request.asset);
            check_code(&request.blockchain);
        }
        Err(e) => check_operator_refusal(&e),
    }
});
