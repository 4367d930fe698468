//! PayIn bodies: a clear refusal (code 5), or ids and a stake that pass their checks.
#![no_main]

use croupier::api::provider::pay_in;
use croupier_fuzz::{check_bet_amount, check_id, check_provider_refusal, currency, split_pick};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((pick, body)) = split_pick(data) else {
        return;
    };
    match pay_in::decode(body) {
        Ok(bet) => {
            check_id(bet.bet.as_str(), true, 128);
            if let Some(round) = &bet.round {
                check_id(round.as_str(), false, 128);
            }
            check_bet_amount(bet.bet_amount, currency(pick));
        }
        Err(e) => check_provider_refusal(&e),
    }
});
