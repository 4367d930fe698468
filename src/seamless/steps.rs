//! The engine's database steps: a provider call written as legs (`seamless_call`) and an
//! attempt's outcome recorded (`seamless_record`). With group commit on, concurrent steps of
//! one kind are combined (`seamless_call_batch`, `seamless_record_batch`): one transaction,
//! one round trip and one commit for all of them, each answered as it would have been alone.
//!
//! A batch that fails as a whole (a database error, a deadlock with another process's batch)
//! is run again step by step, so one bad step cannot fail the others; a lost connection
//! answers every step "unavailable".

use std::time::{Instant, SystemTime};

use deadpool_postgres::{Client, Pool};
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::casino::Exchange;
use super::legs::{by_item, step_of, LegView, Step};
use super::settings::Meaning;
use crate::error::Error;

/// Largest batch of either kind (the SQL functions refuse more, as an assertion).
pub const MAX_BATCH: usize = 256;

/// A provider call to write as legs.
pub struct CallStep {
    pub op: &'static str,
    pub provider: String,
    pub session: Uuid,
    pub bet_id: String,
    pub round: Option<String>,
    pub amount: Decimal,
    pub win: Option<Decimal>,
    pub standalone_wins: bool,
    pub send_close: bool,
    pub tx1: Uuid,
    pub tx2: Uuid,
    pub close_tx: Uuid,
    pub lease_s: f64,
}

/// An attempt's outcome to record; `next`: the call's legs, to lease the next of.
pub struct RecordStep {
    pub leg: Uuid,
    pub exchange: Exchange,
    pub confirming: bool,
    pub next: Vec<Uuid>,
    pub lease_s: f64,
}

/// An outcome as the SQL functions take it.
struct Outcome<'a> {
    outcome: &'a str,
    meaning: Option<&'a str>,
    code: Option<i64>,
    partner_tx: Option<String>,
    balance: Option<Decimal>,
    message: Option<String>,
    started: SystemTime,
    elapsed_ms: i32,
    http_status: Option<i32>,
}

impl<'a> Outcome<'a> {
    fn of(exchange: &'a Exchange) -> Self {
        let reply = &exchange.reply;
        let (outcome, meaning) = match reply.meaning() {
            Meaning::Unknown => ("unknown", None),
            Meaning::Accepted => ("accepted", None),
            other => ("final", Some(other.as_str())),
        };
        Self {
            outcome,
            meaning,
            code: reply.code(),
            partner_tx: reply.value_text("PartnerTransactionId"),
            balance: reply.value_decimal("Balance"),
            message: reply.message(),
            started: exchange.started,
            elapsed_ms: i32::try_from(exchange.elapsed.as_millis()).unwrap_or(i32::MAX),
            http_status: exchange.http_status.map(i32::from),
        }
    }
}

const CALL: &str =
    "SELECT * FROM seamless_call($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
const CALL_BATCH: &str = "SELECT * FROM seamless_call_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                          $10, $11, $12, $13, $14)";
const RECORD: &str = "SELECT * FROM seamless_record($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                      $11, $12, $13, $14, $15, $16)";
const RECORD_BATCH: &str = "SELECT * FROM seamless_record_batch($1, $2, $3, $4, $5, $6, $7, $8, \
                            $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// What the steps run on: the seamless pool, and the name this process leases legs under.
#[derive(Clone)]
pub struct Steps {
    pub pool: Pool,
    pub owner: Uuid,
}

impl Steps {
    /// One call's legs, alone.
    pub async fn call(&self, step: &CallStep) -> Result<Step, Error> {
        let client = self.pool.get().await?;
        call_one(&client, step, self.owner).await
    }

    /// One outcome, alone.
    pub async fn record(&self, step: &RecordStep) -> Result<Vec<LegView>, Error> {
        let client = self.pool.get().await?;
        record_one(&client, step, self.owner).await
    }

