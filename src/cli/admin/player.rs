//! Verbs on players, their wallets and their game sessions.

use clap::{Args, Subcommand};
use serde_json::json;

use super::Printed;
use crate::admin::{Admin, PlayerStatus};
use crate::ledger::SessionId;
use crate::money::{Amount, Currency};

/// A player, as its operator names it.
#[derive(Args)]
pub struct PlayerKey {
    #[arg(long)]
    operator: String,
    #[arg(long)]
    external_id: String,
}

#[derive(Subcommand)]
pub enum PlayerVerb {
    /// Creates a player with a wallet in CURRENCY (idempotent): prints {"playerId"}.
    Add(PlayerAdd),
    /// Blocks or unblocks a player (a blocked player cannot bet).
    SetStatus(PlayerSetStatus),
}

impl PlayerVerb {
    pub async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        match self {
            Self::Add(verb) => verb.run(admin).await,
            Self::SetStatus(verb) => verb.run(admin).await,
        }
    }
}

#[derive(Args)]
pub struct PlayerAdd {
    #[command(flatten)]
    player: PlayerKey,
    #[arg(long)]
    currency: String,
}

impl PlayerAdd {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let currency = Currency::parse(&self.currency)?;
        let player = admin
            .player_add(&self.player.operator, &self.player.external_id, currency)
            .await?;
        Printed::done(json!({ "playerId": player }))
    }
}

#[derive(Args)]
pub struct PlayerSetStatus {
    #[command(flatten)]
    player: PlayerKey,
    #[arg(long, value_parser = ["active", "blocked"])]
    status: String,
}

impl PlayerSetStatus {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        admin
            .player_set_status(
                &self.player.operator,
                &self.player.external_id,
                PlayerStatus::parse(&self.status)? == PlayerStatus::Blocked,
            )
            .await?;
        Printed::done(json!({ "externalId": self.player.external_id, "status": self.status }))
    }
}

#[derive(Subcommand)]
pub enum WalletVerb {
    /// Credits a wallet, idempotent by REFERENCE: prints {"balance"}.
    Credit(WalletCredit),
}

impl WalletVerb {
    pub async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        match self {
            Self::Credit(verb) => verb.run(admin).await,
        }
    }
}

#[derive(Args)]
pub struct WalletCredit {
    #[command(flatten)]
    player: PlayerKey,
    #[arg(long)]
    currency: String,
    #[arg(long, allow_hyphen_values = true)]
    amount: String,
    #[arg(long)]
    reference: String,
}

impl WalletCredit {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let amount = Amount::parse(&self.amount, Currency::parse(&self.currency)?)?;
        let balance = admin
            .wallet_credit(
                &self.player.operator,
                &self.player.external_id,
                amount,
                &self.reference,
            )
            .await?;
        let balance = crate::money::json_number(balance);
        Printed::written(format!("{{\"balance\":{balance}}}"))
    }
}

#[derive(Subcommand)]
pub enum SessionVerb {
    /// Opens a game session: prints {"sessionId"}.
    Open(SessionOpen),
    /// Closes a session: no more bets on it.
    Close(SessionClose),
}

impl SessionVerb {
    pub async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        match self {
            Self::Open(verb) => verb.run(admin).await,
            Self::Close(verb) => verb.run(admin).await,
        }
    }
}

#[derive(Args)]
pub struct SessionOpen {
    #[arg(long)]
    provider: String,
    #[command(flatten)]
    player: PlayerKey,
    #[arg(long)]
    currency: String,
    #[arg(long)]
    game: String,
    /// Lifetime in minutes (the server's default for the sessions it opens).
    #[arg(
        long,
        env = "CROUPIER_SESSION_TTL_MINUTES",
        default_value_t = 1440,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    ttl_minutes: u32,
}

impl SessionOpen {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let session = admin
            .session_open(
                &self.provider,
                &self.player.operator,
                &self.player.external_id,
                Currency::parse(&self.currency)?,
                &self.game,
                self.ttl_minutes,
            )
            .await?;
        Printed::done(json!({ "sessionId": session.0 }))
    }
}

#[derive(Args)]
pub struct SessionClose {
    #[arg(long)]
    session: String,
}

impl SessionClose {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        admin
            .session_close(SessionId::parse(&self.session)?)
            .await?;
        Printed::done(json!({ "sessionId": self.session, "status": "closed" }))
    }
}
