//! Balance query strings: a clear refusal (2, 4 or 100), or a player id that passes its checks
//! and a known currency.
#![no_main]

use croupier::api::operator::balance;
use croupier_fuzz::{check_id, check_operator_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &str| {
    match balance::decode(query) {
        Ok((external_id, _currency)) => check_id(&external_id, true, 128),
        Err(e) => check_operator_refusal(&e),
    }
});
