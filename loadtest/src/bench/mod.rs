//! The side-by-side benchmark, the project's performance truth. In one run, on one durable
//! database (fsync and synchronous_commit on), with the same players and concurrency:
//!
//! - pgbench executing the ledger's own `pay_in_out` SQL function, one bet per transaction,
//!   and its `bet_batch` with fixed batches of 8, 32 and 64 (the batched SQL's ceiling);
//! - the server over HTTP (signed PayInOut calls) with group commit off, then on;
//! - the batched server in seamless mode: the same PayInOut on a seamless operator's
//!   sessions, each one two signed movements to the demo casino (in this process, no added
//!   latency).
//!
//! Each measurement is repeated `runs` times, interleaved, and reported as a median. Before
//! the unbatched, the batched and the seamless series of a round the database is vacuumed,
//! analyzed and checkpointed, so that no series pays for the writes of the one before.
//!
//! - `pgbench`: the pgbench script and runner, measured from its per-transaction log;
//! - `server`: the croupier server process and its resident memory;
//! - `summary`: medians, the targets table and the chart.

mod pgbench;
mod server;
mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use croupier::db::embedded::{Cluster, Profile};
use serde::Serialize;

use crate::client::Signer;
use crate::run::{self, RunConfig};
use crate::scenario::{Distribution, Players, Scenario};

use self::server::Server;
pub use self::summary::summarize;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub out_dir: PathBuf,
    pub server_bin: PathBuf,
    pub players: i32,
    pub hot_players: i32,
    pub seconds: u64,
    pub warmup: u64,
    pub runs: usize,
    /// Concurrency levels for pgbench and the unbatched server.
    pub concurrency: Vec<usize>,
    /// Concurrency levels for the batched server.
    pub batched_concurrency: Vec<usize>,
    pub workers: usize,
    pub pool_size: usize,
}

impl BenchConfig {
    /// The highest batched concurrency: where the server's resident memory is sampled.
    fn max_batched_concurrency(&self) -> usize {
        self.batched_concurrency.iter().copied().max().unwrap_or(0)
    }
}

/// One measurement.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    pub throughput: f64,
    pub p50_us: u64,
    pub p99_us: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    /// Series name → concurrency → one point per run.
    pub series: BTreeMap<String, BTreeMap<usize, Vec<Point>>>,
    pub open_loop_half_peak: Vec<Point>,
    /// Seamless PayInOut paced at half the seamless peak.
    pub seamless_half_peak: Vec<Point>,
    /// The casino calls of each seamless series, as croupier kept them.
    pub casino_calls: Vec<CasinoCalls>,
    pub rss_at_max_connections_mb: Vec<f64>,
    pub unexpected_answers: u64,
}

/// The HTTP exchanges with the casino during a seamless series (from `seamless_exchanges`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CasinoCalls {
    /// Movements sent.
    pub movements: i64,
    /// HTTP calls that carried them (a `make-list` carries many).
    pub calls: i64,
    /// Round trip of a call, median and 99th percentile, in milliseconds.
    pub p50_ms: i32,
    pub p99_ms: i32,
}

/// What `seamless_exchanges` says of the calls made since `since`: an exchange of a list is
/// kept once per movement, with the list's start and duration.
async fn casino_calls(url: &str, since: std::time::SystemTime) -> anyhow::Result<CasinoCalls> {
    let (client, connection) =
        croupier::db::link::connect(url, croupier::db::Limits::unlimited()).await?;
    tokio::spawn(connection);
    let row = client
        .query_one(
            "WITH calls AS (
                 SELECT started_at, max(elapsed_ms) AS elapsed_ms, count(*) AS movements
                   FROM seamless_exchanges WHERE started_at >= $1 GROUP BY started_at)
             SELECT coalesce(sum(movements), 0)::bigint, count(*),
                    coalesce(percentile_disc(0.5) WITHIN GROUP (ORDER BY elapsed_ms), 0),
                    coalesce(percentile_disc(0.99) WITHIN GROUP (ORDER BY elapsed_ms), 0)
               FROM calls",
            &[&since],
        )
        .await?;
    Ok(CasinoCalls {
        movements: row.try_get(0)?,
        calls: row.try_get(1)?,
        p50_ms: row.try_get(2)?,
        p99_ms: row.try_get(3)?,
    })
}

