//! The side-by-side benchmark, the project's performance truth. In one run, on one durable
//! cluster (fsync and synchronous_commit on), with the same players and concurrency:
//!
//! - pgbench executing the ledger's own `pay_in_out` SQL function, one bet per transaction
//!   (random and 10 hot players), and its `bet_batch` with fixed batches of 8, 32 and 64 (the
//!   batched SQL's ceiling); both also on the ledger SQL as it was before the set-based batch
//!   (`loadtest/sql/bets_before.sql`), A/B;
//! - the server over HTTP (signed PayInOut calls) with group commit off, then on, and on at
//!   half its peak rate (open loop), with the server's own stage breakdown;
//! - the batched server in seamless mode: the same PayInOut on a seamless operator's
//!   sessions, each one two signed movements to the demo casino (in this process, no added
//!   latency).
//!
//! Every series starts from the same state: a fresh database cloned from a seeded, frozen and
//! analyzed template, then a checkpoint, so no series pays for the writes, dead rows or
//! checkpoint debt of the one before, and the order of the series does not move the figures.
//! The series of a round are interleaved (A/B pairs adjacent, their order alternating from
//! round to round), every round runs every series, and the report gives medians with min–max
//! over the rounds, each with the CPU time per bet of PostgreSQL, the server and the load
//! generator over the measured window. After every server series the books are checked.
//!
//! - `cpu`: CPU time of the three sides, from `/proc`;
//! - `pgbench`: the pgbench script and runner, measured from its per-transaction log;
//! - `server`: the croupier server process and its resident memory;
//! - `summary`: medians, the targets table, the chart, and two runs compared.

mod cpu;
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
pub use self::summary::{compare, summarize};

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
    /// Settings (`KEY=VALUE`) for every server the benchmark starts.
    pub server_env: Vec<(String, String)>,
    /// Only the batched server at the highest batched concurrency, open loop at this rate (0:
    /// closed loop), once per round for each of `variants`: the server's settings side by
    /// side.
    pub open_loop_only: Option<f64>,
    /// With `open_loop_only`: the server settings compared (each a list of `KEY=VALUE`).
    pub variants: Vec<Vec<(String, String)>>,
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
    /// CPU microseconds per bet of PostgreSQL, the server and the load generator.
    pub cpu_us_per_bet: cpu::CpuSeconds,
    /// The server's mean batch size over the window (group commit on).
    pub mean_batch: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    /// Series name → concurrency → one point per run.
    pub series: BTreeMap<String, BTreeMap<usize, Vec<Point>>>,
    pub open_loop_half_peak: Vec<Point>,
    /// The server's stage breakdown of each open-loop half-peak series.
    pub half_peak_stages: Vec<Vec<String>>,
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

/// What `seamless_exchanges` says of the calls made in the series (its database is fresh):
/// an exchange of a list is kept once per movement, with the list's start and duration.
async fn casino_calls(url: &str) -> anyhow::Result<CasinoCalls> {
    let (client, connection) =
        croupier::db::link::connect(url, croupier::db::Limits::unlimited()).await?;
    tokio::spawn(connection);
    let row = client
        .query_one(
            "WITH calls AS (
                 SELECT started_at, max(elapsed_ms) AS elapsed_ms, count(*) AS movements
                   FROM seamless_exchanges GROUP BY started_at)
             SELECT coalesce(sum(movements), 0)::bigint, count(*),
                    coalesce(percentile_disc(0.5) WITHIN GROUP (ORDER BY elapsed_ms), 0),
                    coalesce(percentile_disc(0.99) WITHIN GROUP (ORDER BY elapsed_ms), 0)
               FROM calls",
            &[],
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
const PG_UNIFORM_BEFORE: &str = "pgbench, random players, SQL before";
const PG_HOT: &str = "pgbench, 10 hot players";
const UNBATCHED: &str = "server unbatched, random players";
const BATCHED: &str = "server batched, random players";
const BATCHED_HOT: &str = "server batched, 10 hot players";
const SEAMLESS: &str = "server batched, seamless (demo casino)";
/// pgbench calling `bet_batch` itself: the series name for a batch size and SQL.
fn pg_batch(batch: usize, sql: Sql) -> String {
    match sql {
        Sql::Current => format!("pgbench bet_batch ×{batch}, random players"),
        Sql::Before => format!("pgbench bet_batch ×{batch}, random players, SQL before"),
    }
}
/// Batch sizes of the `bet_batch` series, and its pgbench clients (each runs one batch at a
/// time, as a combiner does).
const PG_BATCHES: [usize; 3] = [8, 32, 64];
const PG_BATCH_CLIENTS: usize = 2;

/// The database every series runs on, cloned before each from one of the seeded templates.
const DB: &str = "bench";
const SEEDED: &str = "bench_seeded";
const SEEDED_BEFORE: &str = "bench_seeded_before";
/// Every table and index of the ledger's schema read into shared buffers.
const PREWARM: &str = "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c \
    JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')";
/// The bet functions before the set-based batch, for the A/B series.
const SQL_BEFORE: &str = include_str!("../../sql/bets_before.sql");

/// Which ledger SQL a series runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sql {
    Current,
    Before,
}

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

