//! `croupier admin …`: one small struct per verb with its own `run`, grouped by what the verb
//! acts on. Every verb goes through `Admin` and prints one JSON object on stdout: its result,
//! or `{"error": …}` with exit code 1.

mod counterparty;
mod crypto;
mod keys;
mod player;
mod seamless;

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::admin::Admin;
use crate::config::DatabaseSettings;
use crate::db::{Database, Limits};

#[derive(Subcommand)]
pub enum AdminVerb {
    /// Game providers.
    Provider {
        #[command(subcommand)]
        verb: counterparty::ProviderVerb,
    },
    /// Operators (casinos).
    Operator {
        #[command(subcommand)]
        verb: counterparty::OperatorVerb,
    },
    /// Any counterparty (provider or operator).
    Counterparty {
        #[command(subcommand)]
        verb: counterparty::CounterpartyVerb,
    },
    /// Players and their wallets.
    Player {
        #[command(subcommand)]
        verb: player::PlayerVerb,
    },
    /// Wallet credits.
    Wallet {
        #[command(subcommand)]
        verb: player::WalletVerb,
    },
    /// Game sessions.
    Session {
        #[command(subcommand)]
        verb: player::SessionVerb,
    },
    /// Crypto: conversion rates and the review queue.
    Crypto {
        #[command(subcommand)]
        verb: crypto::CryptoVerb,
    },
    /// Seamless mode's legs: the ones waiting for a person, and a person's verdict.
    Seamless {
        #[command(subcommand)]
        verb: seamless::SeamlessVerb,
    },
    /// Seamless mode's signing keys (in the data folder).
    Keys {
        #[command(subcommand)]
        verb: keys::KeysVerb,
    },
    /// Checks every wallet against its journal and every bet against its journal rows;
    /// exits 1 on any mismatch.
    Reconcile,
}

impl AdminVerb {
    async fn run(self, admin: &Admin, database: &DatabaseSettings) -> anyhow::Result<Printed> {
        match self {
            Self::Keys { verb } => {
                // The issuer is a server setting; key files do not depend on it.
                let signing = crate::seamless::SigningConfig::in_data_dir(&database.data_dir, "");
                verb.run(admin, &signing).await
            }
            Self::Provider { verb } => verb.run(admin).await,
            Self::Operator { verb } => verb.run(admin).await,
            Self::Counterparty { verb } => verb.run(admin).await,
            Self::Player { verb } => verb.run(admin).await,
            Self::Wallet { verb } => verb.run(admin).await,
            Self::Session { verb } => verb.run(admin).await,
            Self::Crypto { verb } => verb.run(admin).await,
            Self::Seamless { verb } => verb.run(admin).await,
            Self::Reconcile => {
                let report = admin.reconcile().await?;
                Ok(Printed {
                    json: serde_json::to_string(&report)?,
                    success: report.ok,
                })
            }
        }
    }
}

/// Runs one verb on the database and prints its outcome. Only a database that cannot be
/// opened ends without a JSON object (the error goes to stderr).
pub async fn run(database: &DatabaseSettings, verb: AdminVerb) -> anyhow::Result<ExitCode> {
    let db = Database::open(database, super::COMMAND_POOL_SIZE, Limits::unlimited()).await?;
    let outcome = verb.run(&Admin::new(db.pool.clone()), database).await;
    db.close(false).await?;
    let printed = outcome.unwrap_or_else(|e| Printed {
        json: json!({ "error": format!("{e:#}") }).to_string(),
        success: false,
    });
    if !printed.json.is_empty() {
        println!("{}", printed.json);
    }
    Ok(if printed.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What a verb prints (one JSON object) and whether it exits 0.
pub struct Printed {
    json: String,
    success: bool,
}

impl Printed {
    /// A verb that did what it was asked.
    fn done(value: serde_json::Value) -> anyhow::Result<Self> {
        Ok(Self::decided(value, true))
    }

    /// JSON written by hand, for amounts and rates: a `serde_json::Value` would pass them
    /// through f64.
    fn written(json: String) -> anyhow::Result<Self> {
        Ok(Self {
            json,
            success: true,
        })
    }

    /// JSON lines: one object per line (nothing for none).
    fn lines(lines: Vec<String>) -> anyhow::Result<Self> {
        Ok(Self {
            json: lines.join("\n"),
            success: true,
        })
    }

    /// A decision that may not take: prints why, and exits 1 when it did not.
    fn decided(value: serde_json::Value, took: bool) -> Self {
        Self {
            json: value.to_string(),
            success: took,
        }
    }
}
