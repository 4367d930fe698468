//! The server's own account of a run: its `/metrics` (private listener) read before and
//! after, and the bet path's stages in between (signature, session, combiner queue,
//! database) with the batch sizes, from the histograms' differences.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The histograms of interest: name, and the label that tells their series apart.
const STAGES: &str = "croupier_bet_stage_duration_seconds";
const BATCH: &str = "croupier_bet_batch_size";

/// One histogram's state: bucket bounds with cumulative counts, sum, count.
#[derive(Debug, Clone, Default)]
pub struct Histo {
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

/// A scrape: histograms by (family, stage label or "").
#[derive(Debug, Clone, Default)]
pub struct Scrape(pub BTreeMap<(String, String), Histo>);

/// Reads `http://host:port/path` (the private listener's `/metrics`).
pub async fn scrape(url: &str) -> anyhow::Result<Scrape> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("the metrics URL must start with http://"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr: SocketAddr = tokio::net::lookup_host(host)
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {host}"))?;
    let mut stream = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect(addr),
    )
    .await??;
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("not an HTTP answer"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        anyhow::bail!("{}", head.lines().next().unwrap_or_default());
    }
    Ok(parse(body))
}

/// The bet-path histograms of a Prometheus text exposition.
pub fn parse(text: &str) -> Scrape {
    let mut out: BTreeMap<(String, String), Histo> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let label = |key: &str| {
            labels
                .trim_end_matches('}')
                .split(',')
                .find_map(|p| p.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        for family in [STAGES, BATCH] {
            let Some(part) = name.strip_prefix(family) else {
                continue;
            };
            let key = (family.to_string(), label("stage").unwrap_or_default());
            let h = out.entry(key).or_default();
            match part {
                "_bucket" => {
                    let le =
                        label("le").map_or(f64::INFINITY, |le| le.parse().unwrap_or(f64::INFINITY));
                    h.buckets.push((le, value));
                }
                "_sum" => h.sum = value,
                "_count" => h.count = value,
                _ => {}
            }
        }
    }
    Scrape(out)
}

impl Histo {
    /// What happened between `before` and `self`.
    fn since(&self, before: Option<&Histo>) -> Histo {
        let Some(before) = before else {
            return self.clone();
        };
        let buckets = self
            .buckets
            .iter()
            .map(|(le, n)| {
                let was = before
                    .buckets
                    .iter()
                    .find(|(b, _)| b == le)
                    .map_or(0.0, |(_, n)| *n);
                (*le, n - was)
            })
            .collect();
        Histo {
            buckets,
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    /// The smallest bucket bound below which `q` of the samples fall.
    fn quantile_bound(&self, q: f64) -> f64 {
        let want = self.count * q;
        let mut buckets = self.buckets.clone();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
            .iter()
            .find(|(_, n)| *n >= want)
            .map_or(f64::INFINITY, |(le, _)| *le)
    }
}

/// The mean batch size between two scrapes (None: no batch).
pub fn mean_batch(before: &Scrape, after: &Scrape) -> Option<f64> {
    let key = (BATCH.to_string(), String::new());
    let h = after.0.get(&key)?.since(before.0.get(&key));
    (h.count > 0.0).then(|| h.sum / h.count)
}

/// The breakdown of one run, one line per stage.
pub fn breakdown(before: &Scrape, after: &Scrape) -> Vec<String> {
    let mut lines = Vec::new();
    for stage in ["signature", "session", "queue", "database"] {
        let key = (STAGES.to_string(), stage.to_string());
        let Some(now) = after.0.get(&key) else {
            continue;
        };
        let h = now.since(before.0.get(&key));
        if h.count <= 0.0 {
            continue;
        }
        lines.push(format!(
            "  {stage:<9} {:>8} samples  mean {:>9}  p50 ≤ {:>8}  p99 ≤ {:>8}",
            h.count,
            micros(h.sum / h.count),
            micros(h.quantile_bound(0.5)),
            micros(h.quantile_bound(0.99)),
        ));
    }
    let key = (BATCH.to_string(), String::new());
    if let Some(now) = after.0.get(&key) {
        let h = now.since(before.0.get(&key));
        if h.count > 0.0 {
            lines.push(format!(
                "  batches   {:>8}         mean size {:.1}  p50 ≤ {}  p99 ≤ {}",
                h.count,
                h.sum / h.count,
                h.quantile_bound(0.5),
                h.quantile_bound(0.99),
            ));
        }
    }
    lines
}

fn micros(seconds: f64) -> String {
    if seconds.is_infinite() {
        return "> 10 s".into();
    }
    let us = seconds * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breakdown_is_the_difference_of_two_scrapes() {
        let before = parse(
            "croupier_bet_stage_duration_seconds_bucket{stage=\"queue\",le=\"0.001\"} 10\n\
             croupier_bet_stage_duration_seconds_bucket{stage=\"queue\",le=\"0.01\"} 10\n\
             croupier_bet_stage_duration_seconds_bucket{stage=\"queue\",le=\"+Inf\"} 10\n\
             croupier_bet_stage_duration_seconds_sum{stage=\"queue\"} 0.005\n\
             croupier_bet_stage_duration_seconds_count{stage=\"queue\"} 10\n",
        );
        let after = parse(
            "croupier_bet_stage_duration_seconds_bucket{stage=\"queue\",le=\"0.001\"} 20\n\
             croupier_bet_stage_duration_seconds_bucket{stage=\"queue\",le=\"0.01\"} 110\n\
             croupier_bet_stage_duration_seconds_bucket{stage=\"queue\",le=\"+Inf\"} 110\n\
             croupier_bet_stage_duration_seconds_sum{stage=\"queue\"} 0.505\n\
             croupier_bet_stage_duration_seconds_count{stage=\"queue\"} 110\n\
             croupier_bet_batch_size_bucket{le=\"4\"} 3\n\
             croupier_bet_batch_size_bucket{le=\"+Inf\"} 4\n\
             croupier_bet_batch_size_sum 12\n\
             croupier_bet_batch_size_count 4\n",
        );
        let lines = breakdown(&before, &after);
        assert_eq!(lines.len(), 2, "{lines:?}");
        // 100 samples between: 10 under 1 ms, 90 under 10 ms, 0.5 s in all.
        assert!(
            lines[0].contains("queue") && lines[0].contains("100 samples"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("mean   5.00 ms"), "{}", lines[0]);
        assert!(lines[0].contains("p50 ≤ 10.00 ms"), "{}", lines[0]);
        assert!(lines[1].contains("mean size 3.0"), "{}", lines[1]);
    }
}
