//! Block / unblock bodies: a clear refusal (2, 4 or 100), or a player id that passes its checks.
#![no_main]

use croupier::api::operator::player_status;
use croupier_fuzz::{check_id, check_operator_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match player_status::decode(body) {
        Ok((external_id, _blocked)) => check_id(&external_id, true, 128),
        Err(e) => check_operator_refusal(&e),
    }
});