const PG_UNIFORM: &str = "pgbench, random players";
const PG_HOT: &str = "pgbench, 10 hot players";
const UNBATCHED: &str = "server unbatched, random players";
const BATCHED: &str = "server batched, random players";
const BATCHED_HOT: &str = "server batched, 10 hot players";
const SEAMLESS: &str = "server batched, seamless (demo casino)";
/// pgbench calling `bet_batch` itself: the series name for a batch size.
fn pg_batch(batch: usize) -> String {
    format!("pgbench bet_batch ×{batch}, random players")
}
/// Batch sizes of the `bet_batch` series, and its pgbench clients (each runs one batch at a
/// time, as a combiner does).
const PG_BATCHES: [usize; 3] = [8, 32, 64];
const PG_BATCH_CLIENTS: usize = 2;

pub async fn bench(config: BenchConfig) -> anyhow::Result<Results> {
    if !config.server_bin.is_file() {
        bail!(
            "server binary {} not found: build it first (cargo build --release --workspace)",
            config.server_bin.display()
        );
    }
    std::fs::create_dir_all(&config.out_dir)?;
    // Absolute: pgbench runs in a folder of its own.
    let config = BenchConfig {
        out_dir: std::fs::canonicalize(&config.out_dir)?,
        ..config
    };
    let pg_dir = config.out_dir.join("pg");
    let _ = std::fs::remove_dir_all(&pg_dir);
    let cluster_dir = pg_dir.clone();
    let cluster =
        tokio::task::spawn_blocking(move || Cluster::start(&cluster_dir, Profile::Server))
            .await??;
    let outcome = bench_on(&config, &cluster).await;
    let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
    let _ = std::fs::remove_dir_all(&pg_dir);
    outcome
}

/// What every round measures against: the seeded database, its provider and players, and the
/// pgbench scripts that pick from the same players.
struct Workload {
    url: String,
    pg_bin: PathBuf,
    provider: Signer,
    players: Arc<Players>,
    hot_players: Arc<Players>,
    uniform_script: PathBuf,
    hot_script: PathBuf,
    /// `bet_batch` scripts by batch size.
    batch_scripts: Vec<(usize, PathBuf)>,
    /// The seamless operator's provider and players, and their casino wallet.
    seamless_provider: Signer,
    seamless_players: Arc<Players>,
    casino: croupier::demo_casino::Casino,
}

impl Workload {
    async fn seed(config: &BenchConfig, cluster: &Cluster) -> anyhow::Result<Self> {
        cluster.ensure_database("bench").await?;
        let url = cluster.database_url("bench");
        eprintln!("seeding {} players …", config.players);
        let fixture = crate::seed(&url, config.players, "1000000000").await?;
        let sessions = fixture.sessions;
        let hot_sessions: Vec<String> = sessions
            .iter()
            .take(config.hot_players as usize)
            .cloned()
            .collect();
        let provider_id = &fixture.provider.id;
        let uniform_script = pgbench::write_script(config, "uniform", provider_id, config.players)?;
        let hot_script = pgbench::write_script(config, "hot", provider_id, config.hot_players)?;
        let batch_scripts = PG_BATCHES
            .iter()
            .map(|&b| {
                pgbench::write_batch_script(config, provider_id, config.players, b)
                    .map(|path| (b, path))
            })
            .collect::<anyhow::Result<_>>()?;
        let pg_bin = croupier::db::embedded::find_bin_dir()?;
        let casino = croupier::demo_casino::Casino::start(croupier::demo_casino::CasinoConfig {
            listen: "127.0.0.1:0".into(),
            // Pointed at each server as it starts.
            jwks_url: "http://127.0.0.1:9/mis-api/api/v2/auth/jwks".into(),
            issuer: None,
            auto_players: Some(rust_decimal::Decimal::from(1_000_000_000)),
            currency: "USD".into(),
            accept: None,
            workers: 1,
        })?;
        let seamless = crate::seed_seamless(&url, config.players, &casino.url(), true).await?;
        quiesce(&url).await?;
        Ok(Self {
            seamless_provider: seamless.provider,
            seamless_players: Arc::new(Players::new(seamless.sessions, Distribution::Uniform)?),
            casino,
            url,
            pg_bin,
            provider: fixture.provider,
            players: Arc::new(Players::new(sessions, Distribution::Uniform)?),
            hot_players: Arc::new(Players::new(hot_sessions, Distribution::Uniform)?),
            uniform_script,
            hot_script,
            batch_scripts,
        })
    }
}

