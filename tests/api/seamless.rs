//! Seamless mode: the signing keys and what the casino calls (JWKS, verify, token), the
//! operator's mode and settings, and the transfer operations a seamless operator is refused.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use croupier::money::{Amount, Currency};
use croupier::seamless::keys::{Claims, TOKEN_LIFETIME_S};
use croupier::startup::ServerConfig;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app_configured, Signer, TestApp};

async fn app() -> TestApp {
    spawn_app_configured(ServerConfig::local(crate::helpers::batching())).await
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl TestApp {
    async fn jwks(&self, path: &str) -> (reqwest::header::HeaderMap, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let headers = r.headers().clone();
        (headers, r.json().await.unwrap())
    }

    /// POSTs `body` to a casino-side endpoint; returns the HTTP status and the envelope.
    async fn casino_post(&self, path: &str, body: String) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/mis-api/api/v2/{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    async fn verify(&self, jwt: &str) -> (u16, Value) {
        self.casino_post("auth/verify", Value::String(jwt.into()).to_string())
            .await
    }

    async fn seamless_operator(&self, wallet_url: &str) -> croupier::admin::Credentials {
        self.admin
            .operator_add_seamless("Seamless Casino", wallet_url)
            .await
            .unwrap()
    }

    async fn kids(&self) -> Vec<String> {
        let (_, jwks) = self.jwks("/mis-api/api/v2/auth/jwks").await;
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The key files in the app's keys folder.
fn key_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(&app.config.seamless.signing.keys_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// What a casino does with croupier's JWT: find the key by `kid` in the JWKS, check the
/// signature, `nbf`/`exp` and `iss`.
fn casino_decode(jwks: &Value, jwt: &str, issuer: &str) -> jsonwebtoken::TokenData<Value> {
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let kid = header.kid.expect("a kid");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is published");
    let decoding =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())
            .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss"]);
    jsonwebtoken::decode::<Value>(jwt, &decoding, &validation).unwrap()
}

#[tokio::test]
async fn the_first_start_makes_one_private_key_file_and_publishes_its_public_half() {
    let app = app().await;
    let (headers, jwks) = app.jwks("/mis-api/api/v2/auth/jwks").await;
    assert_eq!(headers["cache-control"], "public, max-age=3600");
    assert_eq!(headers["content-type"], "application/json");
    let (_, well_known) = app.jwks("/.well-known/jwks.json").await;
    assert_eq!(well_known, jwks);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");

    // One private key file, owner-only, in an owner-only folder.
    let files = key_files(&app);
    assert_eq!(files.len(), 1);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&files[0]), 0o600);
    assert_eq!(mode(&app.config.seamless.signing.keys_dir), 0o700);

    // kid: the upper-case hex SHA-1 of the public key; x5t: the same bytes in base64url.
    let pem = std::fs::read_to_string(&files[0]).unwrap();
    let private = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap();
    let spki = private.to_public_key().to_public_key_der().unwrap();
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, spki.as_bytes());
    let key = &keys[0];
    assert_eq!(key["kid"], hex::encode_upper(sha1.as_ref()));
    assert_eq!(key["x5t"], B64.encode(sha1.as_ref()));
    assert_eq!(
        files[0].file_name().unwrap().to_str().unwrap(),
        format!("{}.pem", key["kid"].as_str().unwrap())
    );
    assert_eq!(
        (
            key["kty"].as_str(),
            key["use"].as_str(),
            key["alg"].as_str()
        ),
        (Some("RSA"), Some("sig"), Some("RS256"))
    );
    use rsa::traits::PublicKeyParts;
    assert_eq!(key["n"], B64.encode(private.to_public_key().n_bytes()));
    assert_eq!(key["e"], "AQAB");
    assert_eq!(
        B64.decode(key["n"].as_str().unwrap()).unwrap().len(),
        256,
        "2048 bits"
    );

    // A second server on the same database and data folder makes no other key.
    app.seamless.keys.reload().await.unwrap();
    let other = croupier::seamless::Seamless::new(
        croupier::db::pool(&app.database_url, 2, croupier::db::Limits::unlimited()).unwrap(),
        app.pool.clone(),
        app.config.seamless.signing.clone(),
        true,
    )
    .unwrap();
    other.keys.reload().await.unwrap();
    assert_eq!(key_files(&app).len(), 1);
    assert_eq!(app.kids().await.len(), 1);
}

#[tokio::test]
async fn a_signed_call_carries_the_contract_claims_and_verifies_against_the_jwks() {
    let app = app().await;
    let signer = app.seamless.keys.signer().await.unwrap();
    let data = r#"{"PartnerUserId":"alice","TagId":0}"#;
    let issuer = app.seamless.keys.issuer().to_string();
    let before = unix_now();
    let jwt = signer.sign(&Claims::now(&issuer, "op-1", data)).unwrap();

    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid.as_deref(), Some(signer.kid.as_str()));
    let x5t = B64.decode(header.x5t.unwrap()).unwrap();
    assert_eq!(hex::encode_upper(x5t), signer.kid);

    let (_, jwks) = app.jwks("/.well-known/jwks.json").await;
    let token = casino_decode(&jwks, &jwt, &issuer);
    let claims = token.claims;
    let nbf = claims["nbf"].as_u64().unwrap();
    assert!(nbf >= before && nbf <= unix_now());
    assert_eq!(claims["exp"].as_u64().unwrap(), nbf + TOKEN_LIFETIME_S);
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["client_id"], "op-1");
    // `data` is a string holding the fields, byte for byte.
    assert_eq!(claims["data"].as_str(), Some(data));

    // croupier's own verify says the same.
    let (status, answer) = app.verify(&jwt).await;
    assert_eq!(
        (status, answer["ErrorCode"].as_i64()),
        (200, Some(200)),
        "{answer}"
    );
    assert_eq!(answer["Value"]["data"].as_str(), Some(data));
    assert_eq!(answer["Value"]["client_id"], "op-1");
}

