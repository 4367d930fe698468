//! Payouts: an operator's order is held in the ledger, then sent through the operator's
//! rail (inabit or B2BINPAY); the payout job sends what was held but not sent and tracks what
//! was sent until the provider says it is final.

use rust_decimal::Decimal;

use super::deposits::EventOutcome;
use super::http::ProviderError;
use super::{sql, AssetIds, Crypto};
use crate::error::Error;
use crate::ledger::crypto::{Payout, PayoutEnd, PayoutOrder, PayoutState, Rail};

/// Most payouts one run of the payout job looks at.
const PAYOUTS_PER_RUN: usize = 100;

impl Crypto {
    /// Takes a payout order: holds the amount, then asks the operator's rail to send it (within
    /// the HTTP timeout; if that answer is lost the recovery job finishes the job). A repeated
    /// order answers the payout as it stands.
    pub async fn withdraw(&self, order: PayoutOrder) -> Result<Payout, Error> {
        let asset = self.asset(&order.asset, &order.blockchain)?;
        let treasury = self
            .pool
            .get()
            .await?
            .query_one(sql::OPERATOR_TREASURY, &[&order.operator_id])
            .await?;
        let rail = Rail::parse(treasury.try_get(0)?)?;
        let wallet: Option<String> = treasury.try_get(1)?;
        let Some(wallet) = wallet else {
            return Err(Error::not_configured(format!(
                "the operator has no {} payout wallet",
                rail.as_str()
            )));
        };
        let configured = match rail {
            Rail::Inabit => asset.inabit_asset_id.is_some() && asset.inabit_blockchain_id.is_some(),
            Rail::B2binpay => asset.b2binpay_currency_id.is_some(),
        };
        if !configured {
            return Err(Error::not_configured(format!(
                "{} payouts of {} on {} are not configured",
                rail.as_str(),
                order.asset,
                order.blockchain
            )));
        }
        let (payout, replayed) = self
            .ledger
            .payout_hold(&order, asset.decimals, rail, &wallet)
            .await?;
        if replayed || payout.state != PayoutState::Held {
            return Ok(payout);
        }
        self.submit(&payout).await?;
        self.ledger
            .payout_by_id(payout.id)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("payout vanished")))
    }

    /// Sends a held payout to its rail. Never sends an inabit withdrawal twice: if a call may
    /// have been made before, inabit is searched for our payout id first. A refusal of the
    /// first call releases the hold; a refusal of a later one (an earlier call may have gone
    /// through after all) goes to review; an unknown outcome is left for the recovery job.
    async fn submit(&self, payout: &Payout) -> Result<(), Error> {
        let asset = self.asset(&payout.asset, &payout.blockchain)?;
        let note = payout.id.to_string();
        if payout.rail == Rail::Inabit && payout.attempts > 0 {
            match self.inabit.transactions_with_note(&note).await {
                Ok(found) => {
                    if let Some(existing) = found.first() {
                        tracing::info!(payout = %payout.id, withdrawal = existing.id, "payout found at inabit; not sent again");
                        return self
                            .ledger
                            .payout_submitted(payout.id, &existing.id, Some(&existing.status))
                            .await;
                    }
                }
                // Cannot tell whether it was sent: do not send.
                Err(e) => return self.ledger.payout_error(payout.id, &e.to_string()).await,
            }
        }
        // What can fail before anything reaches the provider fails here, uncounted.
        if payout.source_wallet.is_none() {
            tracing::warn!(payout = %payout.id, "payout not sent: no source wallet recorded");
            return self
                .ledger
                .payout_error(payout.id, "no source wallet recorded")
                .await;
        }
        let ready = match payout.rail {
            Rail::Inabit => self.inabit.ready_to_withdraw().await,
            Rail::B2binpay => self.b2binpay.ready().await,
        };
        if let Err(e) = ready {
            tracing::warn!(payout = %payout.id, error = %e, "payout not sent: provider not ready");
            return self.ledger.payout_error(payout.id, &e.to_string()).await;
        }
        // Counted before the call; None: a withdrawal was tied to it meanwhile.
        let Some(attempt) = self.ledger.payout_attempt(payout.id).await? else {
            return Ok(());
        };
        let sent = self.send(payout, asset, &note).await;
        self.record_sent(payout, attempt, sent).await
    }

    /// The provider call itself; `note` names our payout. Returns the provider's reference.
    async fn send(
        &self,
        payout: &Payout,
        asset: &AssetIds,
        note: &str,
    ) -> Result<String, ProviderError> {
        let wallet = payout
            .source_wallet
            .as_deref()
            .ok_or(ProviderError::NotConfigured("the payout's source wallet"))?;
        match payout.rail {
            Rail::Inabit => {
                self.inabit
                    .create_withdrawal(wallet, asset, &payout.address, payout.coin_amount, note)
                    .await
            }
            Rail::B2binpay => {
                let currency = asset.b2binpay_currency_id.as_deref().unwrap_or_default();
                self.b2binpay
                    .create_payout(
                        wallet,
                        payout.idempotency_key,
                        note,
                        currency,
                        &payout.address,
                        payout.coin_amount,
                    )
                    .await
            }
        }
    }

    /// Records the answer to the `attempt`th call of a payout.
    async fn record_sent(
        &self,
        payout: &Payout,
        attempt: i32,
        sent: Result<String, ProviderError>,
    ) -> Result<(), Error> {
        match sent {
            Ok(reference) => {
                tracing::info!(payout = %payout.id, rail = payout.rail.as_str(), reference, "payout sent");
                self.ledger
                    .payout_submitted(payout.id, &reference, None)
                    .await
            }
            Err(e) if e.is_refusal() => {
                let end = if attempt == 1 {
                    PayoutEnd::Released
                } else {
                    PayoutEnd::Review
                };
                tracing::warn!(payout = %payout.id, attempt, error = %e, end = end.as_str(), "payout refused by the provider");
                self.ledger.payout_error(payout.id, &e.to_string()).await?;
                self.ledger
                    .payout_finish(payout.id, end, Some("refused"), true)
                    .await
                    .map(|_| ())
            }
            Err(e) => {
                tracing::warn!(payout = %payout.id, error = %e, "payout outcome unknown; the recovery job will look it up");
                self.ledger.payout_error(payout.id, &e.to_string()).await
            }
        }
    }

    /// Ends a payout by the provider's word, or notes its latest status.
    pub(super) async fn conclude(
        &self,
        payout: &Payout,
        end: Option<PayoutEnd>,
        status: &str,
    ) -> Result<EventOutcome, Error> {
        match end {
            Some(end) => {
                let outcome = self
                    .ledger
                    .payout_finish(payout.id, end, Some(status), false)
                    .await?;
                tracing::info!(payout = %payout.id, status, outcome = outcome.as_str(), "payout ended");
                Ok(EventOutcome::Finished(outcome))
            }
            None => {
                self.ledger.payout_seen(payout.id, status).await?;
                Ok(EventOutcome::InProgress)
            }
        }
    }

    /// Reads an inabit withdrawal's status and ends the payout when it is final.
    pub(super) async fn track_inabit(&self, payout: &Payout) -> Result<(), Error> {
        let Some(reference) = payout.provider_ref.as_deref() else {
            return Ok(());
        };
        let Some(tx) = self.inabit.transaction(reference).await? else {
            return Ok(());
        };
        let end = inabit_end(&tx.status);
        self.conclude(payout, end, &tx.status).await.map(|_| ())
    }

    /// Reads a B2BINPAY payout's transfer (in case its callback was lost) and ends the
    /// payout when the transfer is final.
    async fn track_b2binpay(&self, payout: &Payout) -> Result<(), Error> {
        let Some(reference) = payout.provider_ref.as_deref() else {
            return Ok(());
        };
        if let Some((status, amount)) = self.b2binpay.transfer_status(reference).await? {
            let end = b2binpay_end(status, amount, payout.coin_amount);
            self.conclude(payout, end, &status.to_string()).await?;
        }
        Ok(())
    }

    /// The payout job: sends held payouts whose call was lost (after checking it did not
    /// reach the provider) and tracks submitted ones to a final state. Payouts are claimed one
    /// at a time, up to 100 per run.
    pub async fn run_payouts(&self) -> Result<usize, Error> {
        let idle_ms = self.config.payout_idle.as_millis() as i64;
        let mut done = Vec::new();
        while done.len() < PAYOUTS_PER_RUN {
            let Some(payout) = self.ledger.claim_next_payout(idle_ms, &done).await? else {
                break;
            };
            done.push(payout.id);
            let result = match (payout.state, payout.rail) {
                (PayoutState::Held, _) => self.submit(&payout).await,
                (PayoutState::Submitted, Rail::Inabit) => self.track_inabit(&payout).await,
                (PayoutState::Submitted, Rail::B2binpay) => self.track_b2binpay(&payout).await,
                _ => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(payout = %payout.id, error = %e, "payout job");
            }
        }
        Ok(done.len())
    }
}

/// What an inabit withdrawal status means for a payout: paid, released, or not final (any
/// status inabit may add later is not final).
fn inabit_end(status: &str) -> Option<PayoutEnd> {
    match status {
        "Completed" | "Confirmed" | "Success" => Some(PayoutEnd::Paid),
        "Failed" | "Rejected" | "Declined" | "Canceled" | "Cancelled" | "Expired" => {
            Some(PayoutEnd::Released)
        }
        _ => None,
    }
}

/// What a B2BINPAY transfer status means for a payout: 2 confirmed (of our amount) → paid;
/// -1 failed, -3 canceled → released; -2 blocked by AML, or confirmed with another amount →
/// review; 0 created, 1 unconfirmed → not final.
pub(super) fn b2binpay_end(status: i64, amount: Decimal, ours: Decimal) -> Option<PayoutEnd> {
    match status {
        2 if amount == ours => Some(PayoutEnd::Paid),
        2 | -2 => Some(PayoutEnd::Review),
        -1 | -3 => Some(PayoutEnd::Released),
        _ => None,
    }
}
