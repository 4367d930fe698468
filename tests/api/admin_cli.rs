//! The admin verbs through the real binary, as an operator would run them, then a bet made
//! with what they printed.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{dec, fresh_database, nonce, now_ms};

fn croupier(database_url: &str, args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .env("DATABASE_URL", database_url)
        .args(args)
        .output()
        .expect("croupier runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("one JSON object on stdout, got {stdout:?}"));
    (out.status.success(), json)
}

fn ok(database_url: &str, args: &[&str]) -> Value {
    let (success, json) = croupier(database_url, args);
    assert!(success, "{args:?} failed: {json}");
    json
}

#[tokio::test]
async fn an_operator_onboards_everything_without_sql_and_the_books_reconcile() {
    let url = fresh_database().await;
    let provider = ok(&url, &["admin", "provider", "add", "--name", "Games"]);
    let operator = ok(&url, &["admin", "operator", "add", "--name", "Casino"]);
    let (pid, secret) = (
        provider["id"].as_str().unwrap().to_string(),
        provider["secret"].as_str().unwrap().to_string(),
    );
    let oid = operator["id"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);

    let player = ok(
        &url,
        &[
            "admin",
            "player",
            "add",
            "--operator",
            &oid,
            "--external-id",
            "p1",
            "--currency",
            "USD",
        ],
    );
    assert!(player["playerId"].is_string());
    let credit = [
        "admin",
        "wallet",
        "credit",
        "--operator",
        &oid,
        "--external-id",
        "p1",
        "--currency",
        "USD",
        "--amount",
        "100.25",
        "--reference",
        "ref-1",
    ];
    let credited = ok(&url, &credit);
    assert_eq!(credited["balance"].to_string(), "100.25");
    // Idempotent by reference.
    assert_eq!(ok(&url, &credit)["balance"].to_string(), "100.25");
    // A bad amount is refused with an error object and a failing exit code.
    let (success, json) = croupier(
        &url,
        &[
            "admin",
            "wallet",
            "credit",
            "--operator",
            &oid,
            "--external-id",
            "p1",
            "--currency",
            "USD",
            "--amount",
            "1.001",
            "--reference",
            "ref-2",
        ],
    );
    assert!(!success && json["error"].is_string(), "{json}");
    // Usage errors are JSON too.
    let (success, json) = croupier(&url, &["admin", "provider", "add"]);
    assert!(!success, "{json}");
    assert!(json["error"].as_str().unwrap().contains("--name"), "{json}");
    let (success, json) = croupier(
        &url,
        &[
            "admin",
            "wallet",
            "credit",
            "--operator",
            &oid,
            "--external-id",
            "p1",
            "--currency",
            "USD",
            "--amount",
            "-5",
            "--reference",
            "ref-3",
        ],
    );
    assert!(!success);
    assert_eq!(json["error"], "amount is negative");

    let session = ok(
        &url,
        &[
            "admin",
            "session",
            "open",
            "--provider",
            &pid,
            "--operator",
            &oid,
            "--external-id",
            "p1",
            "--currency",
            "USD",
            "--game",
            "slot",
        ],
    );
    let session = session["sessionId"].as_str().unwrap().to_string();

    // A bet on a server using that database, signed with the printed secret.
    let pool = croupier::db::pool(&url, 4).unwrap();
    let app = croupier::startup::Application::build(
        &croupier::startup::ServerConfig::local(crate::helpers::batching()),
        pool.clone(),
        pool,
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let body = r#"{"betId":"cli-1","betAmount":0.25}"#;
    let (ts, rid) = (now_ms().to_string(), nonce());
    let sign = croupier::auth::sign(secret.as_bytes(), Some(body.as_bytes()), &pid, &ts, &rid);
    let reply: Value = reqwest::Client::new()
        .post(format!("{base}/v1/sessions/{session}/bets/pay-in"))
        .header("X-Counterparty-Id", &pid)
        .header("X-Timestamp", &ts)
        .header("X-Request-Id", &rid)
        .header("X-Sign", sign)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["_responseCode"], 1, "{reply}");
    assert_eq!(reply["balance"].to_string(), "100");
    let _ = dec("0");

    let report = ok(&url, &["admin", "reconcile"]);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["journalRows"], 2);
}

#[tokio::test]
async fn reconcile_exits_1_when_a_balance_does_not_match_its_journal() {
    let url = fresh_database().await;
    let operator = ok(&url, &["admin", "operator", "add", "--name", "Casino"]);
    let oid = operator["id"].as_str().unwrap().to_string();
    ok(
        &url,
        &[
            "admin",
            "player",
            "add",
            "--operator",
            &oid,
            "--external-id",
            "p1",
            "--currency",
            "EUR",
        ],
    );
    ok(
        &url,
        &[
            "admin",
            "wallet",
            "credit",
            "--operator",
            &oid,
            "--external-id",
            "p1",
            "--currency",
            "EUR",
            "--amount",
            "10",
            "--reference",
            "r1",
        ],
    );
    let report = ok(&url, &["admin", "reconcile"]);
    assert_eq!(report["ok"], true);
    // Money appearing without a journal row is caught.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("UPDATE wallets SET balance = balance + 1")
        .await
        .unwrap();
    let (success, report) = croupier(&url, &["admin", "reconcile"]);
    assert!(!success);
    assert_eq!(report["ok"], false);
    assert_eq!(report["walletMismatches"].as_array().unwrap().len(), 1);
    // The journal refuses edits.
    assert!(client.batch_execute("DELETE FROM journal").await.is_err());
}
