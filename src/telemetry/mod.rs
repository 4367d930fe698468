//! What an operator watches: Prometheus metrics (served at `GET /metrics` on the private
//! listener), one tracing span and one access-log line per request (`observe`), and the log
//! format (`logs`).
//!
//! Metrics go through the `metrics` facade to one process-wide Prometheus recorder, installed
//! by the first server built (`install`). Counters and histograms are recorded where things
//! happen (the request middleware, the bet path); gauges that describe a state (pools,
//! crypto and seamless queues) are read when Prometheus scrapes (`render`), so nothing polls
//! in between.

pub mod health;
pub mod logs;
pub mod observe;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The names, in one place: the README's scrape and alert examples use them.
pub mod name {
    /// Requests answered, by endpoint (route pattern), method, HTTP status and answer code.
    pub const HTTP_REQUESTS: &str = "croupier_http_requests_total";
    /// Time from request head to answer, by endpoint and answer code.
    pub const HTTP_DURATION: &str = "croupier_http_request_duration_seconds";
    /// The bet path's stages: `signature`, `session`, `queue` (in the combiner), `database`.
    pub const BET_STAGE: &str = "croupier_bet_stage_duration_seconds";
    /// Calls per group-commit batch.
    pub const BET_BATCH_SIZE: &str = "croupier_bet_batch_size";
    /// Bets queued in the combiners, not yet in a batch.
    pub const BET_QUEUE_DEPTH: &str = "croupier_bet_queue_depth";
    /// Bets refused because their combiner's queue was full (answered 99).
    pub const BET_QUEUE_FULL: &str = "croupier_bet_queue_full_total";
    /// Connections of each pool, by state (`in_use`, `idle`), and callers waiting for one.
    pub const POOL_CONNECTIONS: &str = "croupier_db_pool_connections";
    pub const POOL_MAX: &str = "croupier_db_pool_max_connections";
    pub const POOL_WAITING: &str = "croupier_db_pool_waiting";
    /// Crypto: events waiting for confirmation, payouts in flight, reviews waiting for a
    /// person, webhooks by outcome.
    pub const CRYPTO_EVENTS_WAITING: &str = "croupier_crypto_events_waiting";
    pub const CRYPTO_PAYOUTS_IN_FLIGHT: &str = "croupier_crypto_payouts_in_flight";
    pub const CRYPTO_REVIEWS_OPEN: &str = "croupier_crypto_reviews_open";
    pub const CRYPTO_WEBHOOKS: &str = "croupier_crypto_webhooks_total";
    /// Seamless legs not final, by state (`pending`, `sent`, `unknown`, `stuck`).
    pub const SEAMLESS_LEGS: &str = "croupier_seamless_legs";
    /// Whether the last scrape could read the database's queues (1) or not (0).
    pub const SCRAPE_DATABASE_UP: &str = "croupier_scrape_database_up";
    /// The last reconcile: 1 clean, 0 mismatches found; mismatches by kind; when; how long.
    pub const RECONCILE_OK: &str = "croupier_reconcile_ok";
    pub const RECONCILE_MISMATCHES: &str = "croupier_reconcile_mismatches";
    pub const RECONCILE_LAST_RUN: &str = "croupier_reconcile_last_run_timestamp_seconds";
    pub const RECONCILE_DURATION: &str = "croupier_reconcile_duration_seconds";
    pub const RECONCILE_RUNS: &str = "croupier_reconcile_runs_total";
    /// 1 while `/health/ready` says ready.
    pub const READY: &str = "croupier_ready";
    /// 1, labelled with the version.
    pub const BUILD_INFO: &str = "croupier_build_info";
}

/// Latency buckets, in seconds: 10 µs to 10 s.
const SECONDS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Batch sizes.
const BATCH: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1000.0,
];

