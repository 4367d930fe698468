//! The state of the integrations, for operations (`GET /v1/crypto/status` on the private
//! listener): the inabit login token, the queues, the deposit checkpoint, the jobs.

use serde_json::{json, Value};

use super::{sql, Crypto};
use crate::error::Error;

impl Crypto {
    /// The crypto gauges, read at scrape time on `pool` (not the crypto work's own, which
    /// slow provider calls may hold): events waiting, payouts in flight, reviews open, and
    /// the webhook counts.
    pub async fn collect_gauges(&self, pool: &deadpool_postgres::Pool) -> Result<(), Error> {
        use crate::telemetry::name;
        let counts = pool.get().await?.query_one(sql::QUEUE_COUNTS, &[]).await?;
        let gauges = [
            name::CRYPTO_EVENTS_WAITING,
            name::CRYPTO_PAYOUTS_IN_FLIGHT,
            name::CRYPTO_REVIEWS_OPEN,
        ];
        for (i, gauge) in gauges.into_iter().enumerate() {
            metrics::gauge!(gauge).set(counts.try_get::<_, i64>(i)? as f64);
        }
        let webhooks = &self.webhooks.counts;
        for (outcome, count) in [
            ("accepted", &webhooks.accepted),
            ("rate_limited", &webhooks.rate_limited),
            ("queue_full", &webhooks.queue_full),
            ("unknown_dropped", &webhooks.unknown_dropped),
        ] {
            metrics::counter!(name::CRYPTO_WEBHOOKS, "outcome" => outcome)
                .absolute(count.load(std::sync::atomic::Ordering::Relaxed));
        }
        Ok(())
    }

    /// The state of the integrations, for operations.
    pub async fn status(&self) -> Result<Value, Error> {
        let client = self.pool.get().await?;
        let token = client.query_opt(sql::LOGIN_TOKEN_STATUS, &[]).await?;
        let counts = client.query_one(sql::QUEUE_COUNTS, &[]).await?;
        drop(client);
        let login = match token {
            Some(row) => json!({
                "present": true,
                "refreshedAtMs": row.try_get::<_, i64>(0)?,
                "expiresAtMs": row.try_get::<_, Option<i64>>(1)?,
                "lastError": row.try_get::<_, Option<String>>(2)?,
                "lastErrorAtMs": row.try_get::<_, Option<i64>>(3)?,
            }),
            None => json!({"present": false}),
        };
        let jobs = self.jobs.lock().map(|j| j.clone()).unwrap_or_default();
        Ok(json!({
            "inabitLoginToken": login,
            "pendingEvents": counts.try_get::<_, i64>(0)?,
            "payoutsInFlight": counts.try_get::<_, i64>(1)?,
            "openReviews": counts.try_get::<_, i64>(2)?,
            "depositCheckpoint": counts.try_get::<_, Option<String>>(3)?,
            "jobs": jobs,
            "webhooks": &self.webhooks.counts,
        }))
    }
}
