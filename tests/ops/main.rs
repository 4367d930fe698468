//! Operations: the metrics on the private listener after real traffic (every family an
//! operator's dashboards and alerts read), the reconcile result as a metric, and readiness
//! following PostgreSQL down and back up without a restart.
//!
//! A test binary of its own: the metrics recorder is the process's, so here no other test
//! moves the counters, and the tests can check exact differences.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use croupier::db::testing::TestCluster;
use croupier::startup::ServerConfig;

use crate::helpers::{batching, spawn_app_configured, spawn_app_on, TestApp};

/// One sample of a Prometheus text exposition: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// The samples of a Prometheus text exposition.
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect();
            Some((name.to_string(), labels, value))
        })
        .collect()
}

/// The sum of the series named `name` whose labels include `want`; None if there is none.
fn sum(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = samples(text)
        .into_iter()
        .filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
        .collect();
    (!found.is_empty()).then(|| found.iter().sum())
}

async fn scrape(app: &TestApp) -> String {
    let answer = app
        .http
        .get(format!("{}/metrics", app.private_base))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(answer.status(), 200);
    let kind = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("text/plain"), "{kind}");
    answer.text().await.expect("the metrics")
}

async fn get_status(app: &TestApp, path: &str) -> (u16, serde_json::Value) {
    let answer = app
        .http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("GET");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("JSON"))
}

const PAY_IN: &str = "/v1/sessions/{session_id}/bets/pay-in";

/// The metrics are the process's: one test at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn the_metrics_show_every_family_after_traffic_and_reconcile_failures() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let config = ServerConfig {
        reconcile_every: Some(Duration::from_millis(300)),
        ..ServerConfig::local(batching())
    };
    let app = spawn_app_configured(config).await;
    // Counters only grow: what this test did is the difference.
    let before = scrape(&app).await;
    let players = [
        app.player("USD", "100").await,
        app.player("USD", "100").await,
    ];
    for i in 0..20 {
        app.pay_in(&players[i % 2], &format!("m-{i}"), "1")
            .await
            .expect(1, 200);
    }
    app.pay_in(&players[0], "m-poor", "1000")
        .await
        .expect(2, 402);
    app.create_player("mia", "USD").await.expect(0);
    let (status, body) = get_status(&app, "/health/ready").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));

    let text = scrape(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sum(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}"))
            - sum(&before, name, labels).unwrap_or(0.0)
    };
    let requests = "croupier_http_requests_total";
    let paid = [
        ("endpoint", PAY_IN),
        ("method", "POST"),
        ("status", "200"),
        ("code", "1"),
    ];
    assert_eq!(moved(requests, &paid), 20.0);
    let poor = [("endpoint", PAY_IN), ("status", "402"), ("code", "2")];
    assert_eq!(moved(requests, &poor), 1.0);
    let created = [
        ("endpoint", "/v1/player/create"),
        ("status", "200"),
        ("code", "0"),
    ];
    assert_eq!(moved(requests, &created), 1.0);
    let latency = "croupier_http_request_duration_seconds_count";
    assert_eq!(moved(latency, &[("endpoint", PAY_IN), ("code", "1")]), 20.0);
    assert!(text.contains("croupier_http_request_duration_seconds_bucket{"));

    // Every provider call went through each stage once; with group commit, the 21 calls
    // were in batches, and none is left in a queue.
    let mut stages = vec!["signature", "session", "database"];
    if batching().is_some() {
        stages.push("queue");
        assert_eq!(moved("croupier_bet_batch_size_sum", &[]), 21.0);
        let batches = moved("croupier_bet_batch_size_count", &[]);
        assert!((1.0..=21.0).contains(&batches), "{batches}");
        assert_eq!(sum(&text, "croupier_bet_queue_depth", &[]), Some(0.0));
    }
    for stage in stages {
        let stage_count = "croupier_bet_stage_duration_seconds_count";
        assert_eq!(
            moved(stage_count, &[("stage", stage)]),
            21.0,
            "stage {stage}"
        );
    }
    for pool in ["bets", "crypto", "seamless", "nonces", "probe", "reconcile"] {
        let max = sum(&text, "croupier_db_pool_max_connections", &[("pool", pool)])
            .unwrap_or_else(|| panic!("no pool {pool}"));
        assert!(max >= 1.0);
        assert!(sum(
            &text,
            "croupier_db_pool_connections",
            &[("pool", pool), ("state", "idle")]
        )
        .is_some());
        assert!(sum(&text, "croupier_db_pool_waiting", &[("pool", pool)]).is_some());
    }
    for family in [
        "croupier_crypto_events_waiting",
        "croupier_crypto_payouts_in_flight",
        "croupier_crypto_reviews_open",
    ] {
        assert_eq!(sum(&text, family, &[]), Some(0.0), "{family}");
    }
    assert!(sum(
        &text,
        "croupier_crypto_webhooks_total",
        &[("outcome", "rate_limited")]
    )
    .is_some());
    for state in ["pending", "sent", "unknown", "stuck"] {
        assert!(
            sum(&text, "croupier_seamless_legs", &[("state", state)]).is_some(),
            "{state}"
        );
    }
    assert_eq!(sum(&text, "croupier_scrape_database_up", &[]), Some(1.0));
    assert_eq!(sum(&text, "croupier_ready", &[]), Some(1.0));
    assert!(text.contains("# HELP croupier_bet_stage_duration_seconds"));

    // The books balance: reconcile says so. Then a wallet is altered behind the ledger's
    // back, and the next run says that too.
    let text = wait_for(&app, "croupier_reconcile_ok", 1.0).await;
    assert!(sum(&text, "croupier_reconcile_last_run_timestamp_seconds", &[]).unwrap() > 1.7e9);
    assert_eq!(
        sum(
            &text,
            "croupier_reconcile_mismatches",
            &[("kind", "wallet")]
        ),
        Some(0.0)
    );
    app.sql("UPDATE wallets SET balance = balance + 1 WHERE id = (SELECT id FROM wallets ORDER BY id LIMIT 1)")
        .await;
    let text = wait_for(&app, "croupier_reconcile_ok", 0.0).await;
    assert_eq!(
        sum(
            &text,
            "croupier_reconcile_mismatches",
            &[("kind", "wallet")]
        ),
        Some(1.0)
    );
    assert!(
        sum(
            &text,
            "croupier_reconcile_runs_total",
            &[("result", "mismatches")]
        )
        .unwrap()
            >= 1.0
    );

    // The metrics are not on the public listener.
    let public = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
}

