//! Verbs on the crypto side: conversion rates and the review queue (deposits and payouts a
//! person must look at, and how each is decided).

use clap::{Args, Subcommand};
use serde_json::json;

use super::Printed;
use crate::admin::{Admin, ReopenOutcome, SettleOutcome};
use crate::config::CryptoSettings;
use crate::money::Currency;

#[derive(Subcommand)]
pub enum CryptoVerb {
    /// Sets the rate of ASSET in CURRENCY (1 ASSET = RATE CURRENCY), used for deposits and
    /// payouts from now on.
    SetRate(SetRate),
    /// Lists the open review queue (deposits and payouts a person must look at).
    Reviews,
    /// Marks a review entry as dealt with.
    ResolveReview(ResolveReview),
    /// Decides a credited deposit waiting in review: `completed` unlocks it (withdrawable),
    /// `reversed` takes the credit back (if the wallet holds it).
    SettleDeposit(SettleDeposit),
    /// Decides a payout waiting in review, after checking with the provider: `paid` keeps
    /// the amount out of the wallet, `released` gives it back.
    SettlePayout(SettlePayout),
    /// Gives a deposit in review that credited nothing (no rate, unknown address, under- or
    /// overcharge) a fresh start: reads it from inabit again and applies it (set the rate
    /// first). Needs the inabit settings of the server.
    ReopenDeposit(ReopenDeposit),
}

impl CryptoVerb {
    pub async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        match self {
            Self::SetRate(verb) => verb.run(admin).await,
            Self::Reviews => Printed::done(json!({ "reviews": admin.crypto_reviews().await? })),
            Self::ResolveReview(verb) => verb.run(admin).await,
            Self::SettleDeposit(verb) => verb.run(admin).await,
            Self::SettlePayout(verb) => verb.run(admin).await,
            Self::ReopenDeposit(verb) => verb.run(admin).await,
        }
    }
}

#[derive(Args)]
pub struct SetRate {
    #[arg(long)]
    asset: String,
    #[arg(long)]
    currency: String,
    #[arg(long)]
    rate: String,
}

impl SetRate {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let rate = rust_decimal::Decimal::from_str_exact(&self.rate)
            .map_err(|_| anyhow::anyhow!("rate must be a decimal number"))?;
        admin
            .crypto_set_rate(&self.asset, Currency::parse(&self.currency)?, rate)
            .await?;
        Printed::written(format!(
            "{{\"asset\":{},\"currency\":{},\"rate\":{}}}",
            json!(self.asset),
            json!(self.currency),
            crate::money::json_number(rate)
        ))
    }
}

#[derive(Args)]
pub struct ResolveReview {
    #[arg(long)]
    id: String,
}

impl ResolveReview {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        admin.crypto_resolve_review(&self.id).await?;
        Printed::done(json!({ "id": self.id, "resolved": true }))
    }
}

#[derive(Args)]
pub struct SettleDeposit {
    /// inabit's transaction id.
    #[arg(long)]
    tx: String,
    #[arg(long = "as", value_parser = ["completed", "reversed"])]
    outcome: String,
}

impl SettleDeposit {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let settled = admin.crypto_settle_deposit(&self.tx, &self.outcome).await?;
        Ok(Printed::decided(
            json!({ "tx": self.tx, "as": self.outcome, "settle": settled }),
            settled == SettleOutcome::Applied,
        ))
    }
}

#[derive(Args)]
pub struct SettlePayout {
    #[arg(long)]
    operator: String,
    /// The operator's transactionId of the payout.
    #[arg(long)]
    transaction_id: String,
    #[arg(long = "as", value_parser = ["paid", "released"])]
    outcome: String,
}

impl SettlePayout {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let settled = admin
            .crypto_settle_payout(&self.operator, &self.transaction_id, &self.outcome)
            .await?;
        Ok(Printed::decided(
            json!({ "transactionId": self.transaction_id, "as": self.outcome, "settle": settled }),
            settled == SettleOutcome::Applied,
        ))
    }
}

#[derive(Args)]
pub struct ReopenDeposit {
    /// inabit's transaction id.
    #[arg(long)]
    tx: String,
    /// The server's crypto settings: reopening reads the deposit from inabit. Boxed, as they
    /// outweigh every other verb.
    #[command(flatten)]
    crypto: Box<CryptoSettings>,
}

impl ReopenDeposit {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let config = self.crypto.config()?;
        let (reopened, outcome) = admin.crypto_reopen_deposit(config, &self.tx).await?;
        Ok(Printed::decided(
            json!({ "tx": self.tx, "reopen": reopened, "outcome": outcome }),
            reopened == ReopenOutcome::Reopened,
        ))
    }
}
