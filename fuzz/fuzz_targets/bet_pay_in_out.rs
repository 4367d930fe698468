//! PayInOut bodies: a clear refusal (code 5), or ids, a stake and a win that pass their checks.
#![no_main]

use croupier::api::provider::pay_in_out;
use croupier_fuzz::{check_amount, check_id, check_provider_refusal, currency, split_pick};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((pick, body)) = split_pick(data) else {
        return;
    };
    let currency = currency(pick);
    match pay_in_out::decode(body, currency) {
        Ok(bet) => {
            check_id(bet.bet.as_str(), true, 128);
            if let Some(round) = &bet.round {
                check_id(round.as_str(), false, 128);
            }
            check_amount(&bet.stake, currency);
            check_amount(&bet.win, currency);
        }
        Err(e) => check_provider_refusal(&e),
    }
});
