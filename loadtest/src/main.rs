//! `loadtest run`: drive a running croupier server like game providers do, then check the
//! books. `loadtest bench`: the side-by-side benchmark against pgbench. `loadtest chaos`: the
//! server under load through crashes and a broken database link, then the books.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use loadtest::bench::{self, BenchConfig};
use loadtest::books::Books;
use loadtest::chaos::{self, ChaosConfig, Fault};
use loadtest::report::{self, Series};
use loadtest::run::{self, RunConfig};
use loadtest::scenario::{Distribution, Players, Scenario};

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "Load generator for croupier's provider bet API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drives a running server (it must use DATABASE_URL too): creates its own provider,
    /// players and sessions, runs the scenario, prints and writes a summary, checks the books.
    Run(RunArgs),
    /// The side-by-side benchmark: its own durable PostgreSQL cluster, pgbench on the
    /// ledger's SQL, and the server binary over HTTP, unbatched and batched.
    Bench(BenchArgs),
    /// Two benchmark runs' targets side by side (their `bench.json`): fails when a ratio
    /// differs by more than the tolerance between them.
    BenchCompare(BenchCompareArgs),
    /// The server binary under load while it is killed (SIGKILL), its own PostgreSQL
    /// crashed (`pg_ctl stop -m immediate`) and the link between them blackholed, reset and
    /// frozen; then every acknowledged call and every balance against the players' model.
    Chaos(ChaosArgs),
    /// A casino wallet for seamless mode (the casino side of the contract): verifies every
    /// JWT against croupier's JWKS, keeps balances, can be told to misbehave (`POST
    /// /faults`); `GET /ledger` shows what it applied. Runs until Ctrl-C.
    Casino(CasinoArgs),
}

#[derive(clap::Args)]
struct CasinoArgs {
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: String,
    /// croupier's JWKS.
    #[arg(long, default_value = "http://127.0.0.1:8080/mis-api/api/v2/auth/jwks")]
    jwks: String,
    /// The `iss` every JWT must carry (default: any).
    #[arg(long)]
    issuer: Option<String>,
    /// Players not registered are made on first sight with this balance.
    #[arg(long)]
    auto_players: Option<rust_decimal::Decimal>,
    #[arg(long, default_value = "USD")]
    currency: String,
    /// croupier's base URL, for late verdicts (`payments/accept`).
    #[arg(long)]
    croupier_url: Option<String>,
    /// The operator's id and secret at croupier, for late verdicts.
    #[arg(long)]
    client_id: Option<String>,
    #[arg(long, env = "CASINO_SECRET", hide_env_values = true)]
    secret: Option<String>,
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The database the server uses (for the fixture and the books check).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    #[arg(long, value_enum, default_value = "mixed")]
    scenario: Scenario,
    /// Players (the hot scenario uses 10).
    #[arg(long, default_value_t = 100_000)]
    players: i32,
    #[arg(long, value_enum, default_value = "uniform")]
    distribution: Distribution,
    /// Connections (virtual providers).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds (after the warmup).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Open loop at these rates (calls/s, comma-separated), one run each; closed loop if unset.
    #[arg(long, value_delimiter = ',')]
    rate: Vec<f64>,
    /// Summary JSON.
    #[arg(long, default_value = "target/loadtest/summary.json")]
    out: PathBuf,
    /// Latency-versus-throughput chart (SVG).
    #[arg(long, default_value = "target/loadtest/latency.svg")]
    chart: PathBuf,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// The server's metrics (its private listener), read before and after each run for the
    /// breakdown of the bet path's stages; "" = none.
    #[arg(long, default_value = "http://127.0.0.1:8091/metrics")]
    metrics_url: String,
    /// The seamless scenario's operator: its makes combined into `payments/make-list` calls
    /// (on) or each sent alone (off).
    #[arg(long, value_enum, default_value = "on")]
    make_list: Switch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Where the cluster, logs, JSON and chart go.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// The croupier binary (default: beside this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    #[arg(long, default_value_t = 100_000)]
    players: i32,
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Rounds: every series runs once per round, interleaved.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
    concurrency: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "64,128,256")]
    batched_concurrency: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// A setting for every server started, `KEY=VALUE` (e.g. CROUPIER_BATCH_COMBINERS=2);
    /// repeatable.
    #[arg(long = "server-env", value_parser = key_value)]
    server_env: Vec<(String, String)>,
    /// Only the batched server at the highest batched concurrency, in open loop at this many
    /// calls per second (0: closed loop), once per round for each `--variant`: server
    /// settings side by side.
    #[arg(long)]
    open_loop_only: Option<f64>,
    /// With --open-loop-only: one server variant, space-separated `KEY=VALUE` settings;
    /// repeatable (an empty string is the defaults).
    #[arg(long = "variant", requires = "open_loop_only")]
    variants: Vec<String>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    Ok((k.to_string(), v.to_string()))
}