async fn bench_on(config: &BenchConfig, cluster: &Cluster) -> anyhow::Result<Results> {
    let workload = Workload::seed(config, cluster).await?;
    let mut results = Results::default();
    for run_no in 1..=config.runs {
        eprintln!("run {run_no} of {}", config.runs);
        unbatched_round(config, &workload, run_no, &mut results).await?;
        batched_round(config, &workload, &mut results).await?;
    }
    let books = crate::books::verify(&workload.url, &workload.provider.id, &[]).await?;
    // (`reconcile` covers the seamless legs too.)
    if !books.reconcile_ok {
        bail!("the books do not reconcile after the benchmark: {books:?}");
    }
    Ok(results)
}

/// Vacuums, analyzes and checkpoints the database, so that a series does not pay for the
/// dead rows and dirty pages of the one before it (autovacuum and the checkpointer would
/// otherwise run in the middle of it).
async fn quiesce(url: &str) -> anyhow::Result<()> {
    let (client, connection) =
        croupier::db::link::connect(url, croupier::db::Limits::unlimited()).await?;
    tokio::spawn(connection);
    // Two statements, each in a transaction of its own (VACUUM refuses to run in one).
    client.batch_execute("VACUUM (ANALYZE)").await?;
    client.batch_execute("CHECKPOINT").await?;
    Ok(())
}

/// pgbench and the unbatched server back to back at each concurrency, so that both meet the
/// same database (size, vacuum, checkpoints) within seconds of each other.
async fn unbatched_round(
    config: &BenchConfig,
    workload: &Workload,
    run_no: usize,
    results: &mut Results,
) -> anyhow::Result<()> {
    quiesce(&workload.url).await?;
    let server = Server::start(config, &workload.url, false).await?;
    for &c in &config.concurrency {
        let p = pgbench::run(config, workload, &workload.uniform_script, (c, 1), run_no).await?;
        eprintln!(
            "  {PG_UNIFORM} c={c}: {:.0}/s p99 {} µs",
            p.throughput, p.p99_us
        );
        push(results, PG_UNIFORM, c, p);
        let s = load(config, &server, workload, &workload.players, c, None).await?;
        results.unexpected_answers += s.unexpected;
        eprintln!(
            "  {UNBATCHED} c={c}: {:.0}/s p99 {} µs",
            s.throughput_rps, s.latency.p99_us
        );
        push(results, UNBATCHED, c, point(&s));
        let p = pgbench::run(config, workload, &workload.hot_script, (c, 1), run_no).await?;
        eprintln!(
            "  {PG_HOT} c={c}: {:.0}/s p99 {} µs",
            p.throughput, p.p99_us
        );
        push(results, PG_HOT, c, p);
    }
    server.stop().await
}

/// The batched server at each batched concurrency, then open loop at half its peak rate.
async fn batched_round(
    config: &BenchConfig,
    workload: &Workload,
    results: &mut Results,
) -> anyhow::Result<()> {
    // What the batch SQL itself does at most, just before the server runs it.
    for (batch, script) in &workload.batch_scripts {
        quiesce(&workload.url).await?;
        let clients = (PG_BATCH_CLIENTS, *batch);
        let p = pgbench::run(config, workload, script, clients, 0).await?;
        let name = pg_batch(*batch);
        eprintln!("  {name}: {:.0} bets/s p99 {} µs", p.throughput, p.p99_us);
        push(results, &name, PG_BATCH_CLIENTS, p);
    }
    quiesce(&workload.url).await?;
    let server = Server::start(config, &workload.url, true).await?;
    let peak = batched_series(config, &server, workload, results).await?;
    open_loop_half_peak(config, &server, workload, peak, results).await?;
    quiesce(&workload.url).await?;
    seamless_series(config, &server, workload, results).await?;
    server.stop().await
}

