//! The benchmark's report: medians with min–max over the rounds, CPU per bet, the targets
//! table, the chart, and two runs' targets compared.

use serde_json::Value;

use crate::report::{self, Series};

use super::{
    pg_batch, BenchConfig, Point, Results, Sql, BATCHED, BATCHED_HOT, PG_BATCHES, PG_BATCH_CLIENTS,
    PG_HOT, PG_UNIFORM, PG_UNIFORM_BEFORE, SEAMLESS, UNBATCHED,
};

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Median, min and max of one figure of a series' points.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(points: &[Point], figure: impl Fn(&Point) -> f64) -> Spread {
    let mut v: Vec<f64> = points.iter().map(figure).collect();
    let median = median(&mut v);
    Spread {
        median,
        min: v.first().copied().unwrap_or(0.0),
        max: v.last().copied().unwrap_or(0.0),
    }
}

fn points<'a>(results: &'a Results, series: &str, c: usize) -> Option<&'a [Point]> {
    results
        .series
        .get(series)?
        .get(&c)
        .map(Vec::as_slice)
        .filter(|p| !p.is_empty())
}

/// Median throughput, p50 and p99 of one series at one concurrency.
fn med(results: &Results, series: &str, c: usize) -> Option<(f64, f64, f64)> {
    let p = points(results, series, c)?;
    Some((
        spread(p, |x| x.throughput).median,
        spread(p, |x| x.p50_us as f64).median,
        spread(p, |x| x.p99_us as f64).median,
    ))
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
    print_half_peak_stages(results);
    write_chart(config, results)?;
    Ok(serde_json::json!({ "targets": rows, "results": results }))
}

/// Every series at every concurrency: medians (min–max) over the rounds, and where the CPU
/// went per bet.
fn print_medians(config: &BenchConfig, results: &Results) {
    println!("\nmedians (min–max) of {} rounds, {} s each after {} s warmup, each series on a fresh clone of the seeded database; {} players (hot: {}), server: {} worker(s), pool {}", config.runs, config.seconds, config.warmup, config.players, config.hot_players, config.workers, config.pool_size);
    println!("\n| series | connections | bets/s | p50 µs | p99 µs | CPU µs per bet: PostgreSQL / server / load generator | mean batch |\n|---|---|---|---|---|---|---|");
    for (name, by_c) in &results.series {
        for (&c, p) in by_c {
            if p.is_empty() {
                continue;
            }
            let t = spread(p, |x| x.throughput);
            let p50 = spread(p, |x| x.p50_us as f64);
            let p99 = spread(p, |x| x.p99_us as f64);
            let pg = spread(p, |x| x.cpu_us_per_bet.postgres).median;
            let server = spread(p, |x| x.cpu_us_per_bet.server).median;
            let load = spread(p, |x| x.cpu_us_per_bet.load_generator).median;
            let batch = if p.iter().any(|x| x.mean_batch.is_some()) {
                format!("{:.1}", spread(p, |x| x.mean_batch.unwrap_or(0.0)).median)
            } else {
                "—".into()
            };
            println!(
                "| {name} | {c} | {:.0} ({:.0}–{:.0}) | {:.0} | {:.0} ({:.0}–{:.0}) | {pg:.0} / {server:.0} / {load:.0} | {batch} |",
                t.median, t.min, t.max, p50.median, p99.median, p99.min, p99.max
            );
        }
    }
}

/// One row of the targets table: printed, and kept as JSON. Ratios (every measure but the
/// latencies and the memory, whose targets are bounds: ≤) are what two runs must agree on.
fn row(rows: &mut Vec<Value>, measure: String, target: &str, value: f64, shown: String) {
    println!("| {measure} | {target} | {shown} |");
    let ratio = !target.starts_with('≤');
    rows.push(
        serde_json::json!({"measure": measure, "target": target, "value": value, "ratio": ratio}),
    );
}