fn key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split_whitespace().map(key_value).collect()
}

#[derive(clap::Args)]
struct BenchCompareArgs {
    first: PathBuf,
    second: PathBuf,
    /// The largest difference allowed, relative to the two values' mean.
    #[arg(long, default_value_t = 0.10)]
    tolerance: f64,
}

#[derive(clap::Args)]
struct ChaosArgs {
    /// Where the cluster, the server's log and chaos.json go.
    #[arg(long, default_value = "target/chaos")]
    out_dir: PathBuf,
    /// The croupier binary (default: beside this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Seconds of load; faults come within it.
    #[arg(long, default_value_t = 90.0)]
    seconds: f64,
    #[arg(long, default_value_t = 1000)]
    players: i32,
    /// Virtual providers, one connection each, each playing players of its own.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The faults to inject, in a seeded order, each once before any twice.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kill,crash,kill-crash,blackhole,reset,freeze"
    )]
    faults: Vec<Fault>,
    /// Seed of the fault order and timing and of the calls (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds before the first fault.
    #[arg(long, default_value_t = 5.0)]
    first_fault: f64,
    /// Seconds between the starts of two faults (± a quarter).
    #[arg(long, default_value_t = 12.0)]
    interval: f64,
    /// No fault starts in the last this many seconds.
    #[arg(long, default_value_t = 8.0)]
    calm: f64,
    /// Seconds a blackhole or a freeze lasts.
    #[arg(long, default_value_t = 5.0)]
    hold: f64,
    /// The server's CROUPIER_DB_TIMEOUT_MS.
    #[arg(long, default_value_t = 2000)]
    db_timeout_ms: u64,
    /// The server's CROUPIER_BET_DEADLINE_MS.
    #[arg(long, default_value_t = 3000)]
    bet_deadline_ms: u64,
    /// A bet call answered later than this fails the run (default: the bet deadline plus
    /// 2 s for a busy machine; 0: answer times reported, not checked).
    #[arg(long)]
    answer_bound_ms: Option<u64>,
    /// Seconds the calls under way at the end may take to be decided.
    #[arg(long, default_value_t = 60.0)]
    drain: f64,
    /// The server's log filter (RUST_LOG); its log is `server.log` in the output folder.
    #[arg(long, default_value = "warn")]
    server_log: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run_command(args).await,
        Command::Bench(args) => bench_command(args).await,
        Command::BenchCompare(args) => bench_compare_command(&args),
        Command::Chaos(args) => chaos_command(args).await,
        Command::Casino(args) => casino_command(args).await,
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn casino_command(args: CasinoArgs) -> anyhow::Result<ExitCode> {
    let accept = match (args.croupier_url, args.client_id, args.secret) {
        (Some(croupier_url), Some(client_id), Some(secret)) => {
            Some(croupier::demo_casino::AcceptTarget {
                croupier_url,
                client_id,
                secret,
            })
        }
        (None, None, None) => None,
        _ => anyhow::bail!("--croupier-url, --client-id and --secret go together"),
    };
    let casino = croupier::demo_casino::Casino::start(croupier::demo_casino::CasinoConfig {
        listen: args.listen,
        jwks_url: args.jwks,
        issuer: args.issuer,
        auto_players: args.auto_players,
        currency: args.currency,
        accept,
        workers: args.workers,
    })?;
    eprintln!("casino wallet listening on {}", casino.url());
    tokio::signal::ctrl_c().await?;
    casino.stop().await;
    Ok(ExitCode::SUCCESS)
}

async fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let addr = resolve(&args.url)?;
    let players = if args.scenario == Scenario::Hot {
        10
    } else {
        args.players
    };
    // The seamless scenario's casino wallet runs here, beside the load generator.
    let casino = if args.scenario == Scenario::Seamless {
        Some(croupier::demo_casino::Casino::start(
            croupier::demo_casino::CasinoConfig {
                listen: "127.0.0.1:0".into(),
                jwks_url: format!(
                    "{}/mis-api/api/v2/auth/jwks",
                    args.url.trim_end_matches('/')
                ),
                issuer: None,
                auto_players: Some(rust_decimal::Decimal::from(1_000_000_000)),
                currency: "USD".into(),
                accept: None,
                workers: 1,
            },
        )?)
    } else {
        None
    };
    eprintln!("creating {players} funded players with open sessions …");
    let fixture = match &casino {
        Some(casino) => {
            let make_list = args.make_list == Switch::On;
            loadtest::seed_seamless(&args.database_url, players, &casino.url(), make_list).await?
        }
        None => loadtest::seed(&args.database_url, players, "1000000000").await?,
    };
    let provider_id = fixture.provider.id.clone();
    let config = RunConfig {
        addr,
        signer: fixture.provider,
        players: Arc::new(Players::new(fixture.sessions, args.distribution)?),
        scenario: args.scenario,
        connections: args.connections,
        duration: Duration::from_secs_f64(args.seconds),
        warmup: Duration::from_secs_f64(args.warmup),
        rate: None,
        progress: !args.quiet,
    };
    let (summaries, moved) = run_each_rate(&args, &config).await?;
    let books = if casino.is_some() {
        loadtest::books::verify_seamless(&args.database_url, &provider_id, &moved).await?
    } else {
        loadtest::books::verify(&args.database_url, &provider_id, &moved).await?
    };
    println!(
        "books: {} acknowledged bets, {} missing from the journal, reconcile {}",
        books.acknowledged_bets,
        books.missing_from_journal,
        if books.reconcile_ok { "ok" } else { "FAILED" }
    );
    write_outputs(&args, &summaries, &books)?;
    let unexpected: u64 = summaries.iter().map(|s| s.unexpected).sum();
    Ok(if books.ok() && unexpected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The server's address from its base URL (`http://host:port/`).
fn resolve(url: &str) -> anyhow::Result<SocketAddr> {
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    host.to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {host}"))
}

/// One run per requested rate (one closed-loop run if none), each printed as it ends; returns
/// the summaries and every bet that moved money, for the books check.
async fn run_each_rate(
    args: &RunArgs,
    config: &RunConfig,
) -> anyhow::Result<(Vec<run::Summary>, Vec<String>)> {
    let rates: Vec<Option<f64>> = if args.rate.is_empty() {
        vec![None]
    } else {
        args.rate.iter().map(|r| Some(*r)).collect()
    };
    let mut summaries = Vec::new();
    let mut moved = Vec::new();
    let metrics = Some(args.metrics_url.as_str()).filter(|u| !u.is_empty());
    for rate in rates {
        let before = match metrics {
            Some(url) => Some(loadtest::stages::scrape(url).await),
            None => None,
        };
        let mut summary = run::run(RunConfig {
            rate,
            ..config.clone()
        })
        .await?;
        report::print(&format!("{:?}", args.scenario).to_lowercase(), &summary);
        if let (Some(url), Some(before)) = (metrics, before) {
            match (before, loadtest::stages::scrape(url).await) {
                (Ok(before), Ok(after)) => {
                    println!("server stages (from {url}, warmup included):");
                    for line in loadtest::stages::breakdown(&before, &after) {
                        println!("{line}");
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    println!("server stages: {url} not read ({e:#})")
                }
            }
        }
        moved.append(&mut summary.moved_bets);
        summaries.push(summary);
    }
    Ok((summaries, moved))
}

/// The summary JSON (runs and books) and the latency-versus-throughput chart.
fn write_outputs(args: &RunArgs, summaries: &[run::Summary], books: &Books) -> anyhow::Result<()> {
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &args.out,
        serde_json::to_string_pretty(&serde_json::json!({ "runs": summaries, "books": books }))?,
    )?;
    if let Some(dir) = args.chart.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let points = summaries
        .iter()
        .map(|s| {
            (
                s.throughput_rps,
                s.latency.p50_us as f64 / 1000.0,
                s.latency.p99_us as f64 / 1000.0,
            )
        })
        .collect();
    report::chart(
        &args.chart,
        &format!("croupier {:?} scenario", args.scenario).to_lowercase(),
        &[Series {
            name: "server",
            points,
        }],
    )?;
    println!(
        "summary: {}  chart: {}",
        args.out.display(),
        args.chart.display()
    );
    Ok(())
}

/// The croupier binary beside this one.
fn server_beside() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()?
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no folder for the loadtest binary"))?
        .join("croupier"))
}

