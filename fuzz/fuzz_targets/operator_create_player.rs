//! Account Init bodies: a clear refusal (2, 4 or 100), or a player id and a known currency.
#![no_main]

use croupier::api::operator::create_player;
use croupier::money::Currency;
use croupier_fuzz::{check_id, check_operator_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match create_player::decode(body) {
        Ok((external_id, currency)) => {
            check_id(&external_id, true, 128);
            assert_eq!(Currency::parse(currency.code()), Ok(currency));
        }
        Err(e) => check_operator_refusal(&e),
    }
});
