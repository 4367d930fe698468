//! Limits on the unsigned inabit webhook, which anyone can call: a rate per source address
//! (each accepted call costs a durable row and later an inabit read), and a bound on the
//! events waiting to be confirmed. What goes beyond is refused before anything is stored;
//! inabit delivers again later and the polling job finds every real deposit anyway.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;

use super::sql;
use crate::error::Error;

/// Why a webhook was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Its source sent more than its share.
    RateLimited,
    /// As many events wait as the bound allows.
    QueueFull,
}

/// The webhook settings (see `CryptoConfig`).
#[derive(Debug, Clone, Copy)]
pub struct WebhookLimits {
    pub per_second: u32,
    pub burst: u32,
    pub max_pending: i64,
}

impl Default for WebhookLimits {
    fn default() -> Self {
        Self {
            per_second: 20,
            burst: 100,
            max_pending: 10_000,
        }
    }
}

/// What the webhook turned away and dropped, since start.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCounts {
    pub accepted: AtomicU64,
    pub rate_limited: AtomicU64,
    pub queue_full: AtomicU64,
    /// Events naming a transaction inabit does not know: dropped, no review entry.
    pub unknown_dropped: AtomicU64,
}

/// How long the count of waiting events is trusted before it is read again.
const PENDING_FRESH: Duration = Duration::from_secs(1);
/// Sources remembered by the rate limiter are pruned after this many calls.
const PRUNE_EVERY: u64 = 4096;

pub struct Webhooks {
    limits: WebhookLimits,
    per_source: DefaultKeyedRateLimiter<IpAddr>,
    /// (when read, events waiting then + taken since).
    pending: Mutex<Option<(Instant, i64)>>,
    pub counts: WebhookCounts,
}

impl Webhooks {
    pub fn new(limits: WebhookLimits) -> Self {
        let nonzero = |n: u32| NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limits,
            per_source: RateLimiter::keyed(
                Quota::per_second(nonzero(limits.per_second)).allow_burst(nonzero(limits.burst)),
            ),
            pending: Mutex::new(None),
            counts: WebhookCounts::default(),
        }
    }

    /// Whether a webhook from `source` may be stored now. The number of waiting events is
    /// read on `pool` at most once a second; a call refused for its rate costs no database work.
    pub async fn admit(
        &self,
        source: Option<IpAddr>,
        pool: &deadpool_postgres::Pool,
    ) -> Result<Result<(), Busy>, Error> {
        let calls = self.counts.accepted.load(Ordering::Relaxed)
            + self.counts.rate_limited.load(Ordering::Relaxed);
        if calls % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.per_source.retain_recent();
        }
        let source = source.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if self.per_source.check_key(&source).is_err() {
            self.counts.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Ok(Err(Busy::RateLimited));
        }
        let waiting = match self.cached_pending() {
            Some(n) => n,
            None => {
                let n: i64 = pool
                    .get()
                    .await?
                    .query_one(sql::PENDING_EVENTS, &[&self.limits.max_pending])
                    .await?
                    .try_get(0)?;
                self.set_pending(n);
                n
            }
        };
        if waiting >= self.limits.max_pending {
            self.counts.queue_full.fetch_add(1, Ordering::Relaxed);
            return Ok(Err(Busy::QueueFull));
        }
        self.counts.accepted.fetch_add(1, Ordering::Relaxed);
        self.bump_pending();
        Ok(Ok(()))
    }

    fn cached_pending(&self) -> Option<i64> {
        let guard = self.pending.lock().ok()?;
        guard
            .filter(|(at, _)| at.elapsed() < PENDING_FRESH)
            .map(|(_, n)| n)
    }

    fn set_pending(&self, n: i64) {
        if let Ok(mut guard) = self.pending.lock() {
            *guard = Some((Instant::now(), n));
        }
    }

    fn bump_pending(&self) {
        if let Ok(mut guard) = self.pending.lock() {
            if let Some((_, n)) = guard.as_mut() {
                *n += 1;
            }
        }
    }
}