async fn chaos_command(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    let server_bin = match args.server_bin {
        Some(p) => p,
        None => server_beside()?,
    };
    let answer_bound_ms = args.answer_bound_ms.unwrap_or(args.bet_deadline_ms + 2000);
    let config = ChaosConfig {
        out_dir: args.out_dir,
        server_bin,
        seconds: args.seconds,
        players: args.players,
        connections: args.connections,
        faults: args.faults,
        seed: args.seed.unwrap_or_else(rand::random),
        first_fault_s: args.first_fault,
        interval_s: args.interval,
        calm_s: args.calm,
        hold: Duration::from_secs_f64(args.hold),
        db_timeout_ms: args.db_timeout_ms,
        bet_deadline_ms: args.bet_deadline_ms,
        answer_bound: Duration::from_millis(answer_bound_ms),
        drain: Duration::from_secs_f64(args.drain),
        server_log: args.server_log,
    };
    let out = config.out_dir.join("chaos.json");
    let outcome = chaos::chaos(config).await?;
    chaos::print(&outcome);
    std::fs::write(&out, serde_json::to_string_pretty(&outcome)?)?;
    println!("summary: {}", out.display());
    Ok(if outcome.failures() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn bench_compare_command(args: &BenchCompareArgs) -> anyhow::Result<ExitCode> {
    let read = |p: &PathBuf| -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_str(&std::fs::read_to_string(p)?)?)
    };
    let apart = bench::compare(&read(&args.first)?, &read(&args.second)?, args.tolerance)?;
    if apart.is_empty() {
        println!("every ratio agrees within {:.0}%", args.tolerance * 100.0);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "apart by more than {:.0}%: {}",
            args.tolerance * 100.0,
            apart.join("; ")
        );
        Ok(ExitCode::FAILURE)
    }
}

async fn bench_command(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let server_bin = match args.server_bin {
        Some(p) => p,
        None => server_beside()?,
    };
    let config = BenchConfig {
        out_dir: args.out_dir,
        server_bin,
        players: args.players,
        hot_players: 10,
        seconds: args.seconds,
        warmup: args.warmup,
        runs: args.runs,
        concurrency: args.concurrency,
        batched_concurrency: args.batched_concurrency,
        workers: args.workers,
        pool_size: args.pool_size,
        server_env: args.server_env,
        open_loop_only: args.open_loop_only,
        variants: args
            .variants
            .iter()
            .map(|v| key_values(v))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
    };
    let results = bench::bench(config.clone()).await?;
    let json = bench::summarize(&config, &results)?;
    let path = config.out_dir.join("bench.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
    println!("results: {}", path.display());
    Ok(if results.unexpected_answers == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
