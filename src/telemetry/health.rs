//! Readiness: whether this server can take calls now. Ready means the database answers
//! within a second, its migrations are exactly this build's (a newer build that migrated it
//! turns this one unready: its functions are no longer ours), and every combiner (group
//! commit) is running. The answer is kept for a second, so a probe (or many) costs at most
//! one database round trip a second, and never waits behind the bet path: it has a pool of
//! its own (shared with the metrics' scrape-time reads).

use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::Mutex;

/// How long a verdict is reused.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// How long the database has to answer.
const DEADLINE: Duration = Duration::from_secs(1);

pub struct Readiness {
    /// The probe pool (readiness and the scrape-time reads), apart from the bets'.
    pool: Pool,
    last: Mutex<Option<(Instant, Result<(), &'static str>)>>,
}

impl Readiness {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            last: Mutex::new(None),
        }
    }

    /// Ready, or what is wrong (for the log: the probe's answer does not say).
    pub async fn check(&self) -> Result<(), &'static str> {
        let mut last = self.last.lock().await;
        if let Some((at, verdict)) = *last {
            if at.elapsed() < FRESH_FOR {
                return verdict;
            }
        }
        let verdict = self.probe().await;
        if let (Err(why), previous) = (verdict, last.map(|(_, v)| v)) {
            if previous != Some(Err(why)) {
                tracing::warn!(reason = why, "not ready");
            }
        }
        metrics::gauge!(super::name::READY).set(if verdict.is_ok() { 1.0 } else { 0.0 });
        *last = Some((Instant::now(), verdict));
        verdict
    }

    async fn probe(&self) -> Result<(), &'static str> {
        if !crate::ledger::combiners_running() {
            return Err("a combiner stopped");
        }
        let known = crate::db::migrate::MIGRATIONS
            .last()
            .map_or(0, |m| m.version);
        let applied = async {
            let client = self.pool.get().await.ok()?;
            let row = client
                .query_one(
                    "SELECT coalesce(max(version), 0) FROM schema_migrations",
                    &[],
                )
                .await
                .ok()?;
            row.try_get::<_, i32>(0).ok()
        };
        match tokio::time::timeout(DEADLINE, applied).await {
            Ok(Some(version)) if version == known => Ok(()),
            Ok(Some(_)) => Err("the database's migrations are not this build's"),
            Ok(None) | Err(_) => Err("the database does not answer"),
        }
    }
}