/// Each measure against its target; returns the measures as JSON rows.
fn print_targets(config: &BenchConfig, results: &Results) -> Vec<Value> {
    let mut rows = Vec::new();
    println!("\n| measure | target | measured (median) |\n|---|---|---|");
    if let (Some(b), Some(p)) = (peak(results, BATCHED), peak(results, PG_UNIFORM)) {
        let r = b.1 / p.1;
        let shown = format!(
            "{r:.2} ({:.0} at {} conn ÷ {:.0} at {} conn)",
            b.1, b.0, p.1, p.0
        );
        let m = "batched server peak ÷ pgbench single-call peak, random players";
        row(&mut rows, m.into(), "≥ 2.5", r, shown);
    }
    if let (Some(b), Some(p)) = (peak(results, BATCHED_HOT), peak(results, PG_HOT)) {
        let r = b.1 / p.1;
        let shown = format!("{r:.2} ({:.0} ÷ {:.0})", b.1, p.1);
        let m = "batched server peak ÷ pgbench single-call peak, 10 hot players";
        row(&mut rows, m.into(), "≥ 3.5", r, shown);
    }
    ab_rows(config, results, &mut rows);
    batch_ceiling_rows(results, &mut rows);
    for &c in &config.concurrency {
        let (Some(s), Some(p)) = (med(results, UNBATCHED, c), med(results, PG_UNIFORM, c)) else {
            continue;
        };
        let r = s.0 / p.0;
        let m = format!("unbatched server ÷ pgbench, same SQL, {c} connections");
        row(&mut rows, m, "≥ 0.85", r, format!("{r:.2}"));
    }
    let half = spread(&results.open_loop_half_peak, |p| p.p99_us as f64 / 1000.0);
    if !results.open_loop_half_peak.is_empty() {
        let shown = format!("{:.1} ms ({:.1}–{:.1})", half.median, half.min, half.max);
        let m = "p99 at half the batched peak rate (open loop)";
        row(&mut rows, m.into(), "≤ 10 ms", half.median, shown);
    }
    if let Some(b) = peak(results, BATCHED) {
        let p99 = b.2 / 1000.0;
        let m = "p99 at the batched peak";
        row(&mut rows, m.into(), "≤ 40 ms", p99, format!("{p99:.1} ms"));
    }
    let rss = spread_of(&results.rss_at_max_connections_mb);
    let max_c = config.max_batched_concurrency();
    let m = format!("server resident memory at {max_c} connections");
    row(&mut rows, m, "≤ 100 MB", rss, format!("{rss:.1} MB"));
    seamless_rows(results, &mut rows);
    println!(
        "| unexpected answers | 0 | {} |",
        results.unexpected_answers
    );
    rows
}

fn spread_of(values: &[f64]) -> f64 {
    median(&mut values.to_vec())
}

/// The SQL now against the SQL before, A/B in one run: pgbench's one-bet transactions at each
/// concurrency and `bet_batch` at each batch size, throughput and PostgreSQL CPU per bet.
fn ab_rows(config: &BenchConfig, results: &Results, rows: &mut Vec<Value>) {
    let mut pairs: Vec<(String, String, String, usize, &str)> = PG_BATCHES
        .iter()
        .map(|&b| {
            (
                format!("pgbench `bet_batch` ×{b}, SQL now ÷ before"),
                pg_batch(b, Sql::Current),
                pg_batch(b, Sql::Before),
                PG_BATCH_CLIENTS,
                if b == 64 { "≥ 2.5" } else { "—" },
            )
        })
        .collect();
    for &c in &config.concurrency {
        pairs.push((
            format!("pgbench `pay_in_out` one per transaction, {c} clients, SQL now ÷ before"),
            PG_UNIFORM.into(),
            PG_UNIFORM_BEFORE.into(),
            c,
            "≥ 1.5",
        ));
    }
    for (measure, now, before, c, target) in pairs {
        let (Some(a), Some(b)) = (points(results, &now, c), points(results, &before, c)) else {
            continue;
        };
        let (ta, tb) = (
            spread(a, |p| p.throughput).median,
            spread(b, |p| p.throughput).median,
        );
        let (ca, cb) = (
            spread(a, |p| p.cpu_us_per_bet.postgres).median,
            spread(b, |p| p.cpu_us_per_bet.postgres).median,
        );
        let r = ta / tb;
        let shown = format!(
            "{r:.2} ({ta:.0} ÷ {tb:.0} bets/s; PostgreSQL CPU {ca:.0} vs {cb:.0} µs per bet)"
        );
        row(rows, measure, target, r, shown);
    }
}

/// The batched server against its own batch SQL at the batch size nearest the server's mean
/// batch at its peak, and at every batch size.
fn batch_ceiling_rows(results: &Results, rows: &mut Vec<Value>) {
    let Some(b) = peak(results, BATCHED) else {
        return;
    };
    let mean_batch = points(results, BATCHED, b.0)
        .map(|p| spread(p, |x| x.mean_batch.unwrap_or(0.0)).median)
        .unwrap_or(0.0);
    let nearest = PG_BATCHES
        .iter()
        .copied()
        .min_by(|x, y| {
            (*x as f64 - mean_batch)
                .abs()
                .total_cmp(&(*y as f64 - mean_batch).abs())
        })
        .unwrap_or(64);
    for batch in PG_BATCHES {
        let Some(p) = peak(results, &pg_batch(batch, Sql::Current)) else {
            continue;
        };
        let r = b.1 / p.1;
        // The measure's name stays the same from run to run (`compare` matches by name); the
        // batch size it was taken at is in the figure shown.
        if batch == nearest {
            row(
                rows,
                "batched server peak ÷ pgbench `bet_batch` at its batch size".into(),
                "≥ 0.8",
                r,
                format!(
                    "{r:.2} (×{batch}, the server's mean batch {mean_batch:.1}: {:.0} ÷ {:.0} bets/s)",
                    b.1, p.1
                ),
            );
        } else {
            row(
                rows,
                format!("batched server peak ÷ pgbench `bet_batch` ×{batch}"),
                "—",
                r,
                format!("{r:.2} ({:.0} ÷ {:.0} bets/s)", b.1, p.1),
            );
        }
    }
}

