//! pgbench on the ledger's own SQL: the same `pay_in_out` call the server makes, one bet per
//! transaction, and `bet_batch` with a fixed batch (the batched SQL's ceiling), measured from
//! pgbench's per-transaction log.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;

use super::{cpu, BenchConfig, Point, Workload};

/// The pgbench script: the same call the server makes for a PayInOut, one per transaction.
pub(super) fn write_script(
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
         'pg-' || gen_random_uuid()::text, NULL, 1, :w, gen_random_uuid(), gen_random_uuid(), \
         gen_random_uuid());\n",
        session = crate::players::session_id_sql(&format!("'{provider}'"), ":n"),
    );
    std::fs::write(&path, script)?;
    Ok(path)
}

/// The batched SQL ceiling: pgbench calling `bet_batch` itself with `batch` PayInOuts of
/// random players in one statement, each with its request id to claim, as the server's
/// combiner does (one transaction, one commit per batch).
pub(super) fn write_batch_script(
    config: &BenchConfig,
    provider: &str,
    players: i32,
    batch: usize,
) -> anyhow::Result<PathBuf> {
    let path = config.out_dir.join(format!("bet_batch_{batch}.sql"));
    let each = |expr: &str| format!("ARRAY(SELECT {expr} FROM generate_series(1, {batch}))");
    let session = crate::players::session_id_sql(
        &format!("'{provider}'"),
        &format!("1 + floor(random() * {players})"),
    );
    let script = format!(
        "SELECT count(*) FROM bet_batch(         array_fill('pay_in_out'::text, ARRAY[{batch}]),          array_fill('{provider}'::text, ARRAY[{batch}]),          {sessions}, {bets}, array_fill(NULL::text, ARRAY[{batch}]),          array_fill(1::numeric, ARRAY[{batch}]), {wins}, {tx}, {tx},          array_fill(false, ARRAY[{batch}]), {tx});\n",
        sessions = each(&session),
        bets = each("'pgb-' || gen_random_uuid()::text"),
        wins = each("floor(random() * 3)::numeric"),
        tx = each("gen_random_uuid()"),
    );
    std::fs::write(&path, script)?;
    Ok(path)
}

/// Runs pgbench for warmup + seconds and measures the window after the warmup from its
/// per-transaction log, so both sides are measured the same way. `bets_per_tx`: bets each
/// of the script's transactions makes (the throughput is in bets).
pub(super) async fn run(
    config: &BenchConfig,
    workload: &Workload,
    script: &Path,
    (clients, bets_per_tx): (usize, usize),
    run_no: usize,
) -> anyhow::Result<Point> {
    let log_dir = config
        .out_dir
        .join(format!("pgbench-log-{run_no}-{clients}-{bets_per_tx}"));
    let _ = std::fs::remove_dir_all(&log_dir);
    std::fs::create_dir_all(&log_dir)?;
    let threads = clients.min(2);
    let total = config.seconds + config.warmup;
    let started = std::time::SystemTime::now();
    let child = tokio::process::Command::new(workload.pg_bin.join("pgbench"))
        .args(["-n", "-M", "prepared", "-l"])
        .arg(format!("--log-prefix={}", log_dir.join("tx").display()))
        .arg(format!("-c{clients}"))
        .arg(format!("-j{threads}"))
        .arg(format!("-T{total}"))
        .arg("-f")
        .arg(script)
        .arg(&workload.url)
        .current_dir(&log_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running pgbench")?;
    let cpu = cpu::window(
        cpu::Processes {
            postmaster: workload.postmaster,
            server: None,
            load_generator: child.id().context("pgbench pid")?,
        },
        config.warmup,
        config.seconds,
    );
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let from = started.duration_since(std::time::UNIX_EPOCH)?.as_secs_f64() + config.warmup as f64;
    let to = from + config.seconds as f64;
    let histogram = latencies_between(&log_dir, from, to)?;
    let _ = std::fs::remove_dir_all(&log_dir);
    let bets = histogram.len() as f64 * bets_per_tx as f64;
    Ok(Point {
        throughput: bets / config.seconds as f64,
        p50_us: histogram.value_at_quantile(0.5),
        p99_us: histogram.value_at_quantile(0.99),
        cpu_us_per_bet: cpu.await?.per_bet_us(bets),
        mean_batch: None,
    })
}

/// The latencies of the transactions in the logs that finished in [from, to) (epoch seconds).
fn latencies_between(log_dir: &Path, from: f64, to: f64) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for entry in std::fs::read_dir(log_dir)? {
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
    Ok(histogram)
}
