//! The background jobs: the event worker (woken by each webhook, and every 5 s), deposit
//! polling, payout recovery and tracking, and the inabit login token refresh. What they last
//! did is kept for the status endpoint.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;

use super::Crypto;
use crate::error::Error;

/// How long the event worker sleeps when no webhook wakes it.
const WORKER_NAP: Duration = Duration::from_secs(5);
/// A full round of the event worker: more may be waiting.
const FULL_ROUND: usize = 100;

/// What the jobs last did, for the status endpoint.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JobStatus {
    last_poll_ms: Option<i64>,
    last_poll_error: Option<String>,
    last_payout_run_ms: Option<i64>,
    last_payout_error: Option<String>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Crypto {
    /// Starts the background jobs on the current runtime. Abort the returned tasks to stop.
    pub fn spawn_jobs(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(self.clone().event_worker())];
        // Without a Terminal key there is nothing to poll.
        let poll = self
            .config
            .poll_interval
            .filter(|_| self.config.inabit.terminal_key.is_some());
        if let Some(every) = poll {
            tasks.push(tokio::spawn(self.clone().polling(every)));
        }
        if let Some(every) = self.config.payout_interval {
            tasks.push(tokio::spawn(self.clone().payout_job(every)));
        }
        if let Some(every) = self.config.login_check_interval {
            tasks.push(tokio::spawn(self.clone().login_refresh(every)));
        }
        tasks
    }

    async fn event_worker(self: Arc<Self>) {
        if let Err(e) = self.seed_login_token().await {
            tracing::error!(error = %e, "cannot store the configured inabit login token");
        }
        loop {
            if let Err(e) = self.retry_callbacks().await {
                tracing::warn!(error = %e, "callback retries");
            }
            match self.process_events().await {
                Ok(FULL_ROUND..) => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "event worker"),
            }
            let _ = tokio::time::timeout(WORKER_NAP, self.wake.notified()).await;
        }
    }

    async fn polling(self: Arc<Self>, every: Duration) {
        loop {
            let result = self.poll_deposits().await;
            if let Ok(mut jobs) = self.jobs.lock() {
                jobs.last_poll_ms = Some(now_ms());
                jobs.last_poll_error = result.as_ref().err().map(|e| e.to_string());
            }
            if let Err(e) = result {
                tracing::warn!(error = %e, "deposit polling");
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn payout_job(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            let result = self.run_payouts().await;
            if let Ok(mut jobs) = self.jobs.lock() {
                jobs.last_payout_run_ms = Some(now_ms());
                jobs.last_payout_error = result.as_ref().err().map(|e| e.to_string());
            }
        }
    }

    async fn login_refresh(self: Arc<Self>, every: Duration) {
        loop {
            let _ = self.refresh_login_if_due().await;
            tokio::time::sleep(every).await;
        }
    }

    /// Refreshes inabit's login token when it is due. A failure is logged loudly and shown
    /// on the status endpoint.
    pub async fn refresh_login_if_due(&self) -> Result<bool, Error> {
        let due = self
            .inabit
            .login_refresh_due()
            .await
            .map_err(Error::Internal)?;
        if !due {
            return Ok(false);
        }
        match self.inabit.refresh_login_token().await {
            Ok(()) => {
                tracing::info!("inabit login token refreshed");
                Ok(true)
            }
            Err(e) => {
                tracing::error!(error = %e, "REFRESHING THE INABIT LOGIN TOKEN FAILED: payouts stop when it expires");
                self.inabit
                    .login_refresh_failed(&e.to_string())
                    .await
                    .map_err(Error::Internal)?;
                Err(e.into())
            }
        }
    }
}
