//! The seamless job: what no provider call is waiting for. Each pass
//!
//! 1. marks the credits past their retry horizon stuck;
//! 2. settles abandoned debits (a void for one never sent, a compensating 2 otherwise);
//! 3. sends the credits, returns and closes that are due (a crashed process's legs too);
//! 4. asks `payments/info` about debits still unknown after the accept window.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::casino;
use super::legs::{leg_path, LegState};
use super::Seamless;
use crate::error::Error;

/// Legs one pass sends at most, and how many at once.
const LEGS_PER_PASS: i32 = 200;
const SENDS_AT_ONCE: usize = 32;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub stuck: i32,
    pub compensated: i32,
    pub sent: usize,
    pub asked: usize,
}

impl Seamless {
    /// Runs the job every `every` until aborted.
    pub fn spawn_jobs(self: &std::sync::Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let seamless = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = seamless.run_pass().await {
                    tracing::warn!(error = %format!("{:#}", anyhow::Error::from(e)), "seamless job pass failed");
                }
            }
        })
    }

    /// One pass of the job.
    pub async fn run_pass(&self) -> Result<PassReport, Error> {
        let mut report = PassReport::default();
        {
            let client = self.pool().get().await?;
            report.stuck = client
                .query_one("SELECT seamless_mark_stuck()", &[])
                .await?
                .try_get(0)?;
            report.compensated = client
                .query_one("SELECT seamless_compensate($1)", &[&LEGS_PER_PASS])
                .await?
                .try_get(0)?;
        }
        if report.stuck > 0 {
            tracing::error!(legs = report.stuck, "seamless legs stuck: a person must resolve them (admin seamless legs --state stuck)");
        }
        if report.compensated > 0 {
            tracing::warn!(
                bets = report.compensated,
                "abandoned debits returned or voided"
            );
        }
        report.sent = self.send_due().await?;
        report.asked = self.ask_info().await?;
        Ok(report)
    }

    /// Sends the due legs, a few at a time; returns how many were sent.
    async fn send_due(&self) -> Result<usize, Error> {
        let rows = self
            .pool()
            .get()
            .await?
            .query(
                "SELECT leg_id, operator_id, transaction_type, data FROM seamless_due($1, $2)",
                &[&self.steps.owner, &LEGS_PER_PASS],
            )
            .await?;
        let mut legs = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.try_get(0)?;
            let operator: String = row.try_get(1)?;
            let kind: i16 = row.try_get(2)?;
            let data: String = row.try_get(3)?;
            legs.push((id, operator, kind, data));
        }
        let sent = legs.len();
        let results: Vec<Result<(), Error>> = futures_util::stream::iter(legs)
            .map(|(id, operator, kind, data)| async move {
                let Some(settings) = self.settings(&operator).await? else {
                    return Ok(());
                };
                let path = leg_path(kind);
                let exchange = self
                    .send(&settings, path, &data, settings.attempt_timeout)
                    .await?;
                self.record_attempt(id, exchange).await?;
                Ok(())
            })
            .buffer_unordered(SENDS_AT_ONCE)
            .collect()
            .await;
        for result in results {
            result?;
        }
        Ok(sent)
    }

    /// Asks `payments/info` about unknown debits past their accept window.
    async fn ask_info(&self) -> Result<usize, Error> {
        let rows = self
            .pool()
            .get()
            .await?
            .query(
                "SELECT bet_no, operator_id FROM seamless_info_due($1)",
                &[&LEGS_PER_PASS],
            )
            .await?;
        let mut asked = 0;
        for row in &rows {
            let bet_no: i64 = row.try_get(0)?;
            let operator: String = row.try_get(1)?;
            let Some(settings) = self.settings(&operator).await? else {
                continue;
            };
            let data = format!("{{\"BetId\":{bet_no}}}");
            let exchange = self
                .outbound
                .post(
                    &settings,
                    casino::path::INFO,
                    &data,
                    settings.attempt_timeout,
                )
                .await?;
            asked += 1;
            let listed = match exchange.reply.meaning() {
                super::Meaning::Applied => exchange
                    .reply
                    .value()
                    .and_then(|v| v["Transactions"].as_array().cloned())
                    .unwrap_or_default(),
                // The casino knows nothing of the bet: none of its movements was applied.
                super::Meaning::NotFound => Vec::new(),
                _ => continue,
            };
            let found = listed
                .iter()
                .find(|t| t["TransactionType"].as_i64() == Some(-1));
            let partner_tx = found.and_then(|t| match &t["PartnerTransactionId"] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let reported = exchange.reply.value().cloned().unwrap_or(Value::Null);
            self.pool()
                .get()
                .await?
                .execute(
                    "SELECT seamless_info_verdict($1, -1::smallint, $2, $3, $4)",
                    &[&bet_no, &found.is_some(), &partner_tx, &reported],
                )
                .await?;
        }
        Ok(asked)
    }
}

/// The states `admin seamless legs --state` lists.
pub fn listable(state: &str) -> Result<LegState, Error> {
    match LegState::parse(state) {
        Ok(s @ (LegState::Stuck | LegState::Unknown | LegState::Pending | LegState::Sent)) => Ok(s),
        _ => Err(Error::bad_value(
            "state must be stuck, unknown, pending or sent",
        )),
    }
}