/// What every round measures against: the seeded templates, their provider and players, and
/// the pgbench scripts that pick from the same players.
struct Workload {
    /// The database of the series (`bench`), and the cluster's maintenance database.
    url: String,
    admin_url: String,
    postmaster: u32,
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
        cluster.ensure_database(SEEDED).await?;
        let seeded = cluster.database_url(SEEDED);
        eprintln!("seeding {} players …", config.players);
        let fixture = crate::seed(&seeded, config.players, "1000000000").await?;
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
        let seamless = crate::seed_seamless(&seeded, config.players, &casino.url(), true).await?;
        // Frozen and analyzed once: a clone starts with every hint bit set and the planner's
        // statistics in place, so its first reads write nothing.
        execute(&seeded, "CREATE EXTENSION IF NOT EXISTS pg_prewarm").await?;
        execute(&seeded, "VACUUM (FREEZE, ANALYZE)").await?;
        let admin_url = cluster.database_url("postgres");
        clone_database(&admin_url, SEEDED, SEEDED_BEFORE).await?;
        let before = cluster.database_url(SEEDED_BEFORE);
        execute(&before, SQL_BEFORE).await?;
        // And the wallets' pages as they were: full (no room kept for updates).
        execute(
            &before,
            "ALTER TABLE wallets RESET (fillfactor, autovacuum_vacuum_scale_factor)",
        )
        .await?;
        execute(&before, "VACUUM (FULL, FREEZE, ANALYZE) wallets").await?;
        execute(&before, "VACUUM (FREEZE, ANALYZE)").await?;
        let postmaster = cluster.postmaster_pid()?;
        Ok(Self {
            seamless_provider: seamless.provider,
            seamless_players: Arc::new(Players::new(seamless.sessions, Distribution::Uniform)?),
            casino,
            url: cluster.database_url(DB),
            admin_url,
            postmaster,
            pg_bin,
            provider: fixture.provider,
            players: Arc::new(Players::new(sessions, Distribution::Uniform)?),
            hot_players: Arc::new(Players::new(hot_sessions, Distribution::Uniform)?),
            uniform_script,
            hot_script,
            batch_scripts,
        })
    }

    /// A fresh `bench` database, cloned from the template of `sql`, its tables and indexes
    /// read into PostgreSQL's buffers (as a running ledger's hot pages are: every series, the
    /// server's and pgbench's, starts with the same pages cached), and a checkpoint.
    async fn fresh(&self, sql: Sql) -> anyhow::Result<()> {
        let template = match sql {
            Sql::Current => SEEDED,
            Sql::Before => SEEDED_BEFORE,
        };
        execute(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"),
        )
        .await?;
        clone_database(&self.admin_url, template, DB).await?;
        execute(&self.url, PREWARM).await?;
        execute(&self.admin_url, "CHECKPOINT").await
    }

    fn processes(&self, server: Option<&Server>) -> cpu::Processes {
        cpu::Processes {
            postmaster: self.postmaster,
            server: server.map(|s| s.pid),
            load_generator: std::process::id(),
        }
    }
}

async fn execute(url: &str, sql: &str) -> anyhow::Result<()> {
    let (client, connection) =
        croupier::db::link::connect(url, croupier::db::Limits::unlimited()).await?;
    let connection = tokio::spawn(connection);
    client.batch_execute(sql).await?;
    drop(client);
    // Closed before returning: a template must have no session when it is cloned.
    let _ = connection.await;
    Ok(())
}