#[tokio::test]
async fn verify_says_why_a_jwt_is_refused() {
    let app = app().await;
    let signer = app.seamless.keys.signer().await.unwrap();
    let issuer = app.seamless.keys.issuer().to_string();
    let good = signer.sign(&Claims::now(&issuer, "op", "{}")).unwrap();

    // The payload altered: the signature no longer matches.
    let parts: Vec<&str> = good.split('.').collect();
    let forged_claims = B64.encode(
        json!({"nbf": unix_now(), "exp": unix_now() + 10, "iss": issuer, "client_id": "op",
               "data": "{\"Amount\":\"1000000\"}"})
        .to_string(),
    );
    let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    assert_eq!(app.verify(&forged).await.1["ErrorCode"], 401);

    // Expired, and not valid yet.
    let now = unix_now();
    let old =
        json!({"nbf": now - 100, "exp": now - 90, "iss": issuer, "client_id": "op", "data": "{}"});
    assert_eq!(
        app.verify(&signer.sign(&old).unwrap()).await.1["ErrorCode"],
        410
    );
    let early =
        json!({"nbf": now + 100, "exp": now + 110, "iss": issuer, "client_id": "op", "data": "{}"});
    assert_eq!(
        app.verify(&signer.sign(&early).unwrap()).await.1["ErrorCode"],
        410
    );
    // Another issuer.
    let elsewhere = json!({"nbf": now, "exp": now + 10, "iss": "https://other.example", "client_id": "op", "data": "{}"});
    assert_eq!(
        app.verify(&signer.sign(&elsewhere).unwrap()).await.1["ErrorCode"],
        401
    );

    // Signed by a key croupier does not publish.
    let stranger = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let der = stranger.to_pkcs1_der().unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
    header.kid = Some("0000000000000000000000000000000000000000".into());
    let foreign = jsonwebtoken::encode(
        &header,
        &json!({"nbf": now, "exp": now + 10, "iss": issuer, "client_id": "op", "data": "{}"}),
        &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
    )
    .unwrap();
    let (status, answer) = app.verify(&foreign).await;
    assert_eq!((status, answer["ErrorCode"].as_i64()), (404, Some(404)));

    // Not a JWT; not a JSON string.
    assert_eq!(app.verify("not.a.jwt").await.1["ErrorCode"], 400);
    let (status, answer) = app.casino_post("auth/verify", good.clone()).await;
    assert_eq!((status, answer["ErrorCode"].as_i64()), (400, Some(400)));
    // The good one still passes.
    assert_eq!(app.verify(&good).await.1["ErrorCode"], 200);
}

#[tokio::test]
async fn verify_is_rate_limited_per_client() {
    let app = app().await;
    let mut limited = 0;
    for _ in 0..80 {
        if app.verify("x").await.0 == 429 {
            limited += 1;
        }
    }
    assert!(limited > 0, "80 calls at once were all served");
    assert!(limited < 80, "none was served");
}

