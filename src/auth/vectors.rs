//! The signing test vectors integrators check their clients against
//! (`fixtures/signature-vectors.json`, run by `examples/check.sh`). Every `sign`, `token` and
//! key in the file is what croupier's own code makes, and these tests check that croupier
//! accepts each one: the HMAC of the bet and operator APIs through `Counterparty::verify`, the
//! seamless JWT the way `POST /mis-api/api/v2/auth/verify` checks it.
//!
//! After changing a vector's inputs, or adding one, fill in its outputs with
//! `cargo test -p croupier --lib auth::vectors::write_the_vectors -- --ignored`.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{sign, Counterparty, Role};
use crate::seamless::keys::{Claims, PublicJwk, Signer};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/signature-vectors.json"
);

const ABOUT: [&str; 6] = [
    "Signing test vectors, made and checked by croupier's own code (src/auth/vectors.rs).",
    "hmac: X-Sign = hex(HMAC-SHA256(secret, body + '.' + counterparty_id + '.' + timestamp + '.' + request_id)) for a POST; a GET (body null) signs counterparty_id + '.' + timestamp + '.' + request_id. body is the exact bytes sent (UTF-8, escapes included as written); method and path are not signed.",
    "audience: provider = the bet API (/v1/sessions/...), operator = the transfer API (/v1/player/..., /v1/transactions/...). Both sign the same way.",
    "jwt: the RS256 tokens a seamless casino receives (the request body is the token as a JSON string), with the public key to verify them as JWK (as the JWKS publishes it) and PEM. claims are what the token carries; nbf and exp are in the past, so check the signature and the claims, not the clock, against these.",
    "jwt_test_key: the private key that signed them. It is a test key, published here: never sign anything real with it.",
    "examples/check.sh runs the clients in examples/ against this file.",
];

const TEST_KEY_NOTE: &str =
    "TEST KEY, public: it signs the jwt vectors below and nothing else. Never use it in production.";

#[derive(Serialize, Deserialize)]
struct Vectors {
    about: Vec<String>,
    hmac: Vec<HmacVector>,
    jwt_test_key: TestKey,
    jwt: Vec<JwtVector>,
}

#[derive(Serialize, Deserialize)]
struct HmacVector {
    name: String,
    /// `provider` or `operator`.
    audience: String,
    method: String,
    path: String,
    secret: String,
    /// The exact body; `None` for a GET.
    body: Option<String>,
    counterparty_id: String,
    timestamp: String,
    request_id: String,
    sign: String,
}

#[derive(Serialize, Deserialize)]
struct TestKey {
    note: String,
    private_key_pem: String,
}

#[derive(Serialize, Deserialize)]
struct JwtVector {
    name: String,
    /// The casino endpoint under its wallet URL.
    path: String,
    claims: JwtClaims,
    kid: String,
    public_key_jwk: Value,
    public_key_pem: String,
    token: String,
}

#[derive(Serialize, Deserialize)]
struct JwtClaims {
    nbf: u64,
    exp: u64,
    iss: String,
    client_id: String,
    data: String,
}

fn read() -> Vectors {
    let text = std::fs::read_to_string(FILE).expect("the vectors file is readable");
    serde_json::from_str(&text).expect("the vectors file parses")
}

impl HmacVector {
    fn body(&self) -> Option<&[u8]> {
        self.body.as_deref().map(str::as_bytes)
    }

    fn counterparty(&self) -> Counterparty {
        let role = Role::parse(&self.audience).expect("audience is provider or operator");
        Counterparty::new(self.counterparty_id.clone(), role, true, true, &self.secret)
    }

    fn expected_sign(&self) -> String {
        sign(
            self.secret.as_bytes(),
            self.body(),
            &self.counterparty_id,
            &self.timestamp,
            &self.request_id,
        )
    }
}

impl JwtVector {
    /// The token croupier's signer makes of these claims with `key`.
    fn expected_token(&self, signer: &Signer) -> String {
        let claims = Claims {
            nbf: self.claims.nbf,
            exp: self.claims.exp,
            iss: &self.claims.iss,
            client_id: &self.claims.client_id,
            data: &self.claims.data,
        };
        signer.sign(&claims).expect("the test key signs")
    }
}

/// The public halves of the test key: its JWK as croupier publishes it, and its PEM.
fn public_halves(pem: &str) -> (Value, String) {
    let key = rsa::PrivateKey::from_pkcs8_pem(pem).expect("the test key is PKCS#8 PEM");
    let jwk = serde_json::to_value(PublicJwk::of(&key).expect("a JWK")).expect("JSON");
    let spki = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("a public PEM");
    (jwk, spki)
}

