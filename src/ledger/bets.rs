//! A bet call as data, and how it runs: alone (one statement, one transaction) or with others
//! in one transaction (`bet_batch`, see `combiner`).

use deadpool_postgres::Client;
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{status_error, BetReceipt, SessionId};
use crate::error::Error;

/// What a provider asks of a bet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BetCall {
    PayIn {
        round: Option<String>,
        stake: Decimal,
    },
    PayInOut {
        round: Option<String>,
        stake: Decimal,
        win: Decimal,
    },
    PayOut {
        round: Option<String>,
        win: Decimal,
        standalone_wins: bool,
    },
    Refund,
}

/// One bet call, with the transaction ids it will write if applied (`tx1`: the bet, win or
/// refund leg; `tx2`: PayInOut's win leg, or a refund's win reversal).
#[derive(Debug, Clone)]
pub struct BetRequest {
    pub provider_id: String,
    /// The request id the call's transaction claims (None: claimed elsewhere).
    pub request_id: Option<Uuid>,
    pub session: SessionId,
    pub bet_id: String,
    pub call: BetCall,
    pub tx1: Uuid,
    pub tx2: Uuid,
}

const PAY_IN: &str =
    "SELECT status, bet_tx, win_tx, refund_tx, balance FROM pay_in($1, $2, $3, $4, $5, $6, $7)";
const PAY_IN_OUT: &str = "SELECT status, bet_tx, win_tx, refund_tx, balance FROM pay_in_out($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const PAY_OUT: &str = "SELECT status, bet_tx, win_tx, refund_tx, balance FROM pay_out($1, $2, $3, $4, $5, $6, $7, $8)";
const REFUND: &str =
    "SELECT status, bet_tx, win_tx, refund_tx, balance FROM refund($1, $2, $3, $4, $5, $6)";
const BATCH: &str = "SELECT status, bet_tx, win_tx, refund_tx, balance
   FROM bet_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Runs one call as one statement (its own transaction).
pub async fn execute_one(client: &Client, r: &BetRequest) -> Result<BetReceipt, Error> {
    let (provider, session, bet, nonce) = (&r.provider_id, &r.session.0, &r.bet_id, &r.request_id);
    let row = match &r.call {
        BetCall::PayIn { round, stake } => {
            run(
                client,
                PAY_IN,
                &[provider, session, bet, round, stake, &r.tx1, nonce],
            )
            .await?
        }
        BetCall::PayInOut { round, stake, win } => {
            run(
                client,
                PAY_IN_OUT,
                &[
                    provider, session, bet, round, stake, win, &r.tx1, &r.tx2, nonce,
                ],
            )
            .await?
        }
        BetCall::PayOut {
            round,
            win,
            standalone_wins,
        } => {
            run(
                client,
                PAY_OUT,
                &[
                    provider,
                    session,
                    bet,
                    round,
                    win,
                    &r.tx1,
                    standalone_wins,
                    nonce,
                ],
            )
            .await?
        }
        BetCall::Refund => {
            run(
                client,
                REFUND,
                &[provider, session, bet, &r.tx1, &r.tx2, nonce],
            )
            .await?
        }
    };
    receipt(&row)
}

async fn run(
    client: &Client,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, Error> {
    let stmt = client.prepare_cached(sql).await?;
    Ok(client.query_one(&stmt, params).await?)
}

/// Runs several calls in one statement, one transaction, in the given order. Returns one
/// outcome per call (a refusal is an outcome: it does not fail its neighbours). Fails as a
/// whole only on a database error.
pub async fn execute_batch(
    client: &Client,
    requests: &[BetRequest],
) -> Result<Vec<Result<BetReceipt, Error>>, Error> {
    let n = requests.len();
    let mut ops = Vec::with_capacity(n);
    let mut providers = Vec::with_capacity(n);
    let mut sessions = Vec::with_capacity(n);
    let mut bets = Vec::with_capacity(n);
    let mut rounds: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut stakes: Vec<Option<Decimal>> = Vec::with_capacity(n);
    let mut wins: Vec<Option<Decimal>> = Vec::with_capacity(n);
    let mut tx1 = Vec::with_capacity(n);
    let mut tx2 = Vec::with_capacity(n);
    let mut standalone = Vec::with_capacity(n);
    let mut nonces: Vec<Option<Uuid>> = Vec::with_capacity(n);
    for r in requests {
        nonces.push(r.request_id);
        providers.push(r.provider_id.as_str());
        sessions.push(r.session.0);
        bets.push(r.bet_id.as_str());
        tx1.push(r.tx1);
        tx2.push(r.tx2);
        let (op, round, stake, win, alone) = match &r.call {
            BetCall::PayIn { round, stake } => ("pay_in", round, Some(*stake), None, false),
            BetCall::PayInOut { round, stake, win } => {
                ("pay_in_out", round, Some(*stake), Some(*win), false)
            }
            BetCall::PayOut {
                round,
                win,
                standalone_wins,
            } => ("pay_out", round, None, Some(*win), *standalone_wins),
            BetCall::Refund => ("refund", &None, None, None, false),
        };
        ops.push(op);
        rounds.push(round.as_deref());
        stakes.push(stake);
        wins.push(win);
        standalone.push(alone);
    }
    let stmt = client.prepare_cached(BATCH).await?;
    let rows = client
        .query(
            &stmt,
            &[
                &ops,
                &providers,
                &sessions,
                &bets,
                &rounds,
                &stakes,
                &wins,
                &tx1,
                &tx2,
                &standalone,
                &nonces,
            ],
        )
        .await?;
    if rows.len() != n {
        return Err(Error::Internal(anyhow::anyhow!(
            "bet_batch answered {} outcomes for {n} calls",
            rows.len()
        )));
    }
    Ok(rows.iter().map(receipt).collect())
}

fn receipt(row: &Row) -> Result<BetReceipt, Error> {
    let replayed = status_error(row.try_get(0)?)?;
    Ok(BetReceipt {
        replayed,
        bet_tx: row.try_get(1)?,
        win_tx: row.try_get(2)?,
        refund_tx: row.try_get(3)?,
        balance: row.try_get(4)?,
    })
}