#[tokio::test]
async fn a_token_for_an_id_no_counterparty_can_have_is_401_not_a_503() {
    let app = app().await;
    let casino = app.seamless_operator("http://127.0.0.1:9/wallet").await;
    // PostgreSQL cannot even compare a NUL: such an id is unknown without asking it.
    for id in ["a\u{0}b", "a b", &"x".repeat(65)] {
        let asked = json!({"PartnerClientId": id, "Secret": casino.secret}).to_string();
        let (status, answer) = app.casino_post("auth/token", asked).await;
        assert_eq!(
            (status, answer["ErrorCode"].as_i64()),
            (401, Some(401)),
            "{id:?}"
        );
    }
}

#[tokio::test]
async fn a_verdict_holding_a_nul_character_is_400_not_a_503() {
    let app = app().await;
    let casino = app.seamless_operator("http://127.0.0.1:9/wallet").await;
    let asked = json!({"PartnerClientId": casino.id, "Secret": casino.secret}).to_string();
    let (_, answer) = app.casino_post("auth/token", asked).await;
    let token = answer["Value"]["AccessToken"].as_str().unwrap().to_string();

    // A verdict holding a NUL anywhere cannot be stored: 400, nothing recorded.
    for verdict in [
        json!({"BetId": 1, "TransactionType": -1, "ErrorCode": 200, "Message": "a\u{0}"}),
        json!({"BetId": 1, "TransactionType": -1, "ErrorCode": 200, "PartnerTransactionId": "\u{0}"}),
        json!({"BetId": 1, "TransactionType": -1, "ErrorCode": 200, "extra": {"k\u{0}": 1}}),
    ] {
        let r = app
            .http
            .post(format!("{}/mis-api/api/v2/payments/accept", app.base))
            .bearer_auth(&token)
            .json(&verdict)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let answer: Value = r.json().await.unwrap();
        assert_eq!(
            (status, answer["ErrorCode"].as_i64()),
            (400, Some(400)),
            "{verdict}"
        );
    }
    let discrepancies: i64 = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM seamless_discrepancies", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(discrepancies, 0);
}

