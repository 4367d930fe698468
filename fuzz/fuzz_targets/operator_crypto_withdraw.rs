//! Crypto withdraw bodies: a clear refusal (2, 4 or 100), or a payout order every field of
//! which passes its check (a positive amount, an address of printable ASCII).
#![no_main]

use croupier::api::operator::crypto;
use croupier_fuzz::{check_amount, check_code, check_id, check_operator_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match crypto::decode_withdraw(body, "operator") {
        Ok(order) => {
            assert_eq!(order.operator_id, "operator");
            check_id(&order.external_id, true, 128);
            check_id(&order.transaction_id, true, 128);
            check_amount(&order.amount, order.amount.currency());
            assert!(!order.amount.value().is_zero());
            check_code(&order.asset);
            check_code(&order.blockchain);
            let address = &order.address;
            assert!(!address.is_empty() && address.len() <= 128);
            assert!(address.bytes().all(|b| b.is_ascii_graphic()));
        }
        Err(e) => check_operator_refusal(&e),
    }
});