/// The process's recorder, installed on first use. `None` if another recorder was installed
/// first (an embedding program's): metrics then go there and `/metrics` says so.
pub fn install() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new().set_buckets(SECONDS).and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(name::BET_BATCH_SIZE.into()), BATCH)
            });
            match built.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => {
                    describe();
                    Some(handle)
                }
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(error = %e, "the Prometheus recorder is not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// How often histograms are folded (the exporter keeps raw samples until then).
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        name::HTTP_REQUESTS,
        "Requests answered, by endpoint, method, HTTP status and answer code"
    );
    describe_histogram!(
        name::HTTP_DURATION,
        Unit::Seconds,
        "Time to answer, by endpoint and answer code"
    );
    describe_histogram!(
        name::BET_STAGE,
        Unit::Seconds,
        "The bet path's stages: signature, session, queue (combiner), database"
    );
    describe_histogram!(
        name::BET_BATCH_SIZE,
        Unit::Count,
        "Calls per group-commit batch"
    );
    describe_gauge!(
        name::BET_QUEUE_DEPTH,
        "Bets waiting in the combiners' queues"
    );
    describe_counter!(
        name::BET_QUEUE_FULL,
        "Bets refused with 99 because their combiner's queue was full"
    );
    describe_gauge!(
        name::POOL_CONNECTIONS,
        "Database connections of each pool, by state"
    );
    describe_gauge!(name::POOL_MAX, "Largest size of each pool");
    describe_gauge!(
        name::POOL_WAITING,
        "Callers waiting for a connection of each pool"
    );
    describe_gauge!(
        name::CRYPTO_EVENTS_WAITING,
        "Crypto events not yet confirmed with the provider"
    );
    describe_gauge!(
        name::CRYPTO_PAYOUTS_IN_FLIGHT,
        "Crypto payouts held or submitted, not final"
    );
    describe_gauge!(
        name::CRYPTO_REVIEWS_OPEN,
        "Crypto reviews waiting for a person"
    );
    describe_counter!(
        name::CRYPTO_WEBHOOKS,
        "inabit webhooks by outcome since start"
    );
    describe_gauge!(
        name::SEAMLESS_LEGS,
        "Seamless legs not final, by state (stuck: waiting for a person)"
    );
    describe_gauge!(
        name::SCRAPE_DATABASE_UP,
        "Whether this scrape read the queues from the database"
    );
    describe_gauge!(
        name::RECONCILE_OK,
        "1 if the last reconcile found the books balanced, 0 if not"
    );
    describe_gauge!(
        name::RECONCILE_MISMATCHES,
        "Mismatches the last reconcile found, by kind"
    );
    describe_gauge!(
        name::RECONCILE_LAST_RUN,
        Unit::Seconds,
        "When the last reconcile finished (Unix time)"
    );
    describe_gauge!(
        name::RECONCILE_DURATION,
        Unit::Seconds,
        "How long the last reconcile took"
    );
    describe_counter!(
        name::RECONCILE_RUNS,
        "Reconcile runs by result (clean, mismatches, failed)"
    );
    describe_gauge!(name::READY, "1 while /health/ready answers ready");
    describe_gauge!(name::BUILD_INFO, "Always 1, labelled with the version");
    metrics::gauge!(name::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    // Shown from the start, at zero, so that an alert on their increase has a series.
    metrics::counter!(name::BET_QUEUE_FULL).absolute(0);
}

/// Records one stage of a bet call.
pub fn bet_stage(stage: &'static str, took: Duration) {
    bet_stage_histogram(stage).record(took);
}

/// The histogram of one bet stage, to record many calls with one lookup.
pub fn bet_stage_histogram(stage: &'static str) -> metrics::Histogram {
    metrics::histogram!(name::BET_STAGE, "stage" => stage)
}

/// Records a bet stage's time when dropped: however the stage ends (an error, a deadline
/// that cancels it), its time is counted.
pub struct StageTimer {
    stage: &'static str,
    started: std::time::Instant,
}

impl StageTimer {
    pub fn start(stage: &'static str) -> Self {
        Self {
            stage,
            started: std::time::Instant::now(),
        }
    }
}

impl Drop for StageTimer {
    fn drop(&mut self) {
        bet_stage(self.stage, self.started.elapsed());
    }
}

/// Sets the gauges of a pool.
pub fn pool_gauges(pool: &'static str, status: deadpool_postgres::Status) {
    let in_use = status.size.saturating_sub(status.available);
    metrics::gauge!(name::POOL_CONNECTIONS, "pool" => pool, "state" => "in_use").set(in_use as f64);
    metrics::gauge!(name::POOL_CONNECTIONS, "pool" => pool, "state" => "idle")
        .set(status.available as f64);
    metrics::gauge!(name::POOL_MAX, "pool" => pool).set(status.max_size as f64);
    metrics::gauge!(name::POOL_WAITING, "pool" => pool).set(status.waiting as f64);
}

/// What one reconcile run found (`None`: it could not run).
pub fn reconcile_result(report: Option<&crate::ledger::reconcile::Report>, took: Duration) {
    metrics::gauge!(name::RECONCILE_DURATION).set(took.as_secs_f64());
    let Some(report) = report else {
        metrics::counter!(name::RECONCILE_RUNS, "result" => "failed").increment(1);
        return;
    };
    let kinds = [
        ("wallet", report.wallet_mismatches.len()),
        ("bet", report.bet_mismatches.len()),
        ("transfer", report.transfer_mismatches.len()),
        ("crypto", report.crypto_mismatches.len()),
        ("seamless", report.seamless_mismatches.len()),
    ];
    for (kind, n) in kinds {
        metrics::gauge!(name::RECONCILE_MISMATCHES, "kind" => kind).set(n as f64);
    }
    metrics::gauge!(name::RECONCILE_OK).set(if report.ok { 1.0 } else { 0.0 });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    metrics::gauge!(name::RECONCILE_LAST_RUN).set(now.as_secs_f64());
    let result = if report.ok { "clean" } else { "mismatches" };
    metrics::counter!(name::RECONCILE_RUNS, "result" => result).increment(1);
}
