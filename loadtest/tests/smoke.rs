//! A short run of every scenario against a real server and database: the books must balance
//! (every acknowledged bet journaled, `reconcile` clean) and every answer must be the one the
//! scenario expects. Speed is not checked here; that is the benchmark's job.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use croupier::db::testing::TestCluster;
use croupier::ledger::BatchSettings;
use croupier::startup::{Application, Pools, ServerConfig};
use loadtest::run::{run, RunConfig};
use loadtest::scenario::{Distribution, Players, Scenario};

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();

#[ctor::dtor]
fn stop_cluster() {
    if let Some(c) = CLUSTER.get() {
        c.stop();
    }
}

/// A server on a fresh database: its address, the database URL, its metrics URL.
async fn server(batching: Option<BatchSettings>) -> (SocketAddr, String, String) {
    // The server's warnings in a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("croupier=warn")),
        )
        .with_test_writer()
        .try_init();
    let cluster = CLUSTER.get_or_init(|| TestCluster::start("loadtest-smoke").unwrap());
    let url = cluster.fresh_database().await.unwrap();
    let pool = croupier::db::pool(&url, 8, croupier::db::Limits::unlimited()).unwrap();
    let config = ServerConfig::local(batching);
    let pools = Pools::beside(pool, &url, &config).unwrap();
    let app = Application::build(&config, pools).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", app.port()).parse().unwrap();
    let metrics = format!("http://127.0.0.1:{}/metrics", app.approver_port().unwrap());
    tokio::spawn(app.run_until_stopped());
    (addr, url, metrics)
}

async fn every_scenario_keeps_the_books(batching: Option<BatchSettings>) {
    let (addr, url, metrics) = server(batching).await;
    let before = loadtest::stages::scrape(&metrics).await.unwrap();
    let fixture = loadtest::seed(&url, 200, "1000000").await.unwrap();
    let all = Arc::new(Players::new(fixture.sessions.clone(), Distribution::Zipf).unwrap());
    let hot =
        Arc::new(Players::new(fixture.sessions[..10].to_vec(), Distribution::Uniform).unwrap());
    let mut moved = Vec::new();
    for (scenario, rate) in [
        (Scenario::Mixed, None),
        (Scenario::Retry, None),
        (Scenario::Hot, None),
        (Scenario::Payinout, Some(400.0)),
    ] {
        let mut summary = run(RunConfig {
            addr,
            signer: fixture.provider.clone(),
            players: if scenario == Scenario::Hot {
                hot.clone()
            } else {
                all.clone()
            },
            scenario,
            connections: 12,
            duration: Duration::from_millis(1500),
            warmup: Duration::from_millis(300),
            rate,
            progress: false,
        })
        .await
        .unwrap();
        assert!(summary.requests > 100, "{scenario:?}: {summary:?}");
        assert_eq!(summary.unexpected, 0, "{scenario:?}: {:?}", summary.codes);
        if scenario == Scenario::Retry {
            // Repeats answered 104, bets arriving after their refund answered 6.
            assert!(
                summary.codes.get("104").copied().unwrap_or(0) > 0,
                "{:?}",
                summary.codes
            );
            assert!(
                summary.codes.get("6").copied().unwrap_or(0) > 0,
                "{:?}",
                summary.codes
            );
        }
        if let Some(rate) = rate {
            // The open loop keeps to its timetable (within a wide margin on a busy machine).
            assert!(summary.throughput_rps > rate * 0.5, "{summary:?}");
        }
        moved.append(&mut summary.moved_bets);
    }
    let books = loadtest::books::verify(&url, &fixture.provider.id, &moved)
        .await
        .unwrap();
    assert!(books.acknowledged_bets > 0);
    assert!(books.ok(), "{books:?}");
    // The server's account of the run, as `loadtest run` prints it.
    let after = loadtest::stages::scrape(&metrics).await.unwrap();
    let lines = loadtest::stages::breakdown(&before, &after).join("\n");
    let mut stages = vec!["signature", "session", "database"];
    if batching.is_some() {
        stages.extend(["queue", "batches"]);
    }
    for stage in stages {
        assert!(
            lines.contains(&format!("  {stage} ")),
            "no {stage}:\n{lines}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_keeps_the_books_with_group_commit() {
    every_scenario_keeps_the_books(Some(BatchSettings::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_keeps_the_books_one_bet_per_transaction() {
    every_scenario_keeps_the_books(None).await;
}

/// The pgbench side of the benchmark names sessions by formula: the formula must give the
/// sessions the seed made, player by player.
#[tokio::test]
async fn the_benchmark_session_formula_names_the_seeded_sessions() {
    let (_, url, _) = server(None).await;
    let fixture = loadtest::seed(&url, 5, "100").await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let formula = loadtest::players::session_id_sql("$1", "$2::int");
    for (n, session) in (1i32..).zip(&fixture.sessions) {
        let row = client
            .query_one(
                &format!("SELECT ({formula})::text"),
                &[&fixture.provider.id, &n],
            )
            .await
            .unwrap();
        assert_eq!(&row.get::<_, String>(0), session, "player {n}");
    }
}

/// The seamless scenario: PayInOut on a seamless operator's sessions, forwarded to the demo
/// casino; every acknowledged bet is applied there and the legs reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seamless_scenario_keeps_both_books() {
    let (addr, url, _) = server(Some(BatchSettings::default())).await;
    let casino = croupier::demo_casino::Casino::start(croupier::demo_casino::CasinoConfig {
        listen: "127.0.0.1:0".into(),
        jwks_url: format!("http://{addr}/mis-api/api/v2/auth/jwks"),
        issuer: None,
        auto_players: Some(rust_decimal::Decimal::from(1_000_000)),
        currency: "USD".into(),
        accept: None,
        workers: 1,
    })
    .unwrap();
    let fixture = loadtest::seed_seamless(&url, 50, &casino.url(), true)
        .await
        .unwrap();
    let players = Arc::new(Players::new(fixture.sessions.clone(), Distribution::Uniform).unwrap());
    let summary = run(RunConfig {
        addr,
        signer: fixture.provider.clone(),
        players,
        scenario: Scenario::Seamless,
        connections: 4,
        duration: Duration::from_millis(3000),
        warmup: Duration::from_millis(500),
        // Well within what an unoptimised build serves: this checks the books, not speed.
        rate: Some(30.0),
        progress: false,
    })
    .await
    .unwrap();
    assert!(summary.requests > 40, "{summary:?}");
    assert_eq!(summary.unexpected, 0, "{:?}", summary.codes);
    let books = loadtest::books::verify_seamless(&url, &fixture.provider.id, &summary.moved_bets)
        .await
        .unwrap();
    assert!(books.ok(), "{books:?}");
    // The casino applied two movements per acknowledged bet at least (warmup bets too).
    let applied = casino
        .movements()
        .iter()
        .filter(|m| m.error_code == 200)
        .count();
    assert!(
        applied >= 2 * summary.moved_bets.len(),
        "{applied} for {}",
        summary.moved_bets.len()
    );
    assert_eq!(casino.bad_jwts(), 0);
}
