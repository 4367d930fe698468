//! Launch bodies: a clear refusal (2, 4 or 100), or ids, texts and a return URL that pass their
//! checks.
#![no_main]

use croupier::api::operator::launch;
use croupier_fuzz::{check_id, check_operator_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match launch::decode(body) {
        Ok(request) => {
            check_id(&request.external_id, true, 128);
            check_id(&request.provider, true, 128);
            check_id(&request.game, true, 128);
            check_id(&request.language, false, 1024);
            check_id(&request.mode, false, 1024);
            check_id(&request.return_url, false, 1024);
            let url = &request.return_url;
            assert!(url.is_empty() || url.starts_with("https://") || url.starts_with("http://"));
        }
        Err(e) => check_operator_refusal(&e),
    }
});