/// Seamless PayInOut at each batched concurrency, then paced at half its peak.
async fn seamless_series(
    config: &BenchConfig,
    server: &Server,
    workload: &Workload,
    results: &mut Results,
) -> anyhow::Result<()> {
    workload
        .casino
        .set_jwks_url(&format!("http://{}/mis-api/api/v2/auth/jwks", server.addr));
    let since = std::time::SystemTime::now();
    let mut peak = (0.0f64, 0usize);
    for &c in &config.batched_concurrency {
        let s = seamless_load(config, server, workload, c, None).await?;
        results.unexpected_answers += s.unexpected;
        eprintln!(
            "  {SEAMLESS} c={c}: {:.0}/s p99 {} µs",
            s.throughput_rps, s.latency.p99_us
        );
        if s.throughput_rps > peak.0 {
            peak = (s.throughput_rps, c);
        }
        push(results, SEAMLESS, c, point(&s));
    }
    let half = peak.0 / 2.0;
    let s = seamless_load(config, server, workload, peak.1, Some(half)).await?;
    results.unexpected_answers += s.unexpected;
    eprintln!(
        "  seamless open loop at {half:.0}/s (half its peak): p99 {} µs",
        s.latency.p99_us
    );
    results.seamless_half_peak.push(point(&s));
    let calls = casino_calls(&workload.url, since).await?;
    eprintln!(
        "  casino: {} movements in {} calls, round trip p50 {} ms, p99 {} ms",
        calls.movements, calls.calls, calls.p50_ms, calls.p99_ms
    );
    results.casino_calls.push(calls);
    Ok(())
}

async fn seamless_load(
    config: &BenchConfig,
    server: &Server,
    workload: &Workload,
    connections: usize,
    rate: Option<f64>,
) -> anyhow::Result<run::Summary> {
    run::run(RunConfig {
        addr: server.addr,
        signer: workload.seamless_provider.clone(),
        players: workload.seamless_players.clone(),
        scenario: Scenario::Seamless,
        connections,
        duration: Duration::from_secs(config.seconds),
        warmup: Duration::from_secs(config.warmup),
        rate,
        progress: false,
    })
    .await
}

/// Returns the batched peak with random players: (calls/s, concurrency).
async fn batched_series(
    config: &BenchConfig,
    server: &Server,
    workload: &Workload,
    results: &mut Results,
) -> anyhow::Result<(f64, usize)> {
    let mut peak = (0.0f64, 0usize);
    let max_c = config.max_batched_concurrency();
    for &c in &config.batched_concurrency {
        let sampler = (c == max_c).then(|| server.sample_rss());
        let s = load(config, server, workload, &workload.players, c, None).await?;
        if let Some(sampler) = sampler {
            sampler.abort();
            results.rss_at_max_connections_mb.push(server.max_rss_mb());
        }
        results.unexpected_answers += s.unexpected;
        eprintln!(
            "  {BATCHED} c={c}: {:.0}/s p99 {} µs",
            s.throughput_rps, s.latency.p99_us
        );
        if s.throughput_rps > peak.0 {
            peak = (s.throughput_rps, c);
        }
        push(results, BATCHED, c, point(&s));
        let s = load(config, server, workload, &workload.hot_players, c, None).await?;
        results.unexpected_answers += s.unexpected;
        eprintln!(
            "  {BATCHED_HOT} c={c}: {:.0}/s p99 {} µs",
            s.throughput_rps, s.latency.p99_us
        );
        push(results, BATCHED_HOT, c, point(&s));
    }
    Ok(peak)
}

/// Latency well below saturation: the peak's connections, paced at half its rate.
async fn open_loop_half_peak(
    config: &BenchConfig,
    server: &Server,
    workload: &Workload,
    (peak_rps, peak_connections): (f64, usize),
    results: &mut Results,
) -> anyhow::Result<()> {
    let half = peak_rps / 2.0;
    let players = &workload.players;
    let s = load(
        config,
        server,
        workload,
        players,
        peak_connections,
        Some(half),
    )
    .await?;
    results.unexpected_answers += s.unexpected;
    eprintln!(
        "  open loop at {half:.0}/s (half the batched peak): p99 {} µs",
        s.latency.p99_us
    );
    results.open_loop_half_peak.push(point(&s));
    Ok(())
}

fn push(results: &mut Results, series: &str, c: usize, p: Point) {
    results
        .series
        .entry(series.to_string())
        .or_default()
        .entry(c)
        .or_default()
        .push(p);
}

fn point(s: &run::Summary) -> Point {
    Point {
        throughput: s.throughput_rps,
        p50_us: s.latency.p50_us,
        p99_us: s.latency.p99_us,
    }
}

async fn load(
    config: &BenchConfig,
    server: &Server,
    workload: &Workload,
    players: &Arc<Players>,
    connections: usize,
    rate: Option<f64>,
) -> anyhow::Result<run::Summary> {
    run::run(RunConfig {
        addr: server.addr,
        signer: workload.provider.clone(),
        players: players.clone(),
        scenario: Scenario::Payinout,
        connections,
        duration: Duration::from_secs(config.seconds),
        warmup: Duration::from_secs(config.warmup),
        rate,
        progress: false,
    })
    .await
}