#[test]
fn every_hmac_vector_is_what_croupier_signs_and_accepts() {
    for v in read().hmac {
        assert_eq!(
            v.method == "GET",
            v.body.is_none(),
            "{}: a GET has no body",
            v.name
        );
        assert_eq!(v.sign, v.expected_sign(), "{}", v.name);
        let counterparty = v.counterparty();
        let (ts, rid) = (v.timestamp.as_str(), v.request_id.as_str());
        assert!(
            counterparty.verify(v.body(), ts, rid, &v.sign),
            "{}",
            v.name
        );
        // One byte more in the body, a body on a GET, another timestamp: refused.
        let longer = format!("{} ", v.body.as_deref().unwrap_or(""));
        assert!(!counterparty.verify(Some(longer.as_bytes()), ts, rid, &v.sign));
        let other_ts = format!("{ts}1");
        assert!(!counterparty.verify(v.body(), &other_ts, rid, &v.sign));
        let other_secret = Counterparty::new(v.counterparty_id, Role::Provider, true, true, "x");
        assert!(!other_secret.verify(v.body.as_deref().map(str::as_bytes), ts, rid, &v.sign));
    }
}

#[test]
fn the_vectors_cover_what_integrators_meet() {
    let vectors = read();
    let hmac = &vectors.hmac;
    assert!(hmac.len() + vectors.jwt.len() >= 12);
    for (audience, method) in [
        ("provider", "POST"),
        ("provider", "GET"),
        ("operator", "POST"),
        ("operator", "GET"),
    ] {
        assert!(
            hmac.iter()
                .any(|v| v.audience == audience && v.method == method),
            "no {audience} {method} vector"
        );
    }
    let bodies = || hmac.iter().filter_map(|v| v.body.as_deref());
    assert!(
        bodies().any(|b| !b.is_ascii()),
        "no body with non-ASCII bytes"
    );
    assert!(bodies().any(|b| b.contains(r"\u00e9") && b.contains(r"\/") && b.contains(r#"\""#)));
    assert!(bodies().any(|b| b.is_empty() || b == "{}"));
    let mut names: Vec<_> = hmac.iter().map(|v| &v.name).collect();
    names.extend(vectors.jwt.iter().map(|v| &v.name));
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "vector names are unique");
}

#[test]
fn every_jwt_vector_is_what_croupier_signs_and_verifies() {
    let vectors = read();
    let signer = Signer::from_pem(&vectors.jwt_test_key.private_key_pem).expect("a signer");
    let (jwk, pem) = public_halves(&vectors.jwt_test_key.private_key_pem);
    assert!(!vectors.jwt.is_empty());
    for v in vectors.jwt {
        assert_eq!(v.kid, signer.kid, "{}", v.name);
        assert_eq!(v.public_key_jwk, jwk, "{}", v.name);
        assert_eq!(v.public_key_pem, pem, "{}", v.name);
        // RS256 (PKCS#1 v1.5) is deterministic: the same key and claims make the same token.
        assert_eq!(v.token, v.expected_token(&signer), "{}", v.name);

        // As `auth/verify` checks a token, less the clock (these are long expired).
        let header = jsonwebtoken::decode_header(&v.token).expect("a JWT header");
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(v.kid.as_str()));
        let n = v.public_key_jwk["n"].as_str().expect("n");
        let e = v.public_key_jwk["e"].as_str().expect("e");
        let key = DecodingKey::from_rsa_components(n, e).expect("an RSA key");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "nbf", "iss"]);
        validation.set_issuer(&[&v.claims.iss]);
        let decoded =
            jsonwebtoken::decode::<Value>(&v.token, &key, &validation).expect("the token verifies");
        let claims = serde_json::to_value(&v.claims).expect("JSON");
        assert_eq!(decoded.claims, claims, "{}", v.name);

        // The same signature over other claims does not verify.
        let mut parts: Vec<&str> = v.token.split('.').collect();
        let other = base64_claims(&format!("{{\"iss\":\"{}\"}}", v.claims.iss));
        parts[1] = &other;
        let forged = parts.join(".");
        let refused = jsonwebtoken::decode::<Value>(&forged, &key, &validation)
            .expect_err("a forged token is refused");
        assert_eq!(*refused.kind(), ErrorKind::InvalidSignature);
    }
}

fn base64_claims(json: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Fills in every output of the file (signs, keys, tokens) from its inputs.
#[test]
#[ignore = "rewrites fixtures/signature-vectors.json; run by hand after changing a vector"]
fn write_the_vectors() {
    let mut vectors = read();
    vectors.about = ABOUT.iter().map(|line| line.to_string()).collect();
    vectors.jwt_test_key.note = TEST_KEY_NOTE.to_string();
    for v in &mut vectors.hmac {
        v.sign = v.expected_sign();
    }
    let signer = Signer::from_pem(&vectors.jwt_test_key.private_key_pem).expect("a signer");
    let (jwk, pem) = public_halves(&vectors.jwt_test_key.private_key_pem);
    for v in &mut vectors.jwt {
        v.kid = signer.kid.clone();
        v.public_key_jwk = jwk.clone();
        v.public_key_pem = pem.clone();
        v.token = v.expected_token(&signer);
    }
    let text = serde_json::to_string_pretty(&vectors).expect("JSON") + "\n";
    std::fs::write(FILE, text).expect("the vectors file is written");
}
