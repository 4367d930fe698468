//! The load engine: N connections in a closed loop (each sends when its previous call is
//! answered) or an open loop at a target rate (calls are scheduled on a fixed timetable and
//! latency is measured from the scheduled time, so a stalled server is not hidden by the
//! load generator waiting for it: coordinated omission corrected).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;
use tokio::time::Instant;

use crate::client::{Answer, Connection, Signer};
use crate::scenario::{Call, Op, Players, Provider, Scenario};

#[derive(Clone)]
pub struct RunConfig {
    pub addr: SocketAddr,
    pub signer: Signer,
    pub players: Arc<Players>,
    pub scenario: Scenario,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Open loop at this many calls per second; closed loop when None.
    pub rate: Option<f64>,
    pub progress: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub scenario: Scenario,
    pub connections: usize,
    pub target_rate: Option<f64>,
    pub seconds: f64,
    pub requests: u64,
    pub throughput_rps: f64,
    pub latency: Latency,
    /// Answers by `_responseCode` ("transport" for no answer).
    pub codes: BTreeMap<String, u64>,
    pub calls: BTreeMap<String, u64>,
    /// Answers other than the call expected.
    pub unexpected: u64,
    #[serde(skip)]
    pub moved_bets: Vec<String>,
}

struct VuResult {
    histogram: Histogram<u64>,
    codes: BTreeMap<String, u64>,
    calls: BTreeMap<String, u64>,
    unexpected: u64,
    moved_bets: Vec<String>,
    unexpected_examples: Vec<String>,
}

impl VuResult {
    fn new() -> Self {
        Self {
            histogram: histogram(),
            codes: BTreeMap::new(),
            calls: BTreeMap::new(),
            unexpected: 0,
            moved_bets: Vec::new(),
            unexpected_examples: Vec::new(),
        }
    }

    /// Adds another virtual provider's result to this one.
    fn absorb(&mut self, other: VuResult) -> anyhow::Result<()> {
        self.histogram.add(&other.histogram)?;
        for (k, v) in other.codes {
            *self.codes.entry(k).or_default() += v;
        }
        for (k, v) in other.calls {
            *self.calls.entry(k).or_default() += v;
        }
        self.unexpected += other.unexpected;
        self.moved_bets.extend(other.moved_bets);
        if self.unexpected_examples.len() < 5 {
            self.unexpected_examples.extend(other.unexpected_examples);
        }
        Ok(())
    }

    /// Counts one answer inside the measured window; returns whether it was unexpected.
    fn record(
        &mut self,
        call: &Call,
        answer: &anyhow::Result<Answer>,
        code: i64,
        latency: Duration,
    ) -> bool {
        let micros = latency.as_micros() as u64;
        let _ = self.histogram.record(micros.max(1));
        let key = match answer {
            Ok(a) => a.code.to_string(),
            Err(_) => "transport".to_string(),
        };
        *self.codes.entry(key).or_default() += 1;
        *self.calls.entry(op_name(call.op).to_string()).or_default() += 1;
        if call.expect.contains(&code) {
            return false;
        }
        self.unexpected += 1;
        if self.unexpected_examples.len() < 2 {
            self.unexpected_examples.push(format!(
                "{:?} {} {:?} → {:?}",
                call.op, call.path, call.body, answer
            ));
        }
        true
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits; the bounds are valid constants.
    match Histogram::new_with_bounds(1, 60_000_000, 3) {
        Ok(h) => h,
        Err(_) => unreachable!("valid histogram bounds"),
    }
}

/// Runs one load and returns its summary.
pub async fn run(config: RunConfig) -> anyhow::Result<Summary> {
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let slots = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let run_tag = format!("{:08x}", rand::random::<u32>());

    let mut tasks = Vec::with_capacity(config.connections);
    for vu in 0..config.connections {
        let config = config.clone();
        let (slots, done) = (slots.clone(), done.clone());
        let prefix = format!("lt{run_tag}-{vu}");
        tasks.push(tokio::spawn(async move {
            virtual_provider(vu, prefix, config, start, measure_from, end, slots, done).await
        }));
    }
    let progress = config
        .progress
        .then(|| print_progress(done.clone(), stop.clone()));

    let mut total = VuResult::new();
    for task in tasks {
        total.absorb(task.await?)?;
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.await;
    }
    for example in total.unexpected_examples.iter().take(5) {
        eprintln!("  unexpected: {example}");
    }
    Ok(summary(&config, total))
}

/// A progress line, rewritten every second until `stop`.
fn print_progress(done: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let now = done.load(Ordering::Relaxed);
            eprint!("\r  {:>9} calls  {:>8} calls/s   ", now, now - last);
            last = now;
        }
        eprintln!();
    })
}

fn summary(config: &RunConfig, total: VuResult) -> Summary {
    let seconds = config.duration.as_secs_f64();
    let h = &total.histogram;
    Summary {
        scenario: config.scenario,
        connections: config.connections,
        target_rate: config.rate,
        seconds,
        requests: h.len(),
        throughput_rps: h.len() as f64 / seconds,
        latency: Latency {
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        },
        codes: total.codes,
        calls: total.calls,
        unexpected: total.unexpected,
        moved_bets: total.moved_bets,
    }
}

/// When the next call is due: its slot on the open-loop timetable (after sleeping until
/// then), or now in a closed loop; None once the run is over.
async fn next_call_at(
    rate: Option<f64>,
    slots: &AtomicU64,
    start: Instant,
    end: Instant,
) -> Option<Instant> {
    match rate {
        Some(rate) => {
            let slot = slots.fetch_add(1, Ordering::Relaxed);
            let at = start + Duration::from_secs_f64(slot as f64 / rate);
            if at >= end {
                return None;
            }
            tokio::time::sleep_until(at).await;
            Some(at)
        }
        None => {
            let now = Instant::now();
            (now < end).then_some(now)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn virtual_provider(
    vu: usize,
    prefix: String,
    config: RunConfig,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    slots: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
) -> VuResult {
    let mut result = VuResult::new();
    let mut rng = SmallRng::seed_from_u64(rand::random::<u64>() ^ vu as u64);
    let mut provider = Provider::new(config.scenario, prefix);
    let mut connection = Connection::new(config.addr, vu as u64);
    tokio::time::sleep_until(start).await;
    while let Some(scheduled) = next_call_at(config.rate, &slots, start, end).await {
        let call = provider.next(&config.players, &mut rng);
        let answer = connection
            .call(&config.signer, &call.path, call.body.clone())
            .await;
        let finished = Instant::now();
        done.fetch_add(1, Ordering::Relaxed);
        let code = match &answer {
            Ok(a) => a.code,
            Err(_) => -1,
        };
        provider.observe(&call, code);
        if code == 1 && call.moves_money {
            if let Some(bet) = &call.bet_id {
                result.moved_bets.push(bet.clone());
            }
        }
        if scheduled < measure_from || finished > end {
            continue;
        }
        let latency = finished.duration_since(scheduled);
        if result.record(&call, &answer, code, latency) && answer.is_err() {
            // Give a refusing or restarting server a moment.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    result
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Balance => "balance",
        Op::PayIn => "payIn",
        Op::PayOut => "payOut",
        Op::PayInOut => "payInOut",
        Op::Refund => "refund",
        Op::Repeat => "repeat",
    }
}
