//! Signing headers: reading them never panics and what is accepted has the documented shape;
//! a signature over (body, counterparty, timestamp, request id) verifies, and fails once any
//! byte of the body, the timestamp, the request id or the signature changes.
#![no_main]

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use croupier::auth::{sign, Counterparty, Role, SigningHeaders, TIMESTAMP_WINDOW_MS};
use libfuzzer_sys::fuzz_target;

// The input: two bytes of position and one of change for the byte to alter, one of clock
// skew (in quarter seconds), then the counterparty id, timestamp, request id, sign, secret
// and body, separated by newlines (the body may hold more).
fuzz_target!(|data: &[u8]| {
    let [at_lo, at_hi, flip, skew, rest @ ..] = data else {
        return;
    };
    let mut parts = rest.splitn(6, |&b| b == b'\n');
    let mut next = || parts.next().unwrap_or_default();
    let values = [next(), next(), next(), next()];
    let (secret, body) = (next(), next().to_vec());
    let Ok(secret) = std::str::from_utf8(secret) else {
        return;
    };
    let mut headers = HeaderMap::new();
    let names = ["x-counterparty-id", "x-timestamp", "x-request-id", "x-sign"];
    for (name, value) in names.into_iter().zip(values) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    // A clock near the stamp, so that most timestamps that are numbers get past the window.
    let stamp = std::str::from_utf8(values[1])
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let now_ms = stamp.saturating_add_signed(i64::from(*skew as i8) * 250);
    let Ok(signing) = SigningHeaders::parse(&headers, now_ms) else {
        return;
    };
    for text in [
        signing.counterparty_id,
        signing.timestamp,
        signing.request_id,
        signing.sign,
    ] {
        assert!(!text.is_empty() && text == text.trim());
        // Visible ASCII, spaces and tabs: what a header value that reads as text holds.
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\t'));
    }
    assert_eq!(
        signing.timestamp.parse::<u64>().ok(),
        Some(signing.stamped_ms)
    );
    assert!(now_ms.abs_diff(signing.stamped_ms) <= TIMESTAMP_WINDOW_MS);
    assert_eq!(signing.request_id.len(), 32);
    assert!(signing.request_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        u128::from_str_radix(signing.request_id, 16).ok(),
        Some(signing.nonce)
    );
    assert_eq!(signing.sign.len(), 64);

    let caller = Counterparty::new(
        signing.counterparty_id.to_string(),
        Role::Provider,
        true,
        true,
        secret,
    );
    let (ts, rid) = (signing.timestamp, signing.request_id);
    let good = sign(
        secret.as_bytes(),
        Some(&body),
        signing.counterparty_id,
        ts,
        rid,
    );
    assert!(caller.verify(Some(&body), ts, rid, &good));
    assert!(
        !caller.verify(None, ts, rid, &good),
        "a POST sign verified as a GET"
    );
    // The header's own sign verifies only if it is the signature (hex in either case).
    assert_eq!(
        caller.verify(Some(&body), ts, rid, signing.sign),
        signing.sign.eq_ignore_ascii_case(&good)
    );

    // One byte changed, anywhere in what is signed or in the signature.
    let flip = (*flip).max(1);
    let mut fields = [
        body.clone(),
        ts.into(),
        rid.into(),
        good.clone().into_bytes(),
    ];
    let total: usize = fields.iter().map(Vec::len).sum();
    let mut at = usize::from(u16::from_le_bytes([*at_lo, *at_hi])) % total;
    let field = fields
        .iter()
        .position(|f| {
            let here = at < f.len();
            if !here {
                at -= f.len();
            }
            here
        })
        .expect("the position falls in a field");
    fields[field][at] ^= flip;
    let [body2, ts2, rid2, sign2] = fields;
    let (Ok(ts2), Ok(rid2), Ok(sign2)) = (
        String::from_utf8(ts2),
        String::from_utf8(rid2),
        String::from_utf8(sign2),
    ) else {
        return;
    };
    // Flipping only the case of a hex letter of the signature keeps it the same signature.
    if field == 3 && sign2.eq_ignore_ascii_case(&good) {
        return;
    }
    assert!(
        !caller.verify(Some(&body2), &ts2, &rid2, &sign2),
        "a changed request verified (field {field})"
    );
});