#[tokio::test]
async fn a_casino_gets_a_bearer_token_for_its_operator_credentials() {
    let app = app().await;
    let casino = app.seamless_operator("http://127.0.0.1:9/wallet").await;
    let ask = |id: &str, secret: &str| json!({"PartnerClientId": id, "Secret": secret}).to_string();

    let (status, answer) = app
        .casino_post("auth/token", ask(&casino.id, &casino.secret))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ErrorCode"], 200);
    assert_eq!(answer["Value"]["TokenType"], "Bearer");
    assert_eq!(answer["Value"]["ExpiresIn"], 3600);
    let token = answer["Value"]["AccessToken"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert_eq!(
        app.seamless.token_operator(&token).await.unwrap(),
        casino.id
    );

    // Only the token's SHA-256 is stored.
    let client = app.pool.get().await.unwrap();
    let stored: Vec<Vec<u8>> = client
        .query("SELECT token_sha256 FROM casino_tokens", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, vec![Sha256::digest(token.as_bytes()).to_vec()]);

    // Wrong secret, unknown operator: 401, and nothing issued.
    let (status, answer) = app
        .casino_post("auth/token", ask(&casino.id, "wrong-secret"))
        .await;
    assert_eq!((status, answer["ErrorCode"].as_i64()), (401, Some(401)));
    assert_eq!(
        app.casino_post("auth/token", ask("nobody", &casino.secret))
            .await
            .0,
        401
    );
    assert_eq!(app.casino_post("auth/token", "{}".into()).await.0, 400);
    // A transfer operator has no casino wallet to speak for.
    let (status, _) = app
        .casino_post("auth/token", ask(&app.operator.id, &app.operator.secret))
        .await;
    assert_eq!(status, 403);
    let count: i64 = client
        .query_one("SELECT count(*) FROM casino_tokens", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);

    // An expired token, or one of a disabled operator, no longer works.
    client
        .execute(
            "UPDATE casino_tokens SET expires_at = now() - interval '1 s'",
            &[],
        )
        .await
        .unwrap();
    assert!(app.seamless.token_operator(&token).await.is_err());
    assert!(app.seamless.token_operator("zz").await.is_err());
}

#[tokio::test]
async fn a_rotated_key_is_published_a_day_before_it_signs_and_a_day_after_its_last_use() {
    let app = app().await;
    let signing = &app.config.seamless.signing;
    let first = app.seamless.keys.signer().await.unwrap().kid.clone();

    let next = app
        .admin
        .keys_rotate(signing, Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    let next_kid = next["kid"].as_str().unwrap().to_string();
    assert_ne!(next_kid, first);
    app.seamless.keys.reload().await.unwrap();
    assert_eq!(app.kids().await, vec![first.clone(), next_kid.clone()]);
    // It is published, but the current key still signs.
    assert_eq!(app.seamless.keys.signer().await.unwrap().kid, first);
    let listed = app.admin.keys_list(signing).await.unwrap();
    let statuses: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["current", "next"]);

    // A day later the next key signs; the first is still published (retired).
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE signing_keys SET signs_from = now() - interval '1 hour' WHERE kid = $1",
            &[&next_kid],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE signing_keys SET signs_from = now() - interval '2 days' WHERE kid = $1",
            &[&first],
        )
        .await
        .unwrap();
    app.seamless.keys.reload().await.unwrap();
    assert_eq!(app.seamless.keys.signer().await.unwrap().kid, next_kid);
    // And a third: the JWKS shows the old, the current and the next key.
    let third = app
        .admin
        .keys_rotate(signing, Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    let third_kid = third["kid"].as_str().unwrap().to_string();
    app.seamless.keys.reload().await.unwrap();
    assert_eq!(
        app.kids().await,
        vec![first.clone(), next_kid.clone(), third_kid.clone()]
    );
    let listed = app.admin.keys_list(signing).await.unwrap();
    let statuses: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["retired", "current", "next"]);

    // A JWT of the retired key still verifies while it is published...
    let issuer = app.seamless.keys.issuer().to_string();
    let pem = std::fs::read_to_string(signing.keys_dir.join(format!("{first}.pem"))).unwrap();
    let old_key = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap();
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
    header.kid = Some(first.clone());
    let now = unix_now();
    let old_jwt = jsonwebtoken::encode(
        &header,
        &json!({"nbf": now, "exp": now + 10, "iss": issuer, "client_id": "op", "data": "{}"}),
        &jsonwebtoken::EncodingKey::from_rsa_der(old_key.to_pkcs1_der().unwrap().as_bytes()),
    )
    .unwrap();
    assert_eq!(app.verify(&old_jwt).await.1["ErrorCode"], 200);
    // ...and not once its successor has signed for more than a day.
    client
        .execute(
            "UPDATE signing_keys SET signs_from = now() - interval '25 hours' WHERE kid = $1",
            &[&next_kid],
        )
        .await
        .unwrap();
    app.seamless.keys.reload().await.unwrap();
    assert_eq!(app.kids().await, vec![next_kid.clone(), third_kid]);
    assert_eq!(app.verify(&old_jwt).await.1["ErrorCode"], 404);
}

