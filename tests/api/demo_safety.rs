//! The demo counterparties' secrets are public (README, fixtures): they may be active only on
//! a server that listens on loopback alone and pays out nothing. Anywhere else `serve` refuses
//! to start until they are disabled, and a fresh embedded database gets no demo data.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::fresh_database;

const DEMO_IDS: [&str; 3] = [
    "933a215f-a9e6-4f88-9d91-52a87cd50499",
    "5c2f4b1e-8d3a-4c6f-9e7b-1a2b3c4d5e6f",
    "8e4d2c1b-6f5a-4b3c-9d8e-7f6a5b4c3d2e",
];

fn serve(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_croupier"));
    command
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .env("CROUPIER_LISTEN", "127.0.0.1:0")
        .env("CROUPIER_APPROVER_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Runs a `serve` that must refuse to start; returns its stderr.
fn refused(env: &[(&str, &str)]) -> String {
    let out = serve(env).output().expect("croupier runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the server started: {stderr}");
    stderr
}

/// Starts a `serve` that must come up; stops it again with SIGINT. Returns its stdout.
fn starts(env: &[(&str, &str)]) -> String {
    let mut child = serve(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("croupier runs");
    let stderr = child.stderr.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut log = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("croupier is serving") || Instant::now() > deadline {
            break;
        }
    }
    let serving = log.contains("croupier is serving");
    crate::helpers::interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert!(serving, "the server did not start: {log}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn admin(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_croupier"));
    command.env_remove("DATABASE_URL").arg("admin").args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("croupier runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn active_demo_counterparties_stop_a_reachable_or_paying_server_until_disabled() {
    let url = fresh_database().await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(include_str!("../../fixtures/demo.sql"))
        .await
        .unwrap();
    client
        .batch_execute(include_str!("../../fixtures/demo_seamless.sql"))
        .await
        .unwrap();
    let db = ("DATABASE_URL", url.as_str());

    // A listener beyond loopback (TEST-NET: refused before any bind is tried).
    let stderr = refused(&[db, ("CROUPIER_LISTEN", "192.0.2.1:8080")]);
    assert!(stderr.contains("listens on 192.0.2.1:8080"), "{stderr}");
    for id in DEMO_IDS {
        let command = format!("croupier admin counterparty disable --id {id}");
        assert!(stderr.contains(&command), "{stderr}");
    }
    let stderr = refused(&[db, ("CROUPIER_APPROVER_LISTEN", "0.0.0.0:8091")]);
    assert!(stderr.contains("listens on 0.0.0.0:8091"), "{stderr}");
    // A crypto payout rail.
    let rail = ("CROUPIER_B2BINPAY_CLIENT_ID", "client-1");
    let stderr = refused(&[db, rail]);
    assert!(stderr.contains("pays out in crypto (b2binpay)"), "{stderr}");

    // Disabled as the message says, the same server starts.
    for id in DEMO_IDS {
        let (ok, out) = admin(&[db], &["counterparty", "disable", "--id", id]);
        assert!(ok, "{out}");
        assert!(out.contains("disabled"), "{out}");
    }
    starts(&[db, rail]);
}

#[test]
fn a_fresh_embedded_database_of_a_paying_server_gets_no_demo_data() {
    let dir = std::env::temp_dir().join(format!("croupier-demo-safety-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = ("CROUPIER_DATA_DIR", dir.to_str().unwrap());
    let stdout = starts(&[data, ("CROUPIER_B2BINPAY_CLIENT_ID", "client-1")]);
    assert!(!stdout.contains("Demo operator"), "{stdout}");
    let (ok, out) = admin(&[data], &["counterparty", "disable", "--id", DEMO_IDS[0]]);
    assert!(!ok, "the demo provider exists: {out}");
    assert!(out.contains("no such counterparty"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