/// Scrapes until `family` reads `value` (within 10 s).
async fn wait_for(app: &TestApp, family: &str, value: f64) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(app).await;
        if sum(&text, family, &[]) == Some(value) {
            return text;
        }
        assert!(
            Instant::now() < until,
            "{family} never read {value}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `/health/ready` until it answers `status` (within `limit`).
async fn ready_becomes(app: &TestApp, status: u16, word: &str, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let (got, body) = get_status(app, "/health/ready").await;
        if got == status {
            assert_eq!(
                body,
                serde_json::json!({ "status": word }),
                "nothing else is said"
            );
            return;
        }
        assert!(
            Instant::now() < until,
            "/health/ready stayed {got}, not {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn ready_follows_postgresql_down_and_back_up_without_a_restart() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // A cluster of this test's own: it is stopped under the running server.
    let cluster = TestCluster::start("croupier-ready-test").expect("a cluster");
    let url = cluster.fresh_database().await.expect("a database");
    let app = spawn_app_on(ServerConfig::local(batching()), url, str::to_string).await;
    let player = app.player("USD", "10").await;
    app.pay_in(&player, "r-1", "1").await.expect(1, 200);
    ready_becomes(&app, 200, "ready", Duration::from_secs(5)).await;

    cluster.stop_server().expect("PostgreSQL stops");
    ready_becomes(&app, 503, "unready", Duration::from_secs(10)).await;
    let (live, body) = get_status(&app, "/health/live").await;
    assert_eq!(
        (live, body["status"].as_str()),
        (200, Some("live")),
        "still live"
    );
    let text = scrape(&app).await;
    assert_eq!(sum(&text, "croupier_scrape_database_up", &[]), Some(0.0));

    cluster.start_again().expect("PostgreSQL starts again");
    ready_becomes(&app, 200, "ready", Duration::from_secs(20)).await;
    // And it serves again: the same server, its pools reconnected.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = app.pay_in(&player, "r-2", "1").await;
        if reply.code() == 1 || reply.code() == 104 {
            break;
        }
        assert!(
            Instant::now() < until,
            "bets never came back: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.stop();
}
