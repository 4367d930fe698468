//! The benchmark's report: medians over the runs, the targets table, and the chart.

use serde_json::Value;

use crate::report::{self, Series};

use super::{
    pg_batch, BenchConfig, Results, BATCHED, BATCHED_HOT, PG_BATCHES, PG_HOT, PG_UNIFORM, SEAMLESS,
    UNBATCHED,
};

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Median throughput, p50 and p99 of one series at one concurrency.
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
pub fn summarize(config: &BenchConfig, results: &Results) -> anyhow::Result<Value> {
    print_medians(config, results);
    let rows = print_targets(config, results);
    write_chart(config, results)?;
    Ok(serde_json::json!({ "targets": rows, "results": results }))
}

/// Every series at every concurrency, as medians of the runs.
fn print_medians(config: &BenchConfig, results: &Results) {
    println!("\nmedians of {} runs, {} s each after {} s warmup, {} players (hot: {}), server: {} worker(s), pool {}", config.runs, config.seconds, config.warmup, config.players, config.hot_players, config.workers, config.pool_size);
    println!("\n| series | connections | calls/s | p50 µs | p99 µs |\n|---|---|---|---|---|");
    for (name, by_c) in &results.series {
        for &c in by_c.keys() {
            if let Some((t, p50, p99)) = med(results, name, c) {
                println!("| {name} | {c} | {t:.0} | {p50:.0} | {p99:.0} |");
            }
        }
    }
}

/// Each measure against its target; returns the measures as JSON rows.
fn print_targets(config: &BenchConfig, results: &Results) -> Vec<Value> {
    let mut rows = Vec::new();
    println!("\n| measure | target | measured |\n|---|---|---|");
    for &c in &config.concurrency {
        let (Some(s), Some(p)) = (med(results, UNBATCHED, c), med(results, PG_UNIFORM, c)) else {
            continue;
        };
        let r = s.0 / p.0;
        println!("| unbatched server ÷ pgbench, same SQL, {c} connections, random players | ≥ 0.8 | {r:.2} |");
        rows.push(serde_json::json!({"measure": format!("unbatched/pgbench c={c}"), "ratio": r}));
    }
    rows.extend(peak_rows(results));
    let mut half: Vec<f64> = results
        .open_loop_half_peak
        .iter()
        .map(|p| p.p99_us as f64)
        .collect();
    let half_p99 = median(&mut half) / 1000.0;
    println!("| p99 at half the batched peak rate (open loop) | ≤ 5 ms | {half_p99:.2} ms |");
    rows.push(serde_json::json!({"measure": "p99 at half peak ms", "value": half_p99}));
    let rss_mb = median(&mut results.rss_at_max_connections_mb.clone());
    let max_c = config.max_batched_concurrency();
    println!("| server resident memory at {max_c} connections | ≤ 100 MB | {rss_mb:.1} MB |");
    rows.push(serde_json::json!({"measure": "rss MB", "value": rss_mb}));
    println!(
        "| unexpected answers | 0 | {} |",
        results.unexpected_answers
    );
    rows
}

/// The batched server's peaks against pgbench's, random and hot players.
fn peak_rows(results: &Results) -> Vec<Value> {
    let mut rows = Vec::new();
    if let (Some(b), Some(p)) = (peak(results, BATCHED), peak(results, PG_UNIFORM)) {
        let r = b.1 / p.1;
        println!("| batched server peak ÷ pgbench single-call peak, random players | ≥ 2.0 | {r:.2} ({:.0} at {} conn ÷ {:.0} at {} conn) |", b.1, b.0, p.1, p.0);
        rows.push(serde_json::json!({"measure": "batched/pgbench peak, random", "ratio": r}));
        println!(
            "| p99 at the batched peak | ≤ 20 ms | {:.1} ms |",
            b.2 / 1000.0
        );
        rows.push(serde_json::json!({"measure": "p99 at batched peak ms", "value": b.2 / 1000.0}));
    }
    if let (Some(sl), Some(b)) = (peak(results, SEAMLESS), peak(results, BATCHED)) {
        let r = sl.1 / b.1;
        println!("| seamless PayInOut peak ÷ transfer batched peak | ≥ 0.35 | {r:.2} ({:.0} at {} conn ÷ {:.0} at {} conn) |", sl.1, sl.0, b.1, b.0);
        rows.push(serde_json::json!({"measure": "seamless/batched peak", "ratio": r}));
        let mut half: Vec<f64> = results
            .seamless_half_peak
            .iter()
            .map(|p| p.p99_us as f64)
            .collect();
        let half_p99 = median(&mut half) / 1000.0;
        println!("| seamless p99 at half the seamless peak rate (open loop) | ≤ 50 ms | {half_p99:.2} ms |");
        rows.push(
            serde_json::json!({"measure": "seamless p99 at half its peak ms", "value": half_p99}),
        );
        let calls = &results.casino_calls;
        let mut per_call: Vec<f64> = calls
            .iter()
            .map(|c| c.movements as f64 / c.calls.max(1) as f64)
            .collect();
        let mut p50: Vec<f64> = calls.iter().map(|c| f64::from(c.p50_ms)).collect();
        let mut p99: Vec<f64> = calls.iter().map(|c| f64::from(c.p99_ms)).collect();
        let (per_call, p50, p99) = (median(&mut per_call), median(&mut p50), median(&mut p99));
        println!("| casino round trip (p50 / p99), movements per call | — | {p50:.0} / {p99:.0} ms, {per_call:.1} |");
        rows.push(serde_json::json!({"measure": "casino round trip ms", "p50": p50, "p99": p99, "movementsPerCall": per_call}));
    }
    if let Some(b) = peak(results, BATCHED) {
        for batch in PG_BATCHES {
            let Some(p) = peak(results, &pg_batch(batch)) else {
                continue;
            };
            let r = b.1 / p.1;
            println!("| batched server peak ÷ pgbench `bet_batch` ×{batch} (the batch SQL's ceiling) | ≥ 0.8 at ×64 | {r:.2} ({:.0} ÷ {:.0} bets/s) |", b.1, p.1);
            rows.push(serde_json::json!({"measure": format!("batched/pgbench bet_batch x{batch}"), "ratio": r}));
        }
    }
    if let (Some(b), Some(p)) = (peak(results, BATCHED_HOT), peak(results, PG_HOT)) {
        let r = b.1 / p.1;
        println!("| batched server peak ÷ pgbench single-call peak, 10 hot players | ≥ 3.0 | {r:.2} ({:.0} ÷ {:.0}) |", b.1, p.1);
        rows.push(serde_json::json!({"measure": "batched/pgbench peak, hot", "ratio": r}));
    }
    rows
}

/// Latency (median p50 and p99, ms) against median throughput for every series.
fn write_chart(config: &BenchConfig, results: &Results) -> anyhow::Result<()> {
    let series: Vec<Series<'_>> = results
        .series
        .iter()
        .map(|(name, by_c)| Series {
            name,
            points: by_c
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
    Ok(())
}
