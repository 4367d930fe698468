//! Deposit and Withdraw bodies: a clear refusal (2, 4 or 100), or ids and an amount that pass
//! their checks.
#![no_main]

use croupier::api::operator::transfer;
use croupier_fuzz::{check_amount, check_id, check_operator_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match transfer::decode(body) {
        Ok(request) => {
            check_id(&request.external_id, true, 128);
            check_id(&request.transaction_id, true, 128);
            check_amount(&request.amount, request.amount.currency());
        }
        Err(e) => check_operator_refusal(&e),
    }
});
