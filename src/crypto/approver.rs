//! inabit's Remote Approver: before signing a transaction inabit asks us whether to. Yes only
//! for a withdrawal (`transactionType`) we created, from the operator's wallet the payout was
//! held for, with the same address, asset, blockchain and amount, and tied (atomically) to
//! that payout alone.

use std::str::FromStr;

use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::inabit::Transaction;
use super::{http, Crypto};
use crate::ledger::crypto::{Payout, Rail};

/// The approver's question, in inabit's field names.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    transaction_id: Option<String>,
    transaction_type: Option<String>,
    network: Option<String>,
    coin: Option<String>,
    to: Option<String>,
    #[serde(borrow)]
    amount: Option<&'a RawValue>,
}

impl Crypto {
    /// The Remote Approver's question: may inabit sign this transaction?
    pub async fn approve(&self, body: &[u8]) -> bool {
        match self.check_approval(body).await {
            Ok(()) => {
                tracing::info!(body = %String::from_utf8_lossy(body), "approver: approved");
                true
            }
            Err(reason) => {
                tracing::warn!(reason, body = %String::from_utf8_lossy(body), "approver: refused");
                false
            }
        }
    }

    /// Ok, or why not.
    async fn check_approval(&self, body: &[u8]) -> Result<(), String> {
        let request: Request =
            serde_json::from_slice(body).map_err(|_| "not the documented JSON".to_string())?;
        let id = request
            .transaction_id
            .as_deref()
            .ok_or("no transactionId")?;
        // Only withdrawals are ours to approve: another kind of transaction naming one of our
        // payouts (a swap, a transfer between wallets) is not one.
        if !request
            .transaction_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("withdrawal"))
        {
            return Err("not a withdrawal".into());
        }
        let payout = self.approval_payout(id).await?;
        // Address, asset, blockchain and amount never change once a payout exists; whether it
        // is still in flight and tied to this withdrawal only is decided atomically below.
        self.same_withdrawal(&request, &payout)?;
        if !self
            .ledger
            .payout_bind(payout.id, id)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err(format!(
                "payout is {} or tied to another withdrawal",
                payout.state
            ));
        }
        Ok(())
    }

    /// The payout an inabit transaction is for: the one tied to it, or the one its note names
    /// (the withdrawal's creation answer may not have reached us yet). Either way the
    /// transaction is read from inabit, and it must leave from the payout's wallet.
    async fn approval_payout(&self, id: &str) -> Result<Payout, String> {
        let tx = self
            .inabit
            .transaction(id)
            .await
            .map_err(|e| format!("cannot read the transaction: {e}"))?
            .ok_or("inabit does not know the transaction")?;
        let payout = self.payout_of(id, &tx).await?;
        if tx.wallet_id.is_none() || tx.wallet_id != payout.source_wallet {
            return Err("not from the operator's payout wallet".into());
        }
        Ok(payout)
    }

    async fn payout_of(&self, id: &str, tx: &Transaction) -> Result<Payout, String> {
        if let Some(payout) = self
            .ledger
            .payout_by_provider_ref(Rail::Inabit, id)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(payout);
        }
        let payout_id = tx
            .note
            .as_deref()
            .and_then(|n| Uuid::from_str(n.trim()).ok())
            .ok_or("not one of our payouts (no payout id in the note)")?;
        self.ledger
            .payout_by_id(payout_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no such payout".to_string())
    }

    /// Whether the transaction sends what the payout says, where it says.
    fn same_withdrawal(&self, request: &Request<'_>, payout: &Payout) -> Result<(), String> {
        let asset = self
            .asset(&payout.asset, &payout.blockchain)
            .map_err(|e| e.to_string())?;
        if request.to.as_deref() != Some(payout.address.as_str()) {
            return Err("address differs".into());
        }
        if !request
            .coin
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(&payout.asset))
        {
            return Err("asset differs".into());
        }
        let network_ok = request.network.as_deref().is_some_and(|n| {
            n.eq_ignore_ascii_case(&payout.blockchain)
                || asset.inabit_blockchain_id.as_deref() == Some(n)
        });
        if !network_ok {
            return Err("blockchain differs".into());
        }
        let amount = request.amount.and_then(http::decimal);
        if amount != Some(payout.coin_amount) {
            return Err("amount differs".into());
        }
        Ok(())
    }
}
