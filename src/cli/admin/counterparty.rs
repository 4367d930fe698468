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
    /// Creates an operator: prints {"id", "secret", "mode"}. With --wallet-url the operator
    /// is seamless (its players' money stays in the casino's wallet), else transfer.
    Add(OperatorAdd),
    /// Points an operator at its casino wallet (seamless mode); "" goes back to transfer
    /// mode. Either only while croupier holds none of its players' money.
    SetWallet(OperatorSetWallet),
    /// Changes a seamless operator's settings (timeouts, retries, close, make-list, the
    /// casino's ErrorCodes).
    SetSeamless(OperatorSetSeamless),
    /// Shows an operator's mode and, when seamless, its settings.
    Show(OperatorShow),
    /// Chooses the operator's treasury: the rail its crypto payouts go through and its
    /// wallet there they are sent from.
    SetPayoutRail(OperatorSetPayoutRail),
    /// Whether the operator's crypto payouts may take value that did not come in as crypto
    /// (transfer-API credit). Default: no.
    SetFiatCryptoPayouts(OperatorSetFiatCryptoPayouts),
    /// Whether the operator's players may bet locked funds (crypto deposits detected but not
    /// yet confirmed); what they win meanwhile stays locked until the deposits confirm.
    /// Default: no.
    SetLockedPlay(OperatorSetLockedPlay),
}

impl OperatorVerb {
    pub async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        match self {
            Self::Add(verb) => verb.run(admin).await,
            Self::SetWallet(verb) => verb.run(admin).await,
            Self::SetSeamless(verb) => verb.run(admin).await,
            Self::Show(verb) => verb.run(admin).await,
            Self::SetPayoutRail(verb) => verb.run(admin).await,
            Self::SetFiatCryptoPayouts(verb) => verb.run(admin).await,
            Self::SetLockedPlay(verb) => verb.run(admin).await,
        }
    }
}

#[derive(Args)]
pub struct OperatorAdd {
    #[arg(long)]
    name: String,
    /// The casino wallet's base URL: croupier calls `{url}/payments/make` and so on.
    #[arg(long)]
    wallet_url: Option<String>,
}

impl OperatorAdd {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let (credentials, mode) = match &self.wallet_url {
            Some(url) => (
                admin.operator_add_seamless(&self.name, url).await?,
                "seamless",
            ),
            None => (admin.operator_add(&self.name).await?, "transfer"),
        };
        Printed::done(json!({
            "id": credentials.id,
            "secret": credentials.secret,
            "mode": mode,
        }))
    }
}

#[derive(Args)]
pub struct OperatorSetWallet {
    #[arg(long)]
    operator: String,
    /// The casino wallet's base URL; "" for transfer mode.
    #[arg(long)]
    wallet_url: String,
}

impl OperatorSetWallet {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        Printed::done(
            admin
                .operator_set_wallet(&self.operator, &self.wallet_url)
                .await?,
        )
    }
}

#[derive(Args)]
pub struct OperatorSetSeamless {
    #[arg(long)]
    operator: String,
    /// Limit on one HTTP attempt to the casino, in milliseconds (default 3000).
    #[arg(long)]
    attempt_timeout_ms: Option<i32>,
    /// A provider is answered within this, in milliseconds (default 8000).
    #[arg(long)]
    provider_deadline_ms: Option<i32>,
    /// A credit is retried this long before it is marked stuck, in seconds (default 86400).
    #[arg(long)]
    retry_horizon_s: Option<i32>,
    /// An unconfirmed debit the provider neither repeats nor refunds is compensated after
    /// this, in seconds (default 60).
    #[arg(long)]
    abandon_after_s: Option<i32>,
    /// Whether a settled bet is followed by `payments/close` (default on).
    #[arg(long, value_parser = ["on", "off"])]
    close: Option<String>,
    /// Whether concurrent movements go to the casino as one `payments/make-list` (default off).
    #[arg(long, value_parser = ["on", "off"])]
    make_list: Option<String>,
    /// The casino's own ErrorCodes, as JSON {"<code>": "<meaning>"} over the defaults
    /// (meanings: applied, insufficient_funds, user_not_found, incorrect_amount, blocked,
    /// refused, not_found, conflict, accepted, unknown); "{}" restores the defaults.
    #[arg(long)]
    error_codes: Option<String>,
}

impl OperatorSetSeamless {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let error_codes = match &self.error_codes {
            Some(text) => {
                let value: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| anyhow::anyhow!("--error-codes is not JSON: {e}"))?;
                Some(crate::seamless::ErrorCodes::from_json(&value)?)
            }
            None => None,
        };
        let change = crate::seamless::admin::SettingsChange {
            attempt_timeout_ms: self.attempt_timeout_ms,
            provider_deadline_ms: self.provider_deadline_ms,
            retry_horizon_s: self.retry_horizon_s,
            abandon_after_s: self.abandon_after_s,
            send_close: self.close.as_deref().map(|v| v == "on"),
            make_list: self.make_list.as_deref().map(|v| v == "on"),
            error_codes,
        };
        Printed::done(admin.operator_set_seamless(&self.operator, &change).await?)
    }
}

#[derive(Args)]
pub struct OperatorShow {
    #[arg(long)]
    operator: String,
}

impl OperatorShow {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        Printed::done(admin.operator_show(&self.operator).await?)
    }
}

#[derive(Args)]
pub struct OperatorSetPayoutRail {
    #[arg(long)]
    operator: String,
    #[arg(long, value_parser = ["inabit", "b2binpay"])]
    rail: String,
    /// The operator's wallet id at that provider.
    #[arg(long)]
    wallet: String,
}

impl OperatorSetPayoutRail {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        admin
            .operator_set_payout_rail(&self.operator, &self.rail, &self.wallet)
            .await?;
        Printed::done(
            json!({ "id": self.operator, "payoutRail": self.rail, "payoutWallet": self.wallet }),
        )
    }
}

#[derive(Args)]
pub struct OperatorSetFiatCryptoPayouts {
    #[arg(long)]
    operator: String,
    #[arg(long, value_enum)]
    allowed: YesNo,
}

impl OperatorSetFiatCryptoPayouts {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let allowed = matches!(self.allowed, YesNo::Yes);
        admin
            .operator_set_fiat_crypto_payouts(&self.operator, allowed)
            .await?;
        Printed::done(json!({ "id": self.operator, "fiatCryptoPayouts": allowed }))
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
    /// Disables a counterparty: its calls are refused from now on.
    Disable(CounterpartyDisable),
}

impl CounterpartyVerb {
    pub async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        match self {
            Self::SetStatus(verb) => verb.run(admin).await,
            Self::Disable(verb) => {
                CounterpartySetStatus {
                    id: verb.id,
                    status: "disabled".into(),
                }
                .run(admin)
                .await
            }
        }
    }
}

#[derive(Args)]
pub struct CounterpartyDisable {
    #[arg(long)]
    id: String,
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