#[tokio::test]
async fn a_pem_key_signs_instead_of_generated_ones() {
    let dir = std::env::temp_dir().join(format!("croupier-pem-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let path = dir.join("signing.pem");
    std::fs::write(
        &path,
        key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let mut config = ServerConfig::local(crate::helpers::batching());
    config.seamless.signing.pem = Some(path);
    let app = spawn_app_configured(config).await;
    let signer = app.seamless.keys.signer().await.unwrap();
    let spki = key.to_public_key().to_public_key_der().unwrap();
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, spki.as_bytes());
    assert_eq!(signer.kid, hex::encode_upper(sha1.as_ref()));
    assert_eq!(app.kids().await, vec![signer.kid.clone()]);
    assert!(
        !app.config.seamless.signing.keys_dir.exists(),
        "no key was generated"
    );
    // Rotation is for generated keys.
    assert!(app
        .admin
        .keys_rotate(&app.config.seamless.signing, Duration::ZERO)
        .await
        .is_err());
}

#[tokio::test]
async fn a_seamless_operator_is_refused_deposits_and_withdrawals() {
    let app = app().await;
    let casino = app.seamless_operator("http://127.0.0.1:9/wallet").await;
    let usd = Currency::parse("USD").unwrap();
    app.admin
        .player_add(&casino.id, "alice", usd)
        .await
        .unwrap();
    let err = app
        .admin
        .wallet_credit(
            &casino.id,
            "alice",
            Amount::parse("10", usd).unwrap(),
            "c-1",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, croupier::error::Error::SeamlessOperator),
        "{err}"
    );
    for path in ["/v1/player/wallet/deposit", "/v1/player/wallet/withdraw"] {
        let body = json!({"playerExternalId": "alice", "currency": "USD", "amount": 10,
                          "transactionId": format!("t-{path}")})
        .to_string();
        let r = app
            .op_send(app.op_req(&Signer::from(&casino), path, Some(&body)))
            .await;
        r.expect(101);
        assert!(
            r.json["message"].as_str().unwrap().contains("seamless"),
            "{}",
            r.body
        );
    }
    // The transfer operator still deposits.
    app.create_player("bob", "USD").await.expect(0);
    app.deposit("bob", "USD", "10", "t-bob").await.expect(0);
    let balance: rust_decimal::Decimal = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT coalesce(sum(w.balance), 0) FROM wallets w JOIN players p ON p.id = w.player_id
              WHERE p.operator_id = $1",
            &[&casino.id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(balance.is_zero());
}

#[tokio::test]
async fn an_operator_changes_mode_only_while_no_money_is_held_and_settings_are_checked() {
    let app = app().await;
    let op = &app.operator.id;
    assert_eq!(
        app.admin.operator_show(op).await.unwrap()["mode"],
        "transfer"
    );

    // A funded transfer operator cannot become seamless.
    let player = app.player("USD", "5").await;
    let err = app
        .admin
        .operator_set_wallet(op, "http://127.0.0.1:9")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("holds money"), "{err}");
    app.withdraw(&player.external_id, "USD", "5", "w-1")
        .await
        .expect(0);
    let shown = app
        .admin
        .operator_set_wallet(op, "http://127.0.0.1:9/w")
        .await
        .unwrap();
    assert_eq!(shown["mode"], "seamless");
    assert_eq!(shown["walletUrl"], "http://127.0.0.1:9/w");
    assert_eq!(shown["attemptTimeoutMs"], 3000);
    assert_eq!(shown["providerDeadlineMs"], 8000);
    assert_eq!(shown["retryHorizonS"], 86400);
    assert_eq!(shown["abandonAfterS"], 60);
    assert_eq!(shown["sendClose"], true);
    assert_eq!(shown["makeList"], false);
    assert_eq!(shown["errorCodes"]["402"], "insufficient_funds");
    assert_eq!(shown["errorCodes"]["202"], "accepted");

    let change = croupier::seamless::admin::SettingsChange {
        attempt_timeout_ms: Some(1500),
        make_list: Some(true),
        error_codes: Some(
            croupier::seamless::ErrorCodes::from_json(&json!({"7": "insufficient_funds"})).unwrap(),
        ),
        ..Default::default()
    };
    let shown = app.admin.operator_set_seamless(op, &change).await.unwrap();
    assert_eq!(shown["attemptTimeoutMs"], 1500);
    assert_eq!(shown["makeList"], true);
    assert_eq!(shown["errorCodes"]["7"], "insufficient_funds");
    assert_eq!(shown["errorCodes"]["402"], "insufficient_funds");
    // The server sees the change (the database announces it).
    let mut seen = None;
    for _ in 0..50 {
        seen = app.seamless.settings(op).await.unwrap();
        if seen.as_ref().is_some_and(|s| s.make_list) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.expect("seamless");
    assert!(seen.make_list);
    assert_eq!(seen.attempt_timeout, Duration::from_millis(1500));
    assert_eq!(
        seen.error_codes.meaning(7),
        croupier::seamless::Meaning::InsufficientFunds
    );

    // Out of range, or a deadline shorter than one attempt: refused, nothing changed.
    for bad in [
        croupier::seamless::admin::SettingsChange {
            attempt_timeout_ms: Some(10),
            ..Default::default()
        },
        croupier::seamless::admin::SettingsChange {
            provider_deadline_ms: Some(1000),
            ..Default::default()
        },
        croupier::seamless::admin::SettingsChange {
            retry_horizon_s: Some(1),
            ..Default::default()
        },
    ] {
        let err = app.admin.operator_set_seamless(op, &bad).await.unwrap_err();
        assert!(matches!(err, croupier::error::Error::BadValue(_)), "{err}");
    }
    assert_eq!(
        app.admin.operator_show(op).await.unwrap()["attemptTimeoutMs"],
        1500
    );
    for bad in ["ftp://x", "not a url", "https://u:p@host/"] {
        assert!(
            app.admin.operator_set_wallet(op, bad).await.is_err(),
            "{bad}"
        );
    }

    // Back to transfer mode.
    assert_eq!(
        app.admin.operator_set_wallet(op, "").await.unwrap()["mode"],
        "transfer"
    );
    assert!(app.admin.operator_set_seamless(op, &change).await.is_err());
    let mut gone = false;
    for _ in 0..50 {
        if app.seamless.settings(op).await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the server still sees a seamless operator");
}
