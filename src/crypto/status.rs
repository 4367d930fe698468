//! The state of the integrations, for operations (`GET /v1/crypto/status` on the private
//! listener): the inabit login token, the queues, the deposit checkpoint, the jobs.

use serde_json::{json, Value};

use super::{sql, Crypto};
use crate::error::Error;

impl Crypto {
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
