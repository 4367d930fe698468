//! The CPU cost of seamless mode's signatures: one RS256 JWT per casino call (what croupier
//! pays per movement) and its verification (what the casino pays).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use croupier::seamless::keys::{Claims, Signer};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};

const DATA: &str =
    r#"{"BetId":4178696881,"TransactionType":-1,"Amount":"10.5","PartnerUserId":"player-00042"}"#;

fn rs256(c: &mut Criterion) {
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("a key");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
    let signer = Signer::from_pem(&pem).expect("signer");
    let claims = Claims::now("https://croupier.example", "operator-1", DATA);
    c.bench_function("sign a payments/make JWT (RS256, 2048 bits)", |b| {
        b.iter(|| signer.sign(black_box(&claims)).expect("signed"))
    });
    let jwt = signer.sign(&claims).expect("signed");
    use base64::Engine;
    use rsa::traits::PublicKeyParts;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let public = key.to_public_key();
    let decoding = DecodingKey::from_rsa_components(
        &b64.encode(public.n_bytes()),
        &b64.encode(public.e_bytes()),
    )
    .expect("decoding key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["https://croupier.example"]);
    c.bench_function("verify it (jsonwebtoken, as the casino does)", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(black_box(&jwt), &decoding, &validation)
                .expect("valid")
        })
    });
}

criterion_group!(benches, rs256);
criterion_main!(benches);
