//! The server's JSON logs: every line is one JSON object; every request has its access line
//! (request id, counterparty, endpoint, status, answer code, latency) and logs inside a
//! request carry its span; no secret appears, whatever the calls: the counterparties'
//! secrets, the signatures sent, the database password, the integrations' keys.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use croupier::admin::Admin;
use croupier::money::{Amount, Currency};
use serde_json::Value;

use crate::helpers::{fresh_database, nonce, send_to, Req, Signer};

/// Secrets the server is given in its environment (its crypto integrations point at a closed
/// loopback port: their jobs fail, and log that they did).
const ENV_SECRETS: [(&str, &str); 5] = [
    ("CROUPIER_INABIT_TERMINAL_KEY", "terminal-key-5ecret-4411"),
    ("CROUPIER_INABIT_LOGIN_TOKEN", "login-token-5ecret-4412"),
    ("CROUPIER_B2BINPAY_CLIENT_ID", "b2b-client-5ecret-4413"),
    ("CROUPIER_B2BINPAY_CLIENT_SECRET", "b2b-secret-5ecret-4414"),
    (
        "CROUPIER_B2BINPAY_CALLBACK_SECRET",
        "b2b-callback-5ecret-4415",
    ),
];

#[tokio::test]
async fn json_logs_carry_each_request_and_never_a_secret() {
    let url = fresh_database().await;
    let pool = croupier::db::pool(&url, 2, croupier::db::Limits::unlimited()).unwrap();
    let admin = Admin::new(pool);
    let provider = admin.provider_add("Log Games", true).await.unwrap();
    let operator = admin.operator_add("Log Casino").await.unwrap();
    let usd = Currency::parse("USD").unwrap();
    admin.player_add(&operator.id, "lou", usd).await.unwrap();
    admin
        .wallet_credit(
            &operator.id,
            "lou",
            Amount::parse("50", usd).unwrap(),
            &nonce(),
        )
        .await
        .unwrap();
    let session = admin
        .session_open(&provider.id, &operator.id, "lou", usd, "g", 60)
        .await
        .unwrap()
        .0;

    let mut server = Command::new(env!("CARGO_BIN_EXE_croupier"));
    server
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("CROUPIER_LOG_FORMAT", "json")
        .env("RUST_LOG", "croupier=debug,info")
        .env("CROUPIER_LISTEN", "127.0.0.1:0")
        .env("CROUPIER_APPROVER_LISTEN", "127.0.0.1:0")
        .env("CROUPIER_INABIT_GRAPHQL_URL", "http://127.0.0.1:9/graphql")
        .env("CROUPIER_INABIT_TERMINAL_URL", "http://127.0.0.1:9")
        .env("CROUPIER_B2BINPAY_URL", "http://127.0.0.1:9")
        .env("CROUPIER_CRYPTO_POLL_SECONDS", "1")
        .env("CROUPIER_CRYPTO_PAYOUT_SECONDS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in ENV_SECRETS {
        server.env(name, value);
    }
    let mut child = server.spawn().expect("croupier runs");
    let stderr = child.stderr.take().unwrap();
    // Every line is read as it comes, to the end (a pipe left unread would fill and stop the
    // server); the "serving" line names the port.
    let (serving, listen) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let json: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if json["message"] == "croupier is serving" {
                let _ = serving.send(json["listen"].as_str().unwrap_or_default().to_string());
            }
            all.push(line);
        }
        all
    });
    let Ok(listen) = listen.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        panic!(
            "the server did not start:\n{}",
            reader.join().unwrap().join("\n")
        );
    };
    let base = format!("http://{listen}");

    let http = reqwest::Client::new();
    let provider_signer = Signer::from(&provider);
    let operator_signer = Signer::from(&operator);
    let mut signatures = Vec::new();
    let mut sent = |r: Req| {
        signatures.push(r.sign.clone().unwrap_or_else(|| r.sign_now()));
        r
    };
    let bet = |id: &str| format!(r#"{{"betId":"{id}","betAmount":2,"currency":"USD"}}"#);
    let pay_in = format!("/v1/sessions/{session}/bets/pay-in");
    let post = reqwest::Method::POST;

    let good = sent(Req::signed_by(
        &provider_signer,
        post.clone(),
        pay_in.clone(),
        Some(&bet("b-1")),
    ));
    let good_id = good.request_id.clone();
    assert_eq!(send_to(&http, &base, good).await.code(), 1);
    // A forged signature, a wrong secret, an unknown counterparty: refused, each logged.
    let mut forged = Req::signed_by(
        &provider_signer,
        post.clone(),
        pay_in.clone(),
        Some(&bet("b-2")),
    );
    forged.sign = Some("ab".repeat(32));
    let forged = sent(forged);
    let forged_id = forged.request_id.clone();
    assert_eq!(send_to(&http, &base, forged).await.code(), 8);
    let wrong_secret = Signer {
        id: provider.id.clone(),
        secret: "not-the-secret".into(),
    };
    let wrong = sent(Req::signed_by(
        &wrong_secret,
        post.clone(),
        pay_in.clone(),
        Some(&bet("b-3")),
    ));
    assert_eq!(send_to(&http, &base, wrong).await.code(), 8);
    let stranger = Signer {
        id: "7b1e0a52-0000-4000-8000-00000000beef".into(),
        secret: "x".into(),
    };
    let unknown = sent(Req::signed_by(
        &stranger,
        post.clone(),
        pay_in.clone(),
        Some(&bet("b-4")),
    ));
    assert_eq!(send_to(&http, &base, unknown).await.code(), 8);
    // An operator deposit, a malformed body, and a path that does not exist.
    let deposit = r#"{"playerExternalId":"lou","currency":"USD","amount":5,"transactionId":"d-1"}"#;
    let dep = sent(Req::signed_by(
        &operator_signer,
        post.clone(),
        "/v1/player/wallet/deposit".into(),
        Some(deposit),
    ));
    let dep_id = dep.request_id.clone();
    assert_eq!(send_to(&http, &base, dep).await.json["code"], 0);
    let bad = sent(Req::signed_by(
        &provider_signer,
        post.clone(),
        pay_in.clone(),
        Some("{\"betId\":"),
    ));
    assert_eq!(send_to(&http, &base, bad).await.code(), 5);
    let nowhere = http
        .get(format!("{base}/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), 404);
    // Let the crypto jobs fail against the closed port at least once.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    crate::helpers::interrupt(&child);
    assert!(child.wait().unwrap().success());
    let all = reader.join().unwrap();
    let log = all.join("\n");

    // Every line is a JSON object with a time, a level and a target.
    let entries: Vec<Value> = all
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for e in &entries {
        for field in ["timestamp", "level", "target"] {
            assert!(e[field].is_string(), "no {field}: {e}");
        }
    }
    let access = |id: &str| {
        entries
            .iter()
            .find(|e| e["target"] == "croupier::access" && e["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}:\n{log}"))
            .clone()
    };
    let line = access(&good_id);
    assert_eq!(line["endpoint"], "/v1/sessions/{session_id}/bets/pay-in");
    assert_eq!(line["method"], "POST");
    assert_eq!(
        (line["status"].as_u64(), line["code"].as_i64()),
        (Some(200), Some(1))
    );
    assert_eq!(line["counterparty"], provider.id.as_str());
    assert!(
        line["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );
    let line = access(&forged_id);
    assert_eq!(
        (line["status"].as_u64(), line["code"].as_i64()),
        (Some(401), Some(8))
    );
    assert!(line["counterparty"].is_null(), "not authenticated: {line}");
    // The refusal's own warning is inside the request's span.
    assert!(
        entries.iter().any(
            |e| e["message"] == "call refused" && e["span"]["request_id"] == forged_id.as_str()
        ),
        "{log}"
    );
    let line = access(&dep_id);
    assert_eq!(
        (line["endpoint"].as_str(), line["code"].as_i64()),
        (Some("/v1/player/wallet/deposit"), Some(0))
    );
    assert_eq!(line["counterparty"], operator.id.as_str());
    assert!(
        entries.iter().any(|e| e["target"] == "croupier::access"
            && e["endpoint"] == "unmatched"
            && e["status"] == 404),
        "{log}"
    );

    // The integrations, holding their secrets, ran and failed.
    assert!(
        entries
            .iter()
            .any(|e| e["target"] == "croupier::crypto::jobs" && e["level"] == "WARN"),
        "{log}"
    );
    // No secret, in any form the server was given one.
    let password = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let mut secrets = vec![
        provider.secret.clone(),
        operator.secret.clone(),
        password,
        "not-the-secret".into(),
    ];
    secrets.extend(ENV_SECRETS.iter().map(|(_, v)| v.to_string()));
    secrets.extend(signatures);
    for secret in &secrets {
        assert!(secret.len() >= 8, "too short to search for: {secret}");
        assert!(
            !log.contains(secret.as_str()),
            "a secret in the log: {secret}\n{log}"
        );
    }
}
