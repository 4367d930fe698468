//! `loadtest chaos`: the server under load while its process is killed, its database crashed
//! and the link between them blackholed, reset and frozen; then the books, against the
//! players' own model.
//!
//! Its own durable PostgreSQL cluster (fsync and synchronous commit on: an acknowledged call
//! must survive a crash), a proxy in front of it (`proxy`), and the server binary as a child
//! process reaching PostgreSQL through the proxy (`server`). Virtual providers (`play`) drive
//! bet calls, each on players of its own, retrying every undecided call until it is decided;
//! faults (`faults`) come on a schedule drawn from a seed. At the end (`check`): every bet as
//! the model has it, every balance equal to the model, every acknowledged call journaled,
//! `reconcile` clean.

pub mod check;
mod faults;
pub mod play;
pub mod proxy;
mod server;
mod summary;
mod tally;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use serde::Serialize;
use tokio::time::Instant;

pub use self::check::Verdict;
pub use self::faults::Fault;
use self::faults::{Database, Harness, Injected};
use self::play::{Book, PlayConfig, Provider, Shared};
use self::proxy::Proxy;
use self::server::{Server, ServerSpec};
pub use self::summary::print;
pub use self::tally::Tally;

#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// The cluster, the server's log and data, and the summary JSON go here.
    pub out_dir: PathBuf,
    pub server_bin: PathBuf,
    /// How long the load runs (the faults come within it).
    pub seconds: f64,
    pub players: i32,
    /// Virtual providers, one connection each.
    pub connections: usize,
    pub faults: Vec<Fault>,
    pub seed: u64,
    /// The first fault this long after the load starts.
    pub first_fault_s: f64,
    /// Between the starts of two faults (± a quarter).
    pub interval_s: f64,
    /// No fault starts in the last this many seconds of the load.
    pub calm_s: f64,
    /// How long a blackhole or a freeze lasts.
    pub hold: Duration,
    pub db_timeout_ms: u64,
    pub bet_deadline_ms: u64,
    /// A bet call answered later than this is late.
    pub answer_bound: Duration,
    /// After the load, how long undecided calls may take to be decided.
    pub drain: Duration,
    /// The server's RUST_LOG.
    pub server_log: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub seed: u64,
    pub seconds: f64,
    pub players: i32,
    pub connections: usize,
    pub answer_bound_ms: u64,
    pub faults: Vec<Injected>,
    pub server_starts: u32,
    pub unplanned_server_exits: u32,
    pub proxy_connections: u64,
    pub proxy_resets: u64,
    pub proxy_bytes_dropped: u64,
    pub tally: Tally,
    pub books: Verdict,
}

impl Outcome {
    /// Everything that must be zero for the run to pass.
    pub fn failures(&self) -> u64 {
        self.tally.unexpected
            + self.tally.balance_off
            + self.tally.late
            + self.tally.undecided
            + u64::from(self.unplanned_server_exits)
            + self.books.mismatches()
    }
}

/// Every player starts with this much (USD).
const FUNDS: &str = "1000000";

