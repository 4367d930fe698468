//! The side-by-side benchmark, the project's performance truth. In one run, on one durable
//! database (fsync and synchronous_commit on), with the same players and concurrency:
//!
//! - pgbench executing the ledger's own `pay_in_out` SQL function, one bet per transaction;
//! - the server over HTTP (signed PayInOut calls) with group commit off, then on.
//!
//! Each measurement is repeated `runs` times, interleaved, and reported as a median.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use croupier::db::embedded::{Cluster, Profile};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::client::Signer;
use crate::report::{self, Series};
use crate::run::{self, RunConfig};
use crate::scenario::{Distribution, Players, Scenario};

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
    pub rss_at_max_connections_mb: Vec<f64>,
    pub unexpected_answers: u64,
}

const PG_UNIFORM: &str = "pgbench, random players";
const PG_HOT: &str = "pgbench, 10 hot players";
const UNBATCHED: &str = "server unbatched, random players";
const BATCHED: &str = "server batched, random players";
const BATCHED_HOT: &str = "server batched, 10 hot players";

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

async fn bench_on(config: &BenchConfig, cluster: &Cluster) -> anyhow::Result<Results> {
    cluster.ensure_database("bench").await?;
    let url = cluster.database_url("bench");
    eprintln!("seeding {} players …", config.players);
    let fixture = crate::seed(&url, config.players, "1000000000").await?;
    let sessions = fixture.sessions.clone();
    let hot_sessions: Vec<String> = sessions
        .iter()
        .take(config.hot_players as usize)
        .cloned()
        .collect();
    let uniform = write_script(config, "uniform", &fixture.provider.id, config.players)?;
    let hot = write_script(config, "hot", &fixture.provider.id, config.hot_players)?;
    let bin = croupier::db::embedded::find_bin_dir()?;
    let players = Arc::new(Players::new(sessions, Distribution::Uniform)?);
    let hot_players = Arc::new(Players::new(hot_sessions, Distribution::Uniform)?);

    let mut results = Results::default();
    for run_no in 1..=config.runs {
        eprintln!("run {run_no} of {}", config.runs);
        // pgbench and the unbatched server back to back at each concurrency, so that both
        // meet the same database (size, vacuum, checkpoints) within seconds of each other.
        let server = Server::start(config, &url, false).await?;
        for &c in &config.concurrency {
            let p = pgbench(config, &bin, &url, &uniform, c, run_no).await?;
            eprintln!(
                "  {PG_UNIFORM} c={c}: {:.0}/s p99 {} µs",
                p.throughput, p.p99_us
            );
            push(&mut results, PG_UNIFORM, c, p);
            let s = load(config, &server, &fixture.provider, &players, c, None).await?;
            results.unexpected_answers += s.unexpected;
            eprintln!(
                "  {UNBATCHED} c={c}: {:.0}/s p99 {} µs",
                s.throughput_rps, s.latency.p99_us
            );
            push(&mut results, UNBATCHED, c, point(&s));
            let p = pgbench(config, &bin, &url, &hot, c, run_no).await?;
            eprintln!(
                "  {PG_HOT} c={c}: {:.0}/s p99 {} µs",
                p.throughput, p.p99_us
            );
            push(&mut results, PG_HOT, c, p);
        }
        server.stop().await?;

        let server = Server::start(config, &url, true).await?;
        let mut peak = (0.0f64, 0usize);
        let max_c = config
            .batched_concurrency
            .iter()
            .copied()
            .max()
            .unwrap_or(0);
        for &c in &config.batched_concurrency {
            let sampler = (c == max_c).then(|| server.sample_rss());
            let s = load(config, &server, &fixture.provider, &players, c, None).await?;
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
            push(&mut results, BATCHED, c, point(&s));
            let s = load(config, &server, &fixture.provider, &hot_players, c, None).await?;
            results.unexpected_answers += s.unexpected;
            eprintln!(
                "  {BATCHED_HOT} c={c}: {:.0}/s p99 {} µs",
                s.throughput_rps, s.latency.p99_us
            );
            push(&mut results, BATCHED_HOT, c, point(&s));
        }
        let half = peak.0 / 2.0;
        let s = load(
            config,
            &server,
            &fixture.provider,
            &players,
            peak.1,
            Some(half),
        )
        .await?;
        results.unexpected_answers += s.unexpected;
        eprintln!(
            "  open loop at {half:.0}/s (half the batched peak): p99 {} µs",
            s.latency.p99_us
        );
        results.open_loop_half_peak.push(point(&s));
        server.stop().await?;
    }

    let books = crate::books::verify(&url, &fixture.provider.id, &[]).await?;
    if !books.reconcile_ok {
        bail!("the books do not reconcile after the benchmark: {books:?}");
    }
    Ok(results)
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
    signer: &Signer,
    players: &Arc<Players>,
    connections: usize,
    rate: Option<f64>,
) -> anyhow::Result<run::Summary> {
    run::run(RunConfig {
        addr: server.addr,
        signer: signer.clone(),
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

/// The pgbench script: the same call the server makes for a PayInOut, one per transaction.
fn write_script(
    config: &BenchConfig,
    name: &str,
    provider: &str,
    players: i32,
) -> anyhow::Result<PathBuf> {
    let path = config.out_dir.join(format!("{name}.sql"));
    let script = format!(
        "\\set n random(1, {players})\n\
         \\set w random(0, 2)\n\
         SELECT status FROM pay_in_out('{provider}', {session}, \
         'pg-' || gen_random_uuid()::text, NULL, 1, :w, gen_random_uuid(), gen_random_uuid());\n",
        session = crate::players::session_id_sql(&format!("'{provider}'"), ":n"),
    );
    std::fs::write(&path, script)?;
    Ok(path)
}

/// Runs pgbench for warmup + seconds and measures the window after the warmup from its
/// per-transaction log, so both sides are measured the same way.
async fn pgbench(
    config: &BenchConfig,
    bin: &Path,
    url: &str,
    script: &Path,
    clients: usize,
    run_no: usize,
) -> anyhow::Result<Point> {
    let log_dir = config
        .out_dir
        .join(format!("pgbench-log-{run_no}-{clients}"));
    let _ = std::fs::remove_dir_all(&log_dir);
    std::fs::create_dir_all(&log_dir)?;
    let threads = clients.min(2);
    let total = config.seconds + config.warmup;
    let started = std::time::SystemTime::now();
    let output = tokio::process::Command::new(bin.join("pgbench"))
        .args(["-n", "-M", "prepared", "-l"])
        .arg(format!("--log-prefix={}", log_dir.join("tx").display()))
        .arg(format!("-c{clients}"))
        .arg(format!("-j{threads}"))
        .arg(format!("-T{total}"))
        .arg("-f")
        .arg(script)
        .arg(url)
        .current_dir(&log_dir)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running pgbench")?;
    if !output.status.success() {
        bail!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let from = started.duration_since(std::time::UNIX_EPOCH)?.as_secs_f64() + config.warmup as f64;
    let to = from + config.seconds as f64;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for entry in std::fs::read_dir(&log_dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            // client_id transaction_no time_us script_no epoch_s epoch_us
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(latency), Some(secs), Some(micros)) = (f.get(2), f.get(4), f.get(5)) else {
                continue;
            };
            let done =
                secs.parse::<f64>().unwrap_or(0.0) + micros.parse::<f64>().unwrap_or(0.0) / 1e6;
            if done >= from && done < to {
                histogram.record(latency.parse::<u64>().unwrap_or(0).max(1))?;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&log_dir);
    Ok(Point {
        throughput: histogram.len() as f64 / config.seconds as f64,
        p50_us: histogram.value_at_quantile(0.5),
        p99_us: histogram.value_at_quantile(0.99),
    })
}

/// A croupier server process.
struct Server {
    child: tokio::process::Child,
    pid: u32,
    addr: SocketAddr,
    max_rss_kb: Arc<std::sync::atomic::AtomicU64>,
}

impl Server {
    async fn start(config: &BenchConfig, url: &str, batching: bool) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = std::fs::File::create(config.out_dir.join(format!(
            "server-{}.log",
            if batching { "batched" } else { "unbatched" }
        )))?;
        let child = tokio::process::Command::new(&config.server_bin)
            .arg("serve")
            .env("DATABASE_URL", url)
            .env("CROUPIER_LISTEN", addr.to_string())
            .env("CROUPIER_WORKERS", config.workers.to_string())
            .env("CROUPIER_DB_POOL_SIZE", config.pool_size.to_string())
            .env("CROUPIER_BATCHING", if batching { "on" } else { "off" })
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting the croupier server")?;
        let pid = child.id().context("server pid")?;
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(Self {
                    child,
                    pid,
                    addr,
                    max_rss_kb: Default::default(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server did not start listening on {addr}")
    }

    /// Samples the server's resident memory every 100 ms, keeping the maximum.
    fn sample_rss(&self) -> tokio::task::JoinHandle<()> {
        let (pid, max) = (self.pid, self.max_rss_kb.clone());
        tokio::spawn(async move {
            loop {
                if let Some(kb) = rss_kb(pid) {
                    max.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    fn max_rss_mb(&self) -> f64 {
        self.max_rss_kb.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Median throughput and p99 of one series at one concurrency.
fn med(results: &Results, series: &str, c: usize) -> Option<(f64, f64, f64)> {
    let points = results.series.get(series)?.get(&c)?;
    let mut t: Vec<f64> = points.iter().map(|p| p.throughput).collect();
    let mut p50: Vec<f64> = points.iter().map(|p| p.p50_us as f64).collect();
    let mut p99: Vec<f64> = points.iter().map(|p| p.p99_us as f64).collect();
    Some((median(&mut t), median(&mut p50), median(&mut p99)))
}

/// The peak (by median throughput) of a series: (concurrency, throughput, p99).
fn peak(results: &Results, series: &str) -> Option<(usize, f64, f64)> {
    results
        .series
        .get(series)?
        .keys()
        .filter_map(|&c| med(results, series, c).map(|(t, _, p99)| (c, t, p99)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// The targets table, printed and returned as JSON.
pub fn summarize(config: &BenchConfig, results: &Results) -> anyhow::Result<serde_json::Value> {
    let mut rows = Vec::new();
    println!("\nmedians of {} runs, {} s each after {} s warmup, {} players (hot: {}), server: {} worker(s), pool {}", config.runs, config.seconds, config.warmup, config.players, config.hot_players, config.workers, config.pool_size);
    println!("\n| series | connections | calls/s | p50 µs | p99 µs |\n|---|---|---|---|---|");
    for (name, by_c) in &results.series {
        for &c in by_c.keys() {
            if let Some((t, p50, p99)) = med(results, name, c) {
                println!("| {name} | {c} | {t:.0} | {p50:.0} | {p99:.0} |");
            }
        }
    }
    let ratio_at_same_c: Vec<(usize, f64)> = config
        .concurrency
        .iter()
        .filter_map(|&c| {
            let s = med(results, UNBATCHED, c)?.0;
            let p = med(results, PG_UNIFORM, c)?.0;
            Some((c, s / p))
        })
        .collect();
    let pg_peak = peak(results, PG_UNIFORM);
    let pg_hot_peak = peak(results, PG_HOT);
    let batched_peak = peak(results, BATCHED);
    let batched_hot_peak = peak(results, BATCHED_HOT);
    let mut half: Vec<f64> = results
        .open_loop_half_peak
        .iter()
        .map(|p| p.p99_us as f64)
        .collect();
    let mut rss = results.rss_at_max_connections_mb.clone();
    println!("\n| measure | target | measured |\n|---|---|---|");
    for (c, r) in &ratio_at_same_c {
        println!("| unbatched server ÷ pgbench, same SQL, {c} connections, random players | ≥ 0.8 | {r:.2} |");
        rows.push(serde_json::json!({"measure": format!("unbatched/pgbench c={c}"), "ratio": r}));
    }
    if let (Some(b), Some(p)) = (batched_peak, pg_peak) {
        let r = b.1 / p.1;
        println!("| batched server peak ÷ pgbench single-call peak, random players | ≥ 2.0 | {r:.2} ({:.0} at {} conn ÷ {:.0} at {} conn) |", b.1, b.0, p.1, p.0);
        rows.push(serde_json::json!({"measure": "batched/pgbench peak, random", "ratio": r}));
        println!(
            "| p99 at the batched peak | ≤ 20 ms | {:.1} ms |",
            b.2 / 1000.0
        );
        rows.push(serde_json::json!({"measure": "p99 at batched peak ms", "value": b.2 / 1000.0}));
    }
    if let (Some(b), Some(p)) = (batched_hot_peak, pg_hot_peak) {
        let r = b.1 / p.1;
        println!("| batched server peak ÷ pgbench single-call peak, 10 hot players | ≥ 3.0 | {r:.2} ({:.0} ÷ {:.0}) |", b.1, p.1);
        rows.push(serde_json::json!({"measure": "batched/pgbench peak, hot", "ratio": r}));
    }
    let half_p99 = median(&mut half) / 1000.0;
    println!("| p99 at half the batched peak rate (open loop) | ≤ 5 ms | {half_p99:.2} ms |");
    rows.push(serde_json::json!({"measure": "p99 at half peak ms", "value": half_p99}));
    let rss_mb = median(&mut rss);
    let max_c = config
        .batched_concurrency
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    println!("| server resident memory at {max_c} connections | ≤ 100 MB | {rss_mb:.1} MB |");
    rows.push(serde_json::json!({"measure": "rss MB", "value": rss_mb}));
    println!(
        "| unexpected answers | 0 | {} |",
        results.unexpected_answers
    );

    let series: Vec<Series<'_>> = results
        .series
        .keys()
        .map(|name| Series {
            name,
            points: results.series[name]
                .keys()
                .filter_map(|&c| med(results, name, c))
                .map(|(t, p50, p99)| (t, p50 / 1000.0, p99 / 1000.0))
                .collect(),
        })
        .collect();
    let chart = config.out_dir.join("bench.svg");
    report::chart(
        &chart,
        "croupier PayInOut vs pgbench on the same SQL (closed loop)",
        &series,
    )?;
    println!("\nchart: {}", chart.display());
    Ok(serde_json::json!({ "targets": rows, "results": results }))
}