    /// Many calls at once (a lane's batch): one answer per call, in order.
    pub async fn calls(&self, steps: Vec<CallStep>) -> Vec<Result<Step, Error>> {
        let started = Instant::now();
        let client = match self.pool.get().await {
            Ok(client) => client,
            Err(e) => return unavailable(steps.len(), &Error::from(e)),
        };
        let answers = match steps.as_slice() {
            [one] => vec![call_one(&client, one, self.owner).await],
            _ => match call_batch(&client, &steps, self.owner).await {
                Ok(answers) => answers.into_iter().map(Ok).collect(),
                Err(e) if client.is_closed() => unavailable(steps.len(), &e),
                Err(e) => {
                    tracing::warn!(error = %e, calls = steps.len(), "seamless call batch failed; running its calls one by one");
                    let mut answers = Vec::with_capacity(steps.len());
                    for step in &steps {
                        answers.push(call_one(&client, step, self.owner).await);
                    }
                    answers
                }
            },
        };
        tracing::trace!(
            calls = steps.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "seamless calls"
        );
        answers
    }

    /// Many outcomes at once (a lane's batch): one answer per outcome, in order.
    pub async fn records(&self, steps: Vec<RecordStep>) -> Vec<Result<Vec<LegView>, Error>> {
        let client = match self.pool.get().await {
            Ok(client) => client,
            Err(e) => return unavailable(steps.len(), &Error::from(e)),
        };
        match steps.as_slice() {
            [one] => vec![record_one(&client, one, self.owner).await],
            _ => match record_batch(&client, &steps, self.owner).await {
                Ok(answers) => answers.into_iter().map(Ok).collect(),
                Err(e) if client.is_closed() => unavailable(steps.len(), &e),
                Err(e) => {
                    tracing::warn!(error = %e, outcomes = steps.len(), "seamless record batch failed; recording one by one");
                    let mut answers = Vec::with_capacity(steps.len());
                    for step in &steps {
                        answers.push(record_one(&client, step, self.owner).await);
                    }
                    answers
                }
            },
        }
    }
}

fn unavailable<T>(n: usize, e: &Error) -> Vec<Result<T, Error>> {
    (0..n)
        .map(|_| Err(Error::Unavailable(anyhow::anyhow!("{e}"))))
        .collect()
}

async fn call_one(client: &Client, s: &CallStep, owner: Uuid) -> Result<Step, Error> {
    let params: [&(dyn ToSql + Sync); 14] = [
        &s.op,
        &s.provider,
        &s.session,
        &s.bet_id,
        &s.round,
        &s.amount,
        &s.win,
        &s.standalone_wins,
        &s.send_close,
        &s.tx1,
        &s.tx2,
        &s.close_tx,
        &owner,
        &s.lease_s,
    ];
    let statement = client.prepare_cached(CALL).await?;
    let rows = client.query(&statement, &params).await?;
    step_of(&rows, 0)
}

async fn call_batch(client: &Client, steps: &[CallStep], owner: Uuid) -> Result<Vec<Step>, Error> {
    let ops: Vec<&str> = steps.iter().map(|s| s.op).collect();
    let providers: Vec<&str> = steps.iter().map(|s| s.provider.as_str()).collect();
    let sessions: Vec<Uuid> = steps.iter().map(|s| s.session).collect();
    let bet_ids: Vec<&str> = steps.iter().map(|s| s.bet_id.as_str()).collect();
    let rounds: Vec<Option<&str>> = steps.iter().map(|s| s.round.as_deref()).collect();
    let amounts: Vec<Decimal> = steps.iter().map(|s| s.amount).collect();
    let wins: Vec<Option<Decimal>> = steps.iter().map(|s| s.win).collect();
    let standalone: Vec<bool> = steps.iter().map(|s| s.standalone_wins).collect();
    let close: Vec<bool> = steps.iter().map(|s| s.send_close).collect();
    let tx1: Vec<Uuid> = steps.iter().map(|s| s.tx1).collect();
    let tx2: Vec<Uuid> = steps.iter().map(|s| s.tx2).collect();
    let close_tx: Vec<Uuid> = steps.iter().map(|s| s.close_tx).collect();
    let lease_s: Vec<f64> = steps.iter().map(|s| s.lease_s).collect();
    let params: [&(dyn ToSql + Sync); 14] = [
        &ops,
        &providers,
        &sessions,
        &bet_ids,
        &rounds,
        &amounts,
        &wins,
        &standalone,
        &close,
        &tx1,
        &tx2,
        &close_tx,
        &owner,
        &lease_s,
    ];
    let statement = client.prepare_cached(CALL_BATCH).await?;
    let rows = client.query(&statement, &params).await?;
    by_item(&rows, steps.len())?
        .into_iter()
        .map(|item| step_of(item, 1))
        .collect()
}