fn seamless_rows(results: &Results, rows: &mut Vec<Value>) {
    let (Some(sl), Some(b)) = (peak(results, SEAMLESS), peak(results, BATCHED)) else {
        return;
    };
    let r = sl.1 / b.1;
    let shown = format!(
        "{r:.2} ({:.0} at {} conn ÷ {:.0} at {} conn)",
        sl.1, sl.0, b.1, b.0
    );
    let m = "seamless PayInOut peak ÷ transfer batched peak";
    row(rows, m.into(), "≥ 0.35", r, shown);
    let half = spread(&results.seamless_half_peak, |p| p.p99_us as f64 / 1000.0).median;
    let m = "seamless p99 at half the seamless peak rate (open loop)";
    row(rows, m.into(), "≤ 50 ms", half, format!("{half:.1} ms"));
    let calls = &results.casino_calls;
    let per_call: Vec<f64> = calls
        .iter()
        .map(|c| c.movements as f64 / c.calls.max(1) as f64)
        .collect();
    let p50: Vec<f64> = calls.iter().map(|c| f64::from(c.p50_ms)).collect();
    let p99: Vec<f64> = calls.iter().map(|c| f64::from(c.p99_ms)).collect();
    println!(
        "| casino round trip (p50 / p99), movements per call | — | {:.0} / {:.0} ms, {:.1} |",
        spread_of(&p50),
        spread_of(&p99),
        spread_of(&per_call)
    );
}

/// The server's own account of each half-peak series: where a slow call spent its time.
fn print_half_peak_stages(results: &Results) {
    for (i, lines) in results.half_peak_stages.iter().enumerate() {
        println!(
            "\nthe server's stages at half the batched peak, round {}:",
            i + 1
        );
        for line in lines {
            println!("{line}");
        }
    }
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

/// Two runs' targets side by side: every measure's value in each and how far apart they
/// are (relative to their mean). Returns the ratios more than `tolerance` apart (latencies
/// and memory are shown, not held to it).
pub fn compare(a: &Value, b: &Value, tolerance: f64) -> anyhow::Result<Vec<String>> {
    let rows = |v: &Value| -> anyhow::Result<Vec<(String, f64, bool)>> {
        v.get("targets")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow::anyhow!("no targets in a bench.json"))?
            .iter()
            .map(|r| {
                Ok((
                    r.get("measure")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    r.get("value")
                        .and_then(Value::as_f64)
                        .ok_or_else(|| anyhow::anyhow!("a target without a value"))?,
                    r.get("ratio").and_then(Value::as_bool).unwrap_or(true),
                ))
            })
            .collect()
    };
    let (a, b) = (rows(a)?, rows(b)?);
    let mut apart = Vec::new();
    println!("| measure | run A | run B | apart |\n|---|---|---|---|");
    for (measure, va, ratio) in &a {
        let Some((_, vb, _)) = b.iter().find(|(m, _, _)| m == measure) else {
            // Measured in one run only: the two runs cannot be said to agree on it.
            println!("| {measure} | {va:.2} | — | — |");
            if *ratio {
                apart.push(measure.clone());
            }
            continue;
        };
        let mean = (va + vb) / 2.0;
        let d = if mean == 0.0 {
            0.0
        } else {
            (va - vb).abs() / mean
        };
        println!("| {measure} | {va:.2} | {vb:.2} | {:.1}% |", d * 100.0);
        if *ratio && d > tolerance {
            apart.push(measure.clone());
        }
    }
    Ok(apart)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_are_compared_measure_by_measure() {
        let a = serde_json::json!({"targets": [
            {"measure": "x", "value": 2.0}, {"measure": "y", "value": 10.0},
            {"measure": "p99", "value": 5.0, "ratio": false}]});
        let b = serde_json::json!({"targets": [
            {"measure": "x", "value": 2.1}, {"measure": "y", "value": 12.0},
            {"measure": "p99", "value": 9.0, "ratio": false}]});
        assert_eq!(compare(&a, &b, 0.10).expect("both have targets"), ["y"]);
        assert!(compare(&a, &a, 0.0).expect("both have targets").is_empty());
        let without_x = serde_json::json!({"targets": [{"measure": "y", "value": 10.0}]});
        assert_eq!(
            compare(&a, &without_x, 0.10).expect("both have targets"),
            ["x"]
        );
    }
}