pub async fn chaos(config: ChaosConfig) -> anyhow::Result<Outcome> {
    if !config.server_bin.is_file() {
        bail!(
            "server binary {} not found: build it first (cargo build --workspace --bins)",
            config.server_bin.display()
        );
    }
    anyhow::ensure!(
        config.players >= 1 && config.players as usize >= config.connections,
        "--players must be at least --connections (each connection plays players of its own)"
    );
    std::fs::create_dir_all(&config.out_dir)?;
    let out_dir = std::fs::canonicalize(&config.out_dir)?;
    let config = ChaosConfig { out_dir, ..config };
    let plan = faults_plan(&config)?;
    let pg_dir = config.out_dir.join("pg");
    stop_leftover_cluster(&pg_dir).await;
    let _ = std::fs::remove_dir_all(&pg_dir);
    let _ = std::fs::remove_file(config.out_dir.join("pg.password"));
    let _ = std::fs::remove_file(config.out_dir.join("server.log"));
    let db = Database::start(pg_dir.clone()).await?;
    let proxy = Proxy::start(std::net::SocketAddr::from((
        [127, 0, 0, 1],
        db.cluster()?.port(),
    )))
    .await?;
    let mut harness = Harness {
        server: Server::new(server_spec(&config, &db, &proxy)?),
        db,
        proxy,
        hold: config.hold,
        unplanned_exits: 0,
    };
    // Ctrl-C stops the run here, so that the server and the cluster are stopped too (the
    // cluster runs in a process group of its own: the terminal's signal does not reach it).
    let outcome = tokio::select! {
        outcome = chaos_on(&config, &plan, &mut harness) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let _ = harness.server.kill().await;
    let _ = harness.db.stop().await;
    if outcome.as_ref().is_ok_and(|o| o.failures() == 0) {
        let _ = std::fs::remove_dir_all(&pg_dir);
    }
    outcome
}

/// Stops a cluster an earlier run left running in `dir` (killed before it could stop it).
async fn stop_leftover_cluster(dir: &std::path::Path) {
    if !dir.join("postmaster.pid").exists() {
        return;
    }
    let dir = dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        croupier::db::embedded::Cluster::start(&dir, croupier::db::embedded::Profile::Server)
            .and_then(|cluster| cluster.stop())
    })
    .await;
}