/// `CREATE DATABASE to TEMPLATE from`, copying the files (no WAL for every page), retried
/// while a session of the template is still closing.
async fn clone_database(admin_url: &str, from: &str, to: &str) -> anyhow::Result<()> {
    let sql = format!("CREATE DATABASE {to} TEMPLATE {from} STRATEGY FILE_COPY");
    let mut tries = 0;
    loop {
        match execute(admin_url, &sql).await {
            Ok(()) => return Ok(()),
            Err(e) if tries < 50 && format!("{e:#}").contains("being accessed") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn bench_on(config: &BenchConfig, cluster: &Cluster) -> anyhow::Result<Results> {
    let workload = Workload::seed(config, cluster).await?;
    let mut results = Results::default();
    if let Some(rate) = config.open_loop_only {
        return open_loop_variants(config, &workload, rate, results).await;
    }
    for run_no in 1..=config.runs {
        eprintln!("round {run_no} of {}", config.runs);
        // A and B alternate which goes first.
        let order = if run_no % 2 == 1 {
            [Sql::Current, Sql::Before]
        } else {
            [Sql::Before, Sql::Current]
        };
        unbatched_round(config, &workload, run_no, order, &mut results).await?;
        batched_round(config, &workload, order, &mut results).await?;
    }
    Ok(results)
}

/// pgbench (the SQL now and before, random players), the unbatched server and pgbench with
/// hot players, back to back at each concurrency.
async fn unbatched_round(
    config: &BenchConfig,
    workload: &Workload,
    run_no: usize,
    order: [Sql; 2],
    results: &mut Results,
) -> anyhow::Result<()> {
    for &c in &config.concurrency {
        for sql in order {
            workload.fresh(sql).await?;
            let p =
                pgbench::run(config, workload, &workload.uniform_script, (c, 1), run_no).await?;
            let name = match sql {
                Sql::Current => PG_UNIFORM,
                Sql::Before => PG_UNIFORM_BEFORE,
            };
            report(results, name, c, p);
        }
        let run = ServerRun::closed(false, Load::Transfer(&workload.players), c);
        let s = server_series(config, workload, run, results).await?;
        report(results, UNBATCHED, c, s.point);
        workload.fresh(Sql::Current).await?;
        let p = pgbench::run(config, workload, &workload.hot_script, (c, 1), run_no).await?;
        report(results, PG_HOT, c, p);
    }
    Ok(())
}

/// The batch SQL's ceiling (now and before), the batched server at each batched
/// concurrency, open loop at half its peak, then seamless.
async fn batched_round(
    config: &BenchConfig,
    workload: &Workload,
    order: [Sql; 2],
    results: &mut Results,
) -> anyhow::Result<()> {
    for (batch, script) in &workload.batch_scripts {
        for sql in order {
            workload.fresh(sql).await?;
            let p = pgbench::run(config, workload, script, (PG_BATCH_CLIENTS, *batch), 0).await?;
            report(results, &pg_batch(*batch, sql), PG_BATCH_CLIENTS, p);
        }
    }
    let max_c = config.max_batched_concurrency();
    let mut peak = (0.0f64, 0usize);
    for &c in &config.batched_concurrency {
        let run = ServerRun {
            sample_rss: c == max_c,
            ..ServerRun::closed(true, Load::Transfer(&workload.players), c)
        };
        let s = server_series(config, workload, run, results).await?;
        if let Some(rss) = s.rss_mb {
            results.rss_at_max_connections_mb.push(rss);
        }
        if s.point.throughput > peak.0 {
            peak = (s.point.throughput, c);
        }
        report(results, BATCHED, c, s.point);
        let run = ServerRun::closed(true, Load::Transfer(&workload.hot_players), c);
        let s = server_series(config, workload, run, results).await?;
        report(results, BATCHED_HOT, c, s.point);
    }
    let half = peak.0 / 2.0;
    let run = ServerRun {
        rate: Some(half),
        ..ServerRun::closed(true, Load::Transfer(&workload.players), peak.1)
    };
    let s = server_series(config, workload, run, results).await?;
    eprintln!(
        "  open loop at {half:.0}/s (half the batched peak): p50 {} µs, p99 {} µs",
        s.point.p50_us, s.point.p99_us
    );
    for line in &s.stages {
        eprintln!("  {line}");
    }
    results.open_loop_half_peak.push(s.point);
    results.half_peak_stages.push(s.stages);
    seamless_series(config, workload, results).await
}

/// The open-loop series alone at `rate`, each round once per server variant, in an order
/// that rotates from round to round. A variant's series is named by its settings.
async fn open_loop_variants(
    config: &BenchConfig,
    workload: &Workload,
    rate: f64,
    mut results: Results,
) -> anyhow::Result<Results> {
    let variants = if config.variants.is_empty() {
        vec![Vec::new()]
    } else {
        config.variants.clone()
    };
    let c = config.max_batched_concurrency();
    for run_no in 1..=config.runs {
        eprintln!("round {run_no} of {}", config.runs);
        for i in 0..variants.len() {
            let variant = &variants[(i + run_no - 1) % variants.len()];
            let variant_config = BenchConfig {
                server_env: config.server_env.iter().chain(variant).cloned().collect(),
                ..config.clone()
            };
            let run = ServerRun {
                rate: (rate > 0.0).then_some(rate),
                ..ServerRun::closed(true, Load::Transfer(&workload.players), c)
            };
            let s = server_series(&variant_config, workload, run, &mut results).await?;
            for line in &s.stages {
                eprintln!("  {line}");
            }
            let settings: Vec<String> = variant.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let name = if rate > 0.0 {
                format!("open loop at {rate:.0}/s [{}]", settings.join(" "))
            } else {
                format!("closed loop [{}]", settings.join(" "))
            };
            report(&mut results, &name, c, s.point);
        }
    }
    Ok(results)
}

/// What a server series sends: signed PayInOut calls on the transfer provider's sessions
/// (random or hot players), or on the seamless operator's (through the demo casino).
#[derive(Clone, Copy)]
enum Load<'a> {
    Transfer(&'a Arc<Players>),
    Seamless,
}

/// One server series: group commit on or off, its load, connections, an open-loop rate
/// (None: closed loop), and whether the server's resident memory is sampled.
struct ServerRun<'a> {
    batching: bool,
    load: Load<'a>,
    connections: usize,
    rate: Option<f64>,
    sample_rss: bool,
}

impl<'a> ServerRun<'a> {
    fn closed(batching: bool, load: Load<'a>, connections: usize) -> Self {
        Self {
            batching,
            load,
            connections,
            rate: None,
            sample_rss: false,
        }
    }
}

/// What one server series gives besides its point.
struct ServerSeries {
    point: Point,
    rss_mb: Option<f64>,
    /// The server's stage breakdown over the series.
    stages: Vec<String>,
}

/// One series against the server on a fresh database: started, measured (CPU, stages,
/// resident memory when asked), stopped, and its books checked. Its unexpected answers and,
/// for seamless in closed loop, its casino calls go to `results`.
async fn server_series(
    config: &BenchConfig,
    workload: &Workload,
    run: ServerRun<'_>,
    results: &mut Results,
) -> anyhow::Result<ServerSeries> {
    workload.fresh(Sql::Current).await?;
    let server = Server::start(config, &workload.url, run.batching).await?;
    let (signer, players, scenario) = match run.load {
        Load::Transfer(players) => {
            warm_sessions(&server, &workload.provider, players).await?;
            (&workload.provider, players, Scenario::Payinout)
        }
        Load::Seamless => {
            // Not warmed: a seamless Balance is a signed call to the casino, and 100,000 of
            // them would take longer than the series; its sessions are looked up as they come.
            workload.casino.forget_movements();
            workload
                .casino
                .set_jwks_url(&format!("http://{}/mis-api/api/v2/auth/jwks", server.addr));
            (
                &workload.seamless_provider,
                &workload.seamless_players,
                Scenario::Seamless,
            )
        }
    };
    let before = crate::stages::scrape(&server.metrics_url).await?;
    let sampler = run.sample_rss.then(|| server.sample_rss());
    let cpu = cpu::window(
        workload.processes(Some(&server)),
        config.warmup,
        config.seconds,
    );
    let s = run::run(RunConfig {
        addr: server.addr,
        signer: signer.clone(),
        players: players.clone(),
        scenario,
        connections: run.connections,
        duration: Duration::from_secs(config.seconds),
        warmup: Duration::from_secs(config.warmup),
        rate: run.rate,
        progress: false,
    })
    .await?;
    let cpu = cpu.await?;
    let rss_mb = sampler.map(|sampler| {
        sampler.abort();
        server.max_rss_mb()
    });
    let after = crate::stages::scrape(&server.metrics_url).await?;
    server.stop().await?;
    results.unexpected_answers += s.unexpected;
    let books = match run.load {
        Load::Transfer(_) => crate::books::verify(&workload.url, &signer.id, &s.moved_bets).await?,
        Load::Seamless => {
            crate::books::verify_seamless(&workload.url, &signer.id, &s.moved_bets).await?
        }
    };
    if !books.ok() {
        bail!("the books do not balance after a series: {books:?}");
    }
    if matches!(run.load, Load::Seamless) && run.rate.is_none() {
        let calls = casino_calls(&workload.url).await?;
        eprintln!(
            "  casino: {} movements in {} calls, round trip p50 {} ms, p99 {} ms",
            calls.movements, calls.calls, calls.p50_ms, calls.p99_ms
        );
        results.casino_calls.push(calls);
    }
    Ok(ServerSeries {
        point: summary_point(&s, cpu, crate::stages::mean_batch(&before, &after)),
        rss_mb,
        stages: crate::stages::breakdown(&before, &after),
    })
}

/// One Balance call per player before a transfer-mode series: a server started on a fresh
/// database has no session cached, and a series of a few seconds over many players would
/// otherwise measure mostly first calls. (pgbench names its sessions without a lookup.)
async fn warm_sessions(
    server: &Server,
    provider: &Signer,
    players: &Players,
) -> anyhow::Result<()> {
    const CONNECTIONS: usize = 32;
    let sessions = players.sessions();
    let chunk = sessions.len().div_ceil(CONNECTIONS).max(1);
    let tasks: Vec<_> = sessions
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let (addr, provider, part) = (server.addr, provider.clone(), part.to_vec());
            tokio::spawn(async move {
                let mut connection = crate::client::Connection::new(addr, i as u64);
                for session in part {
                    let path = format!("/v1/sessions/{session}/balance");
                    let answer = connection.call(&provider, &path, None).await?;
                    anyhow::ensure!(answer.code == 1, "balance of {session}: {answer:?}");
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Seamless PayInOut at each batched concurrency, then paced at half its peak (the casino in
/// this process counts as load generator).
async fn seamless_series(
    config: &BenchConfig,
    workload: &Workload,
    results: &mut Results,
) -> anyhow::Result<()> {
    let mut peak = (0.0f64, 0usize);
    for &c in &config.batched_concurrency {
        let run = ServerRun::closed(true, Load::Seamless, c);
        let p = server_series(config, workload, run, results).await?.point;
        if p.throughput > peak.0 {
            peak = (p.throughput, c);
        }
        report(results, SEAMLESS, c, p);
    }
    let half = peak.0 / 2.0;
    let run = ServerRun {
        rate: Some(half),
        ..ServerRun::closed(true, Load::Seamless, peak.1)
    };
    let p = server_series(config, workload, run, results).await?.point;
    eprintln!(
        "  seamless open loop at {half:.0}/s (half its peak): p99 {} µs",
        p.p99_us
    );
    results.seamless_half_peak.push(p);
    Ok(())
}

fn summary_point(s: &run::Summary, cpu: cpu::CpuSeconds, mean_batch: Option<f64>) -> Point {
    Point {
        throughput: s.throughput_rps,
        p50_us: s.latency.p50_us,
        p99_us: s.latency.p99_us,
        cpu_us_per_bet: cpu.per_bet_us(s.throughput_rps * s.seconds),
        mean_batch,
    }
}

/// Prints a point as it is measured and keeps it.
fn report(results: &mut Results, series: &str, c: usize, p: Point) {
    let cpu = &p.cpu_us_per_bet;
    eprintln!(
        "  {series} c={c}: {:.0}/s p50 {} µs p99 {} µs; CPU µs/bet: postgres {:.0}, server {:.0}, load {:.0}{}",
        p.throughput,
        p.p50_us,
        p.p99_us,
        cpu.postgres,
        cpu.server,
        cpu.load_generator,
        p.mean_batch.map(|b| format!("; mean batch {b:.1}")).unwrap_or_default()
    );
    results
        .series
        .entry(series.to_string())
        .or_default()
        .entry(c)
        .or_default()
        .push(p);
}
