//! Verbs on counterparties: providers, operators, and either.

use clap::{Args, Subcommand};
use serde_json::json;

use super::Printed;
use crate::admin::{Admin, CounterpartyStatus};

#[derive(Subcommand)]
pub enum ProviderVerb {
    /// Creates a provider: prints {"id", "secret"}.
    Add(ProviderAdd),
    /// Sets the provider's game launch URL template. Placeholders: {sessionId} (required),
    /// {gameId}, {language}, {currency}, {mode}, {returnUrl}, {playerId}.
    SetLaunchUrl(ProviderSetLaunchUrl),
}

impl ProviderVerb {
    pub async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        match self {
            Self::Add(verb) => verb.run(admin).await,
            Self::SetLaunchUrl(verb) => verb.run(admin).await,
        }
    }
}

#[derive(Args)]
pub struct ProviderAdd {
    #[arg(long)]
    name: String,
    /// Refuse a PayOut for an unknown betId (code 4) instead of paying it as a
    /// standalone (jackpot) win.
    #[arg(long)]
    refuse_standalone_wins: bool,
}

impl ProviderAdd {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let credentials = admin
            .provider_add(&self.name, !self.refuse_standalone_wins)
            .await?;
        Printed::done(serde_json::to_value(credentials)?)
    }
}

#[derive(Args)]
pub struct ProviderSetLaunchUrl {
    #[arg(long)]
    provider: String,
    #[arg(long)]
    template: String,
}

impl ProviderSetLaunchUrl {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        admin
            .provider_set_launch_url(&self.provider, &self.template)
            .await?;
        Printed::done(json!({ "id": self.provider, "launchUrlTemplate": self.template }))
    }
}

#[derive(Subcommand)]
pub enum OperatorVerb {
    /// Creates an operator: prints {"id", "secret"}.
    Add(OperatorAdd),
    /// Chooses the rail the operator's crypto payouts go through.
    SetPayoutRail(OperatorSetPayoutRail),
    /// Whether the operator's players may bet locked funds (crypto deposits detected but not
    /// yet confirmed). Default: yes.
    SetLockedPlay(OperatorSetLockedPlay),
}

impl OperatorVerb {
    pub async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        match self {
            Self::Add(verb) => verb.run(admin).await,
            Self::SetPayoutRail(verb) => verb.run(admin).await,
            Self::SetLockedPlay(verb) => verb.run(admin).await,
        }
    }
}

#[derive(Args)]
pub struct OperatorAdd {
    #[arg(long)]
    name: String,
}

impl OperatorAdd {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        Printed::done(serde_json::to_value(admin.operator_add(&self.name).await?)?)
    }
}

#[derive(Args)]
pub struct OperatorSetPayoutRail {
    #[arg(long)]
    operator: String,
    #[arg(long, value_parser = ["inabit", "b2binpay"])]
    rail: String,
}

impl OperatorSetPayoutRail {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        admin
            .operator_set_payout_rail(&self.operator, &self.rail)
            .await?;
        Printed::done(json!({ "id": self.operator, "payoutRail": self.rail }))
    }
}

#[derive(Args)]
pub struct OperatorSetLockedPlay {
    #[arg(long)]
    operator: String,
    #[arg(long, value_enum)]
    allowed: YesNo,
}

impl OperatorSetLockedPlay {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let allowed = matches!(self.allowed, YesNo::Yes);
        admin
            .operator_set_locked_play(&self.operator, allowed)
            .await?;
        Printed::done(json!({ "id": self.operator, "lockedPlay": allowed }))
    }
}

#[derive(Subcommand)]
pub enum CounterpartyVerb {
    /// Enables (`active`) or disables (`disabled`) a counterparty.
    SetStatus(CounterpartySetStatus),
}

impl CounterpartyVerb {
    pub async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        match self {
            Self::SetStatus(verb) => verb.run(admin).await,
        }
    }
}

#[derive(Args)]
pub struct CounterpartySetStatus {
    #[arg(long)]
    id: String,
    #[arg(long, value_parser = ["active", "disabled"])]
    status: String,
}

impl CounterpartySetStatus {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        admin
            .counterparty_set_status(&self.id, CounterpartyStatus::parse(&self.status)?)
            .await?;
        Printed::done(json!({ "id": self.id, "status": self.status }))
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum YesNo {
    Yes,
    No,
}
