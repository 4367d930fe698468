//! Crypto money movements: deposits confirmed by inabit, and payouts held while a provider
//! sends them. The SQL functions (`sql/functions/crypto_*.sql`) take the wallet lock, apply each
//! effect once and post the journal rows; this module only calls them and reads the records.

mod states;

use deadpool_postgres::Pool;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::error::Error;
use crate::money::Amount;
pub use states::{
    DepositOutcome, DepositState, FinishOutcome, HoldStatus, PayoutEnd, PayoutState, Rail,
    ReopenOutcome, ReviewReason, SettleOutcome,
};

/// A deposit as inabit's API reports it (never as a webhook claims it).
#[derive(Debug, Clone, PartialEq)]
pub struct DepositReport {
    pub provider_tx_id: String,
    pub status: String,
    pub coin_amount: Decimal,
    pub asset: String,
    pub blockchain: String,
    pub address: String,
    pub tx_hash: Option<String>,
}

/// What applying a report did.
#[derive(Debug, Clone)]
pub struct DepositEffect {
    pub outcome: DepositOutcome,
    pub deposit_id: Uuid,
    pub state: DepositState,
}

/// An operator's payout order, checked at the edge.
#[derive(Debug, Clone)]
pub struct PayoutOrder {
    pub operator_id: String,
    pub external_id: String,
    pub amount: Amount,
    pub transaction_id: String,
    pub asset: String,
    pub blockchain: String,
    pub address: String,
}