/// The server's address, data folder, log and environment: its database through the proxy.
fn server_spec(config: &ChaosConfig, db: &Database, proxy: &Proxy) -> anyhow::Result<ServerSpec> {
    let cluster = db.cluster()?;
    let direct = cluster.database_url("chaos");
    let routed = direct.replace(
        &format!(":{}/", cluster.port()),
        &format!(":{}/", proxy.addr().port()),
    );
    anyhow::ensure!(
        routed != direct,
        "could not route the database URL through the proxy"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(ServerSpec {
        bin: config.server_bin.clone(),
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        data_dir: config.out_dir.join("server-data"),
        log: config.out_dir.join("server.log"),
        env: vec![
            ("DATABASE_URL".into(), routed),
            (
                "CROUPIER_DB_TIMEOUT_MS".into(),
                config.db_timeout_ms.to_string(),
            ),
            (
                "CROUPIER_BET_DEADLINE_MS".into(),
                config.bet_deadline_ms.to_string(),
            ),
        ],
    })
}

async fn chaos_on(
    config: &ChaosConfig,
    plan: &[faults::Planned],
    harness: &mut Harness,
) -> anyhow::Result<Outcome> {
    harness.db.cluster()?.ensure_database("chaos").await?;
    eprintln!(
        "creating {} funded players with open sessions …",
        config.players
    );
    let fixture = crate::seed(
        &harness.db.cluster()?.database_url("chaos"),
        config.players,
        FUNDS,
    )
    .await?;
    harness.server.start().await?;
    let sessions = Arc::new(fixture.sessions);
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(config.seconds);
    let play = PlayConfig {
        addr: harness.server.addr(),
        signer: fixture.provider.clone(),
        sessions: sessions.clone(),
        providers: config.connections,
        funds: FUNDS.parse()?,
        seed: config.seed,
        attempt_timeout: Duration::from_secs(30),
        answer_bound: config.answer_bound,
        start,
        drain: config.drain,
    };
    let providers: Vec<_> = (0..config.connections)
        .map(|n| tokio::spawn(Provider::new(play.clone(), shared.clone(), n).play()))
        .collect();
    let progress = progress(shared.clone(), start);
    let injected = run_faults(config, plan, harness, &shared, start, end).await;
    let _ = shared.stopped_at.set(Instant::now());
    shared.stop.store(true, Ordering::Relaxed);
    eprintln!("load stopped; deciding the calls under way …");
    let mut book = Book::default();
    let mut tally = Tally::default();
    for provider in providers {
        let (b, t) = provider.await?;
        book.absorb(b);
        tally.absorb(t);
    }
    progress.abort();
    let injected = injected?;
    harness.server.kill().await?;
    eprintln!("checking the books …");
    let url = harness.db.cluster()?.database_url("chaos");
    let books = check::verify(&url, &fixture.provider.id, &sessions, &book).await?;
    let counts = harness.proxy.counts();
    Ok(Outcome {
        seed: config.seed,
        seconds: config.seconds,
        players: config.players,
        connections: config.connections,
        answer_bound_ms: config.answer_bound.as_millis() as u64,
        faults: injected,
        server_starts: harness.server.starts,
        unplanned_server_exits: harness.unplanned_exits,
        proxy_connections: counts.connections.load(Ordering::Relaxed),
        proxy_resets: counts.resets.load(Ordering::Relaxed),
        proxy_bytes_dropped: counts.bytes_dropped.load(Ordering::Relaxed),
        tally,
        books,
    })
}

/// Injects the planned faults in order (one that comes due while the one before is still
/// under way waits for it), each marked as under way for the players from its start until
/// `answer_bound` after everything is back or the next fault, whichever comes first; between
/// faults, starts the server again if it died on its own. The load goes on until `end`, and
/// at least `calm_s` after the last fault is over.
async fn run_faults(
    config: &ChaosConfig,
    plan: &[faults::Planned],
    harness: &mut Harness,
    shared: &Shared,
    start: Instant,
    end: Instant,
) -> anyhow::Result<Vec<Injected>> {
    let mut injected = Vec::new();
    let mut calm_until = end;
    for (i, planned) in plan.iter().enumerate() {
        watch_server(harness, start + Duration::from_secs_f64(planned.at_s)).await?;
        let began = Instant::now();
        shared
            .fault
            .store(planned.fault.number(), Ordering::Relaxed);
        harness.inject(planned.fault).await?;
        let restored = began.elapsed();
        let at_s = began.duration_since(start).as_secs_f64();
        eprintln!(
            "  {at_s:>6.1}s {:<10} restored after {:.1} s",
            planned.fault.name(),
            restored.as_secs_f64()
        );
        injected.push(Injected {
            fault: planned.fault,
            at_s,
            restored_after_ms: restored.as_millis() as u64,
        });
        let mut marked_until = Instant::now() + config.answer_bound;
        if let Some(next) = plan.get(i + 1) {
            marked_until = marked_until.min(start + Duration::from_secs_f64(next.at_s));
        }
        calm_until = calm_until.max(Instant::now() + Duration::from_secs_f64(config.calm_s));
        watch_server(harness, marked_until).await?;
        shared.fault.store(0, Ordering::Relaxed);
    }
    watch_server(harness, calm_until).await?;
    Ok(injected)
}

/// The faults' schedule; every kind asked for must be in it.
fn faults_plan(config: &ChaosConfig) -> anyhow::Result<Vec<faults::Planned>> {
    let until_s = (config.seconds - config.calm_s).max(0.0);
    let plan = faults::plan(
        &config.faults,
        config.seed,
        config.first_fault_s,
        config.interval_s,
        until_s,
    );
    let names: Vec<String> = plan
        .iter()
        .map(|p| format!("{:.0}s {}", p.at_s, p.fault.name()))
        .collect();
    eprintln!(
        "faults planned (seed {}): {}",
        config.seed,
        names.join(", ")
    );
    for kind in &config.faults {
        anyhow::ensure!(
            plan.iter().any(|p| p.fault == *kind),
            "no room for a {} fault: lengthen --seconds or shorten --interval",
            kind.name()
        );
    }
    Ok(plan)
}

/// Waits until `until`, starting the server again if it dies on its own meanwhile.
async fn watch_server(harness: &mut Harness, until: Instant) -> anyhow::Result<()> {
    while Instant::now() < until {
        harness.keep_server_up().await?;
        let step = until
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(250));
        tokio::time::sleep(step).await;
    }
    harness.keep_server_up().await
}

/// A line every 10 s: calls decided, and providers retrying a call.
fn progress(shared: Arc<Shared>, start: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.tick().await;
        loop {
            tick.tick().await;
            eprintln!(
                "  {:>6.1}s {:>9} calls decided, {} retrying",
                start.elapsed().as_secs_f64(),
                shared.decided.load(Ordering::Relaxed),
                shared.retrying.load(Ordering::Relaxed)
            );
        }
    })
}
