//! B2BINPAY payout callbacks: verified, recorded once per signed content, applied, marked
//! done. One that cannot be applied now is answered 5xx (B2BINPAY sends it again) and retried
//! by the event worker, ending in the review queue after 20 tries.

use std::str::FromStr;

use uuid::Uuid;

use super::b2binpay::{Callback, CallbackError};
use super::deposits::EventOutcome;
use super::payouts::b2binpay_end;
use super::{sql, Crypto};
use crate::error::Error;
use crate::ledger::crypto::{Rail, ReviewReason};

/// Tries of a recorded callback before it goes to the review queue.
const CALLBACK_TRIES: i32 = 20;

impl Crypto {
    /// A B2BINPAY payout callback: verified, recorded, applied, then marked done; a repeat of
    /// one already applied changes nothing. Any failure after verification is an error (the
    /// caller answers 5xx), so that B2BINPAY delivers it again.
    pub async fn b2binpay_callback(&self, body: &[u8]) -> Result<(), CallbackError> {
        let callback = self.b2binpay.verify_callback(body)?;
        // Only signed fields identify a callback.
        let dedupe = format!(
            "{}:{}:{}:{}",
            callback.tracking_id, callback.transfer_status, callback.amount, callback.time
        );
        let unavailable = |e: Error| {
            tracing::error!(error = %e, "B2BINPAY callback not applied; it will be sent again");
            CallbackError::Unavailable
        };
        let (event, processed) = self
            .record_callback(body, &callback.tracking_id, &dedupe)
            .await
            .map_err(unavailable)?;
        if processed {
            return Ok(());
        }
        let outcome = self.apply_callback(&callback).await.map_err(unavailable)?;
        let client = self.pool.get().await.map_err(|e| unavailable(e.into()))?;
        client
            .execute(sql::CALLBACK_DONE, &[&event, &outcome.as_str()])
            .await
            .map_err(|e| unavailable(e.into()))?;
        Ok(())
    }

    /// Applies B2BINPAY callbacks recorded but not applied (their first answer was 503 and
    /// B2BINPAY may have given up resending them), with the same growing delay as inabit
    /// events; after 20 tries one goes to the review queue. Returns how many were tried.
    pub async fn retry_callbacks(&self) -> Result<usize, Error> {
        let rows = self
            .pool
            .get()
            .await?
            .query(sql::DUE_CALLBACKS, &[])
            .await?;
        for row in &rows {
            let id: Uuid = row.try_get(0)?;
            let body: String = row.try_get(1)?;
            let attempts: i32 = row.try_get(2)?;
            let Err(e) = self.b2binpay_callback(body.as_bytes()).await else {
                continue;
            };
            tracing::warn!(event = %id, attempts, error = %e, "recorded B2BINPAY callback still not applied");
            if attempts >= CALLBACK_TRIES {
                let reason = ReviewReason::CallbackUnapplied.as_str();
                self.pool
                    .get()
                    .await?
                    .execute(sql::CALLBACK_GIVEN_UP, &[&id, &e.to_string(), &reason])
                    .await?;
            }
        }
        Ok(rows.len())
    }

    /// Stores a callback (once per dedupe key). Returns its event and whether it was applied
    /// already.
    async fn record_callback(
        &self,
        body: &[u8],
        reference: &str,
        dedupe: &str,
    ) -> Result<(Uuid, bool), Error> {
        let client = self.pool.get().await?;
        client
            .execute(
                sql::INSERT_CALLBACK,
                &[
                    &Uuid::now_v7(),
                    &reference,
                    &String::from_utf8_lossy(body).as_ref(),
                    &dedupe,
                ],
            )
            .await?;
        let row = client.query_one(sql::CALLBACK_BY_KEY, &[&dedupe]).await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    async fn apply_callback(&self, callback: &Callback) -> Result<EventOutcome, Error> {
        let payout = match Uuid::from_str(&callback.tracking_id) {
            Ok(id) => self.ledger.payout_by_id(id).await?,
            Err(_) => None,
        };
        let Some(payout) = payout.filter(|p| p.rail == Rail::B2binpay) else {
            tracing::warn!(
                tracking_id = callback.tracking_id,
                "B2BINPAY callback for no payout of ours"
            );
            return Ok(EventOutcome::UnknownPayout);
        };
        // `data.id` is not covered by the signature: it is only compared, never adopted (our
        // payout's B2BINPAY id comes from B2BINPAY's answer to its creation).
        if payout
            .provider_ref
            .as_deref()
            .is_some_and(|r| r != callback.payout_ref)
        {
            tracing::warn!(payout = %payout.id, "B2BINPAY callback names another payout id");
            return Ok(EventOutcome::PayoutMismatch);
        }
        let end = b2binpay_end(
            callback.transfer_status,
            callback.amount,
            payout.coin_amount,
        );
        self.conclude(&payout, end, &callback.transfer_status.to_string())
            .await
    }
}