async fn record_one(client: &Client, s: &RecordStep, owner: Uuid) -> Result<Vec<LegView>, Error> {
    let o = Outcome::of(&s.exchange);
    let params: [&(dyn ToSql + Sync); 16] = [
        &s.leg,
        &owner,
        &o.outcome,
        &o.meaning,
        &o.code,
        &o.partner_tx,
        &o.balance,
        &o.message,
        &o.started,
        &o.elapsed_ms,
        &o.http_status,
        &s.exchange.body,
        &s.exchange.error,
        &s.confirming,
        &s.next,
        &s.lease_s,
    ];
    let statement = client.prepare_cached(RECORD).await?;
    let rows = client.query(&statement, &params).await?;
    Ok(step_of(&rows, 0)?.legs)
}

async fn record_batch(
    client: &Client,
    steps: &[RecordStep],
    owner: Uuid,
) -> Result<Vec<Vec<LegView>>, Error> {
    let outcomes: Vec<Outcome> = steps.iter().map(|s| Outcome::of(&s.exchange)).collect();
    let legs: Vec<Uuid> = steps.iter().map(|s| s.leg).collect();
    let kinds: Vec<&str> = outcomes.iter().map(|o| o.outcome).collect();
    let meanings: Vec<Option<&str>> = outcomes.iter().map(|o| o.meaning).collect();
    let codes: Vec<Option<i64>> = outcomes.iter().map(|o| o.code).collect();
    let partner_txs: Vec<Option<&str>> = outcomes.iter().map(|o| o.partner_tx.as_deref()).collect();
    let balances: Vec<Option<Decimal>> = outcomes.iter().map(|o| o.balance).collect();
    let messages: Vec<Option<&str>> = outcomes.iter().map(|o| o.message.as_deref()).collect();
    let started: Vec<SystemTime> = outcomes.iter().map(|o| o.started).collect();
    let elapsed_ms: Vec<i32> = outcomes.iter().map(|o| o.elapsed_ms).collect();
    let http_status: Vec<Option<i32>> = outcomes.iter().map(|o| o.http_status).collect();
    let bodies: Vec<Option<&str>> = steps.iter().map(|s| s.exchange.body.as_deref()).collect();
    let errors: Vec<Option<&str>> = steps.iter().map(|s| s.exchange.error.as_deref()).collect();
    let confirming: Vec<bool> = steps.iter().map(|s| s.confirming).collect();
    let mut next_items: Vec<i32> = Vec::new();
    let mut next_legs: Vec<Uuid> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        for leg in &s.next {
            next_items.push(i32::try_from(i + 1).unwrap_or(i32::MAX));
            next_legs.push(*leg);
        }
    }
    let lease_s: Vec<f64> = steps.iter().map(|s| s.lease_s).collect();
    let params: [&(dyn ToSql + Sync); 17] = [
        &legs,
        &owner,
        &kinds,
        &meanings,
        &codes,
        &partner_txs,
        &balances,
        &messages,
        &started,
        &elapsed_ms,
        &http_status,
        &bodies,
        &errors,
        &confirming,
        &next_items,
        &next_legs,
        &lease_s,
    ];
    let statement = client.prepare_cached(RECORD_BATCH).await?;
    let rows = client.query(&statement, &params).await?;
    by_item(&rows, steps.len())?
        .into_iter()
        .map(|item| Ok(step_of(item, 1)?.legs))
        .collect()
}