/// A payout as recorded.
#[derive(Debug, Clone)]
pub struct Payout {
    pub id: Uuid,
    pub operator_id: String,
    pub transaction_id: String,
    pub external_id: String,
    pub currency: String,
    pub amount: Decimal,
    pub asset: String,
    pub blockchain: String,
    pub address: String,
    pub coin_amount: Decimal,
    pub rate: Decimal,
    pub rail: Rail,
    /// The operator's provider wallet the payout is sent from (None: held before wallets
    /// were per operator; such a payout is not sent).
    pub source_wallet: Option<String>,
    pub state: PayoutState,
    /// Why a refused payout was refused.
    pub refusal: Option<HoldStatus>,
    pub idempotency_key: Uuid,
    pub provider_ref: Option<String>,
    pub provider_status: Option<String>,
    pub attempts: i32,
    /// Epoch milliseconds.
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

const PAYOUT_COLUMNS: &str = "p.id, p.operator_id, p.transaction_id, pl.external_id, p.currency,
    p.amount, p.asset, p.blockchain, p.address, p.coin_amount, p.rate, p.rail, p.state,
    p.refusal, p.idempotency_key, p.provider_ref, p.provider_status, p.attempts,
    (extract(epoch FROM p.created_at) * 1000)::bigint,
    (extract(epoch FROM p.updated_at) * 1000)::bigint, p.source_wallet";

fn payout_from(row: &tokio_postgres::Row) -> Result<Payout, Error> {
    let refusal: Option<&str> = row.try_get(13)?;
    Ok(Payout {
        id: row.try_get(0)?,
        operator_id: row.try_get(1)?,
        transaction_id: row.try_get(2)?,
        external_id: row.try_get(3)?,
        currency: row.try_get(4)?,
        amount: row.try_get(5)?,
        asset: row.try_get(6)?,
        blockchain: row.try_get(7)?,
        address: row.try_get(8)?,
        coin_amount: row.try_get(9)?,
        rate: row.try_get(10)?,
        rail: Rail::parse(row.try_get(11)?)?,
        source_wallet: row.try_get(20)?,
        state: PayoutState::parse(row.try_get(12)?)?,
        refusal: refusal.map(HoldStatus::parse).transpose()?,
        idempotency_key: row.try_get(14)?,
        provider_ref: row.try_get(15)?,
        provider_status: row.try_get(16)?,
        attempts: row.try_get(17)?,
        created_at_ms: row.try_get(18)?,
        updated_at_ms: row.try_get(19)?,
    })
}

/// The crypto entries of the ledger.
#[derive(Clone)]
pub struct CryptoLedger {
    pool: Pool,
}

impl CryptoLedger {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Applies a confirmed report of a deposit: at most once per (transaction, target state).
    pub async fn deposit_apply(&self, report: &DepositReport) -> Result<DepositEffect, Error> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT outcome, deposit_id, state FROM crypto_deposit_apply(
                     $1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &report.provider_tx_id,
                    &report.status,
                    &report.coin_amount,
                    &report.asset,
                    &report.blockchain,
                    &report.address,
                    &report.tx_hash,
                    &Uuid::now_v7(),
                    &Uuid::now_v7(),
                ],
            )
            .await?;
        Ok(DepositEffect {
            outcome: DepositOutcome::parse(row.try_get(0)?)?,
            deposit_id: row.try_get(1)?,
            state: DepositState::parse(row.try_get(2)?)?,
        })
    }

    /// Opens a payout and holds its amount, or answers the recorded outcome of the same
    /// transaction id, to be sent through `rail` from the operator's `source_wallet`; the
    /// coin amount is rounded down to the asset's `asset_scale` decimals. Returns the payout
    /// and whether it was already there.
    pub async fn payout_hold(
        &self,
        order: &PayoutOrder,
        asset_scale: u32,
        rail: Rail,
        source_wallet: &str,
    ) -> Result<(Payout, bool), Error> {
        let scale = i32::try_from(asset_scale).unwrap_or(18);
        // The connection goes back before `payout_by_id` takes one: holding it there would
        // let a pool's worth of concurrent payouts wait on each other.
        let row = self
            .pool
            .get()
            .await?
            .query_one(
                "SELECT status, payout_id FROM crypto_payout_hold(
                     $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    &order.operator_id,
                    &order.external_id,
                    &order.amount.currency().code(),
                    &order.amount.value(),
                    &order.transaction_id,
                    &order.asset,
                    &order.blockchain,
                    &order.address,
                    &scale,
                    &rail.as_str(),
                    &source_wallet,
                    &Uuid::now_v7(),
                    &Uuid::now_v7(),
                    &Uuid::new_v4(),
                ],
            )
            .await?;
        let replayed = match HoldStatus::parse(row.try_get(0)?)? {
            // A refusal for insufficient funds is recorded: answered below, like a replay.
            HoldStatus::Ok | HoldStatus::InsufficientFunds | HoldStatus::NotCryptoFunded => false,
            HoldStatus::Duplicate => true,
            HoldStatus::Conflict => return Err(Error::Conflict),
            HoldStatus::PlayerNotFound => return Err(Error::PlayerNotFound),
            HoldStatus::NoRate => {
                return Err(Error::not_configured(format!(
                    "no conversion rate from {} to {}",
                    order.asset,
                    order.amount.currency().code()
                )))
            }
            HoldStatus::AmountTooSmall => {
                return Err(Error::bad_value(
                    "amount is less than the smallest unit of the asset",
                ))
            }
        };
        let id: Uuid = row.try_get(1)?;
        let payout = self
            .payout_by_id(id)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("payout {id} vanished")))?;
        match payout.refusal {
            None => Ok((payout, replayed)),
            Some(HoldStatus::InsufficientFunds | HoldStatus::NotCryptoFunded) => {
                Err(Error::InsufficientFunds)
            }
            Some(other) => Err(Error::Internal(anyhow::anyhow!(
                "payout {id} refused as {other}"
            ))),
        }
    }

    /// Ends a payout (see `crypto_payout_finish`). With `only_unsent`, only a payout still
    /// held with no withdrawal tied to it (a provider refused the call).
    pub async fn payout_finish(
        &self,
        id: Uuid,
        end: PayoutEnd,
        provider_status: Option<&str>,
        only_unsent: bool,
    ) -> Result<FinishOutcome, Error> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT crypto_payout_finish($1, $2, $3, $4, $5)",
                &[
                    &id,
                    &end.as_str(),
                    &provider_status,
                    &Uuid::now_v7(),
                    &only_unsent,
                ],
            )
            .await?;
        FinishOutcome::parse(row.try_get(0)?)
    }

    /// A person's decision on a payout in review (after checking with the provider): `paid`
    /// keeps the hold spent, `released` gives it back (see `crypto_payout_settle`).
    pub async fn payout_settle(
        &self,
        operator_id: &str,
        transaction_id: &str,
        end: PayoutEnd,
    ) -> Result<SettleOutcome, Error> {
        let Some(payout) = self
            .payout_by_transaction(operator_id, transaction_id)
            .await?
        else {
            return Ok(SettleOutcome::NotFound);
        };
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT crypto_payout_settle($1, $2, $3)",
                &[&payout.id, &end.as_str(), &Uuid::now_v7()],
            )
            .await?;
        SettleOutcome::parse(row.try_get(0)?)
    }

    /// A person's decision on a credited deposit in review: `completed` or `reversed` (see
    /// `crypto_deposit_settle`).
    pub async fn deposit_settle(
        &self,
        provider_tx_id: &str,
        outcome: DepositState,
    ) -> Result<SettleOutcome, Error> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT crypto_deposit_settle($1, $2, $3)",
                &[&provider_tx_id, &outcome.as_str(), &Uuid::now_v7()],
            )
            .await?;
        SettleOutcome::parse(row.try_get(0)?)
    }

    /// Puts a deposit waiting in review that credited nothing back to `seen`, so that the
    /// next confirmation applies it afresh (see `crypto_deposit_reopen`).
    pub async fn deposit_reopen(&self, provider_tx_id: &str) -> Result<ReopenOutcome, Error> {
        let client = self.pool.get().await?;
        let row = client
            .query_one("SELECT crypto_deposit_reopen($1)", &[&provider_tx_id])
            .await?;
        ReopenOutcome::parse(row.try_get(0)?)
    }

    /// Ties an inabit withdrawal to a payout in flight, atomically: true if the payout is
    /// held or submitted and tied to no other withdrawal. The Remote Approver's answer.
    pub async fn payout_bind(&self, id: Uuid, provider_ref: &str) -> Result<bool, Error> {
        let client = self.pool.get().await?;
        let rows = client
            .execute(
                "UPDATE crypto_payouts SET provider_ref = $2, state = 'submitted',
                        updated_at = now()
                  WHERE id = $1 AND rail = 'inabit' AND state IN ('held', 'submitted')
                    AND (provider_ref IS NULL OR provider_ref = $2)",
                &[&id, &provider_ref],
            )
            .await?;
        Ok(rows == 1)
    }

    pub async fn payout_by_id(&self, id: Uuid) -> Result<Option<Payout>, Error> {
        self.payout_where("p.id = $1", &[&id]).await
    }

    pub async fn payout_by_transaction(
        &self,
        operator_id: &str,
        transaction_id: &str,
    ) -> Result<Option<Payout>, Error> {
        self.payout_where(
            "p.operator_id = $1 AND p.transaction_id = $2",
            &[&operator_id, &transaction_id],
        )
        .await
    }

    pub async fn payout_by_provider_ref(
        &self,
        rail: Rail,
        provider_ref: &str,
    ) -> Result<Option<Payout>, Error> {
        self.payout_where(
            "p.rail = $1 AND p.provider_ref = $2",
            &[&rail.as_str(), &provider_ref],
        )
        .await
    }

    /// The payout matching `condition` (on `crypto_payouts p`), which names one at most.
    async fn payout_where(
        &self,
        condition: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Payout>, Error> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {PAYOUT_COLUMNS} FROM crypto_payouts p JOIN players pl ON pl.id = p.player_id
              WHERE {condition}"
        );
        client
            .query_opt(&sql, params)
            .await?
            .map(|r| payout_from(&r))
            .transpose()
    }

    /// Claims the next payout still in flight (held or submitted) that nothing has touched
    /// for `idle_ms`, leaving out `done`: touching it claims it for the next `idle_ms`, so
    /// two servers' jobs never work on the same payout at once.
    pub async fn claim_next_payout(
        &self,
        idle_ms: i64,
        done: &[Uuid],
    ) -> Result<Option<Payout>, Error> {
        let client = self.pool.get().await?;
        let sql = format!(
            "WITH claimed AS (
                 UPDATE crypto_payouts SET updated_at = now()
                  WHERE id = (SELECT id FROM crypto_payouts
                               WHERE state IN ('held', 'submitted')
                                 AND updated_at <= now() - $1::bigint * interval '1 millisecond'
                                 AND id <> ALL ($2)
                               ORDER BY updated_at LIMIT 1
                                 FOR UPDATE SKIP LOCKED)
                 RETURNING *)
             SELECT {PAYOUT_COLUMNS} FROM claimed p JOIN players pl ON pl.id = p.player_id"
        );
        client
            .query_opt(&sql, &[&idle_ms, &done])
            .await?
            .map(|r| payout_from(&r))
            .transpose()
    }

    /// Counts a provider call about to be made, so that a restart knows one may have been.
    /// Returns the attempt number, or None when the payout is no longer held with no
    /// withdrawal tied to it (nothing must be sent then).
    pub async fn payout_attempt(&self, id: Uuid) -> Result<Option<i32>, Error> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "UPDATE crypto_payouts SET attempts = attempts + 1, updated_at = now()
                  WHERE id = $1 AND state = 'held' AND provider_ref IS NULL
              RETURNING attempts",
                &[&id],
            )
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Records that the provider accepted the payout under `provider_ref`.
    pub async fn payout_submitted(
        &self,
        id: Uuid,
        provider_ref: &str,
        provider_status: Option<&str>,
    ) -> Result<(), Error> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE crypto_payouts SET state = 'submitted', provider_ref = $2,
                        provider_status = coalesce($3, provider_status), last_error = NULL,
                        updated_at = now()
                  WHERE id = $1 AND state = 'held'",
                &[&id, &provider_ref, &provider_status],
            )
            .await?;
        Ok(())
    }

    /// Notes a provider error (never a secret) and pushes the payout's next look later.
    pub async fn payout_error(&self, id: Uuid, error: &str) -> Result<(), Error> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE crypto_payouts SET last_error = left($2, 500), updated_at = now()
                  WHERE id = $1",
                &[&id, &error],
            )
            .await?;
        Ok(())
    }

    /// Notes the provider's latest status of a payout still in flight.
    pub async fn payout_seen(&self, id: Uuid, provider_status: &str) -> Result<(), Error> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE crypto_payouts SET provider_status = $2, updated_at = now()
                  WHERE id = $1 AND state IN ('held', 'submitted')",
                &[&id, &provider_status],
            )
            .await?;
        Ok(())
    }
}
