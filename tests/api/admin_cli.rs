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
    let pool = croupier::db::pool(&url, 4, croupier::db::Limits::unlimited()).unwrap();
    let config = croupier::startup::ServerConfig::local(crate::helpers::batching());
    let pools = croupier::startup::Pools::beside(pool, &url, &config).unwrap();
    let app = croupier::startup::Application::build(&config, pools).unwrap();
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
    let mismatch = &report["walletMismatches"][0];
    assert_eq!(mismatch["balance"], "11");
    assert_eq!(mismatch["journalSum"], "10");
    assert_eq!(
        (
            mismatch["version"].as_i64(),
            mismatch["chainBreaks"].as_i64()
        ),
        (Some(1), Some(0))
    );
    // The journal refuses edits.
    assert!(client.batch_execute("DELETE FROM journal").await.is_err());
}

/// A data folder of its own for a `croupier serve` run; on drop, any PostgreSQL still running
/// on it is killed (so a failing test leaves nothing behind either) and the folder removed.
struct DataDir(std::path::PathBuf);

impl DataDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("croupier-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("data folder");
        Self(dir)
    }

    fn postmaster_pid(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.0.join("pg").join("postmaster.pid")).ok()?;
        text.lines().next().map(str::to_string)
    }

    /// Processes whose command line names this folder (PostgreSQL runs `postgres -D <dir>/pg`).
    fn processes(&self) -> Vec<String> {
        let dir = self.0.to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                cmdline.contains(&dir).then_some(cmdline)
            })
            .collect()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Some(pid) = self.postmaster_pid() {
            let _ = Command::new("kill").arg(pid).status();
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `croupier serve` on its embedded cluster in `dir` with the two listen addresses;
/// returns whether it succeeded and its stderr.
fn serve(dir: &DataDir, listen: &str, approver_listen: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("CROUPIER_DATA_DIR", &dir.0)
        .env("CROUPIER_LISTEN", listen)
        .env("CROUPIER_APPROVER_LISTEN", approver_listen)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("croupier runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The start failed with one line naming the taken address, in plain text (stderr is a
/// pipe here, so no colour), and the embedded PostgreSQL it started is gone.
fn assert_failed_cleanly(dir: &DataDir, (success, stderr): (bool, String), taken: &str) {
    assert!(!success, "serve succeeded: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("croupier: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with(&format!("croupier: cannot listen on {taken}: ")),
        "{stderr}"
    );
    assert!(errors[0].contains("Address already in use"), "{stderr}");
    assert!(
        stderr.contains("started the embedded PostgreSQL cluster"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stopped the embedded PostgreSQL cluster"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("\x1b["),
        "colour in piped logs: {stderr:?}"
    );
    assert_eq!(dir.postmaster_pid(), None, "postmaster.pid left behind");
    assert_eq!(dir.processes(), Vec::<String>::new());
}

#[test]
fn a_server_whose_port_is_taken_stops_its_postgres_and_says_why_in_one_line() {
    let dir = DataDir::new("port-taken");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = listener.local_addr().unwrap().to_string();
    let outcome = serve(&dir, &taken, "127.0.0.1:0");
    assert_failed_cleanly(&dir, outcome, &taken);
}

#[test]
fn a_server_whose_approver_port_is_taken_stops_its_postgres_too() {
    let dir = DataDir::new("approver-port-taken");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = listener.local_addr().unwrap().to_string();
    let outcome = serve(&dir, "127.0.0.1:0", &taken);
    assert_failed_cleanly(&dir, outcome, &taken);
}

#[test]
fn a_second_server_on_the_same_data_folder_leaves_the_first_one_running() {
    let dir = DataDir::new("second-server");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let first = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .env("CROUPIER_DATA_DIR", &dir.0)
        .env("CROUPIER_LISTEN", &listen)
        .env("CROUPIER_APPROVER_LISTEN", "127.0.0.1:0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("croupier runs");
    let mut first = KillOnDrop(Some(first));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first server never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pid = dir.postmaster_pid().expect("the first server's PostgreSQL");

    let (success, stderr) = serve(&dir, &listen, "127.0.0.1:0");
    assert!(!success, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {listen}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("stopped the embedded PostgreSQL cluster"),
        "{stderr}"
    );
    assert_eq!(
        dir.postmaster_pid(),
        Some(pid),
        "the first server's PostgreSQL was stopped"
    );
    // The first server still serves (a JSON 404 for a path that does not exist).
    let mut http = std::net::TcpStream::connect(&listen).unwrap();
    std::io::Write::write_all(&mut http, b"GET /nothing HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut http, &mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 404") || answer.starts_with("HTTP/1.1 404"),
        "{answer}"
    );

    let mut first = first.0.take().unwrap();
    crate::helpers::interrupt(&first);
    assert!(first.wait().unwrap().success());
    assert_eq!(
        dir.postmaster_pid(),
        None,
        "the first server left its PostgreSQL running"
    );
}

/// A server process that is killed if the test ends before it is stopped.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn seamless_operators_and_signing_keys_are_managed_from_the_command_line() {
    let url = fresh_database().await;
    let data_dir = std::env::temp_dir().join(format!("croupier-cli-{}", uuid::Uuid::new_v4()));
    let data = data_dir.to_str().unwrap();
    let operator = ok(
        &url,
        &[
            "admin",
            "operator",
            "add",
            "--name",
            "Wallet Casino",
            "--wallet-url",
            "http://127.0.0.1:9/w",
        ],
    );
    assert_eq!(operator["mode"], "seamless");
    assert_eq!(operator["secret"].as_str().unwrap().len(), 64);
    let oid = operator["id"].as_str().unwrap().to_string();
    let transfer = ok(
        &url,
        &["admin", "operator", "add", "--name", "Plain Casino"],
    );
    assert_eq!(transfer["mode"], "transfer");

    let changed = ok(
        &url,
        &[
            "admin",
            "operator",
            "set-seamless",
            "--operator",
            &oid,
            "--close",
            "off",
            "--attempt-timeout-ms",
            "2000",
            "--error-codes",
            r#"{"7": "insufficient_funds"}"#,
        ],
    );
    assert_eq!(changed["sendClose"], false);
    assert_eq!(changed["attemptTimeoutMs"], 2000);
    assert_eq!(changed["errorCodes"]["7"], "insufficient_funds");
    let (success, refused) = croupier(
        &url,
        &[
            "admin",
            "operator",
            "set-seamless",
            "--operator",
            &oid,
            "--error-codes",
            r#"{"7": "paid"}"#,
        ],
    );
    assert!(!success);
    assert!(
        refused["error"].as_str().unwrap().contains("meaning"),
        "{refused}"
    );
    let shown = ok(&url, &["admin", "operator", "show", "--operator", &oid]);
    assert_eq!(shown["errorCodes"]["7"], "insufficient_funds");
    assert_eq!(
        ok(
            &url,
            &[
                "admin",
                "operator",
                "set-wallet",
                "--operator",
                &oid,
                "--wallet-url",
                ""
            ]
        )["mode"],
        "transfer"
    );

    let rotated = ok(&url, &["admin", "keys", "rotate", "--data-dir", data]);
    let kid = rotated["kid"].as_str().unwrap();
    assert!(data_dir.join("keys").join(format!("{kid}.pem")).exists());
    let listed = ok(&url, &["admin", "keys", "list", "--data-dir", data]);
    let statuses: Vec<(&str, &str)> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["status"].as_str().unwrap()))
        .collect();
    // The installation's first key was made for the rotation, and signs until the new one.
    assert_eq!(statuses.len(), 2, "{listed}");
    assert_eq!(statuses[0].1, "current");
    assert_eq!(statuses[1], (kid, "next"));
    std::fs::remove_dir_all(&data_dir).unwrap();
}

/// `croupier serve` on its embedded cluster prints two signed curls that work as pasted: a
/// PayIn on the transfer demo session and one on the seamless demo session, which reaches the
/// demo casino wallet.
#[test]
fn the_printed_demo_requests_work_in_both_modes() {
    use std::io::BufRead;
    let dir = DataDir::new("demo-curls");
    // Port 0: the server picks a free port, and the printed curls carry it (a port picked
    // here and released could be taken by another test's process before the server binds).
    let listen = "127.0.0.1:0";
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_croupier"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .env("CROUPIER_DATA_DIR", &dir.0)
        .env("CROUPIER_LISTEN", listen)
        .env("CROUPIER_APPROVER_LISTEN", "127.0.0.1:0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("croupier runs");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    // Its log, collected aside (shown if the test fails); the pipe never fills.
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut first = KillOnDrop(Some(child));
    // The printed text, up to the second curl.
    let mut printed = String::new();
    let mut curls = 0;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.trim_end().ends_with("; echo") {
            curls += 1;
            if curls == 2 {
                break;
            }
        }
    }
    let blocks: Vec<String> = printed
        .split("\n\n")
        .filter(|b| b.starts_with("CP="))
        .map(str::to_string)
        .collect();
    if blocks.len() != 2 {
        drop(first);
        panic!("{printed}\nthe server's log:\n{}", log.join().unwrap());
    }
    let run = |script: &str| -> Value {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)))
    };
    let transfer = run(&blocks[0]);
    assert_eq!(transfer["_responseCode"], 1, "{transfer}");
    assert_eq!(transfer["balance"].to_string(), "998.5");
    let seamless = run(&blocks[1]);
    assert_eq!(seamless["_responseCode"], 1, "{seamless}");
    assert_eq!(seamless["balance"].to_string(), "998.5");
    // The casino wallet applied it.
    let ledger_url = printed
        .split_whitespace()
        .find(|w| w.ends_with("/ledger)."))
        .map(|w| w.trim_end_matches(")."))
        .expect("the ledger URL is printed");
    let ledger = run(&format!("curl -s {ledger_url}"));
    let movements = ledger["movements"].as_array().unwrap();
    assert_eq!(movements.len(), 1, "{ledger}");
    assert_eq!(movements[0]["TransactionType"], -1);
    assert_eq!(movements[0]["Amount"], "1.5");
    assert_eq!(ledger["badJwts"], 0);

    let mut child = first.0.take().unwrap();
    crate::helpers::interrupt(&child);
    assert!(child.wait().unwrap().success());
}

/// Secrets come from the environment only: a command line is visible to every user of the
/// machine (`ps`), so no secret is taken as a flag.
#[test]
fn secrets_are_not_taken_as_flags() {
    let cases: [&[&str]; 4] = [
        &["migrate", "--database-url", "postgres://u:pw@127.0.0.1:1/x"],
        &[
            "serve",
            "--crypto-assets",
            "not-json",
            "--inabit-terminal-key",
            "k",
        ],
        &[
            "serve",
            "--crypto-assets",
            "not-json",
            "--b2binpay-client-secret",
            "s",
        ],
        &[
            "serve",
            "--crypto-assets",
            "not-json",
            "--b2binpay-password",
            "p",
        ],
    ];
    for args in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_croupier"))
            .env_remove("DATABASE_URL")
            .args(args)
            .output()
            .expect("croupier runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
        assert!(!stderr.contains("pw@"), "{args:?}: {stderr}");
    }
}
