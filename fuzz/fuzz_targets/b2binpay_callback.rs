//! B2BINPAY callbacks: reading one never panics; one signed with the key it is checked with
//! verifies, and no longer does once any signed field or the signature changes or another key
//! checks it.
#![no_main]

use croupier::crypto::b2binpay::{verify_callback, CallbackError};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use sha2::Sha256;

type Input<'a> = (&'a [u8], Vec<u8>, [String; 4], u8);

fn signature(key: &[u8], message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn callback(status: &Value, amount: &Value, tracking: &Value, time: &str, sign: &str) -> Vec<u8> {
    json!({
        "data": {"type": "payout", "id": "26", "attributes": {"tracking_id": tracking}},
        "included": [{"type": "transfer", "id": "1", "attributes": {"status": status, "amount": amount}}],
        "meta": {"time": time, "sign": sign}
    })
    .to_string()
    .into_bytes()
}

fuzz_target!(|input: Input| {
    let (raw, key, [status, amount, tracking, time], flip) = input;
    // Any body: refused or read, never a panic.
    let _ = verify_callback(&key, raw);

    // A callback signed with `key` over status, amount, tracking id and time.
    let message = format!("{status}{amount}{tracking}{time}");
    let sign = signature(&key, &message);
    let (status_v, amount_v, tracking_v) = (json!(status), json!(amount), json!(tracking));
    let body = callback(&status_v, &amount_v, &tracking_v, &time, &sign);
    match verify_callback(&key, &body) {
        Ok(read) => {
            assert_eq!(read.tracking_id, tracking);
            assert_eq!(read.time, time);
            assert_eq!(read.payout_ref, "26");
        }
        Err(e) => assert!(
            matches!(e, CallbackError::Malformed),
            "a signed callback: {e:?}"
        ),
    }
    // Another key, another time or a changed signature: refused.
    let mut other = key.clone();
    other.push(flip | 1);
    assert!(verify_callback(&other, &body).is_err());
    let later = callback(
        &status_v,
        &amount_v,
        &tracking_v,
        &format!("{time}0"),
        &sign,
    );
    assert!(verify_callback(&key, &later).is_err());
    let mut bad = sign.into_bytes();
    let at = usize::from(flip) % bad.len();
    bad[at] = if bad[at] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad).expect("hex is ASCII");
    let resigned = callback(&status_v, &amount_v, &tracking_v, &time, &bad);
    assert!(verify_callback(&key, &resigned).is_err());
});
