//! The command line: `serve`, `migrate` and the admin verbs. Admin verbs print one JSON
//! object on stdout; logs go to stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::admin::Admin;
use crate::config::Settings;
use crate::db::Database;
use crate::ledger::SessionId;
use crate::money::{Amount, Currency};
use crate::startup::Application;

#[derive(Parser)]
#[command(name = "croupier", version, about = "Game-aggregator wallet server")]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the HTTP server (with its own PostgreSQL when DATABASE_URL is unset).
    Serve,
    /// Applies the database migrations and exits.
    Migrate,
    /// Operates the wallet without SQL; every verb prints one JSON object.
    Admin {
        #[command(subcommand)]
        verb: AdminVerb,
    },
}

#[derive(Subcommand)]
enum AdminVerb {
    /// Game providers.
    Provider {
        #[command(subcommand)]
        verb: ProviderVerb,
    },
    /// Operators (casinos).
    Operator {
        #[command(subcommand)]
        verb: OperatorVerb,
    },
    /// Any counterparty (provider or operator).
    Counterparty {
        #[command(subcommand)]
        verb: CounterpartyVerb,
    },
    /// Players and their wallets.
    Player {
        #[command(subcommand)]
        verb: PlayerVerb,
    },
    /// Wallet credits.
    Wallet {
        #[command(subcommand)]
        verb: WalletVerb,
    },
    /// Game sessions.
    Session {
        #[command(subcommand)]
        verb: SessionVerb,
    },
    /// Crypto: conversion rates and the review queue.
    Crypto {
        #[command(subcommand)]
        verb: CryptoVerb,
    },
    /// Checks every wallet against its journal and every bet against its journal rows;
    /// exits 1 on any mismatch.
    Reconcile,
}

#[derive(Subcommand)]
enum CryptoVerb {
    /// Sets the rate of ASSET in CURRENCY (1 ASSET = RATE CURRENCY), used for deposits and
    /// payouts from now on.
    SetRate {
        #[arg(long)]
        asset: String,
        #[arg(long)]
        currency: String,
        #[arg(long)]
        rate: String,
    },
    /// Lists the open review queue (deposits and payouts a person must look at).
    Reviews,
    /// Marks a review entry as dealt with.
    ResolveReview {
        #[arg(long)]
        id: String,
    },
    /// Decides a credited deposit waiting in review: `completed` unlocks it (withdrawable),
    /// `reversed` takes the credit back (if the wallet holds it).
    SettleDeposit {
        /// inabit's transaction id.
        #[arg(long)]
        tx: String,
        #[arg(long = "as", value_parser = ["completed", "reversed"])]
        outcome: String,
    },
    /// Decides a payout waiting in review, after checking with the provider: `paid` keeps
    /// the amount out of the wallet, `released` gives it back.
    SettlePayout {
        #[arg(long)]
        operator: String,
        /// The operator's transactionId of the payout.
        #[arg(long)]
        transaction_id: String,
        #[arg(long = "as", value_parser = ["paid", "released"])]
        outcome: String,
    },
    /// Gives a deposit in review that credited nothing (no rate, unknown address, under- or
    /// overcharge) a fresh start: reads it from inabit again and applies it (set the rate
    /// first). Needs the inabit settings of the server.
    ReopenDeposit {
        /// inabit's transaction id.
        #[arg(long)]
        tx: String,
    },
}

#[derive(Subcommand)]
enum ProviderVerb {
    /// Creates a provider: prints {"id", "secret"}.
    Add {
        #[arg(long)]
        name: String,
        /// Refuse a PayOut for an unknown betId (code 4) instead of paying it as a
        /// standalone (jackpot) win.
        #[arg(long)]
        refuse_standalone_wins: bool,
    },
    /// Sets the provider's game launch URL template. Placeholders: {sessionId} (required),
    /// {gameId}, {language}, {currency}, {mode}, {returnUrl}, {playerId}.
    SetLaunchUrl {
        #[arg(long)]
        provider: String,
        #[arg(long)]
        template: String,
    },
}

#[derive(Subcommand)]
enum OperatorVerb {
    /// Creates an operator: prints {"id", "secret"}.
    Add {
        #[arg(long)]
        name: String,
    },
    /// Chooses the rail the operator's crypto payouts go through.
    SetPayoutRail {
        #[arg(long)]
        operator: String,
        #[arg(long, value_parser = ["inabit", "b2binpay"])]
        rail: String,
    },
    /// Whether the operator's players may bet locked funds (crypto deposits detected but not
    /// yet confirmed). Default: yes.
    SetLockedPlay {
        #[arg(long)]
        operator: String,
        #[arg(long, value_parser = ["yes", "no"])]
        allowed: String,
    },
}

#[derive(Subcommand)]
enum CounterpartyVerb {
    /// Enables (`active`) or disables (`disabled`) a counterparty.
    SetStatus {
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = ["active", "disabled"])]
        status: String,
    },
}

#[derive(Subcommand)]
enum PlayerVerb {
    /// Creates a player with a wallet in CURRENCY (idempotent): prints {"playerId"}.
    Add {
        #[arg(long)]
        operator: String,
        #[arg(long)]
        external_id: String,
        #[arg(long)]
        currency: String,
    },
    /// Blocks or unblocks a player (a blocked player cannot bet).
    SetStatus {
        #[arg(long)]
        operator: String,
        #[arg(long)]
        external_id: String,
        #[arg(long, value_parser = ["active", "blocked"])]
        status: String,
    },
}

#[derive(Subcommand)]
enum WalletVerb {
    /// Credits a wallet, idempotent by REFERENCE: prints {"balance"}.
    Credit {
        #[arg(long)]
        operator: String,
        #[arg(long)]
        external_id: String,
        #[arg(long)]
        currency: String,
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        #[arg(long)]
        reference: String,
    },
}

#[derive(Subcommand)]
enum SessionVerb {
    /// Opens a game session: prints {"sessionId"}.
    Open {
        #[arg(long)]
        provider: String,
        #[arg(long)]
        operator: String,
        #[arg(long)]
        external_id: String,
        #[arg(long)]
        currency: String,
        #[arg(long)]
        game: String,
        /// Lifetime in minutes (default: CROUPIER_SESSION_TTL_MINUTES).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        ttl_minutes: Option<u32>,
    },
    /// Closes a session: no more bets on it.
    Close {
        #[arg(long)]
        session: String,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let default_level = match cli.command {
        Command::Serve => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("croupier: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve(&cli.settings).await.map(|()| ExitCode::SUCCESS),
            Command::Migrate => migrate(&cli.settings).await.map(|()| ExitCode::SUCCESS),
            Command::Admin { verb } => admin(&cli.settings, verb).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("croupier: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version print as usual; a usage error of an admin verb is one JSON object on
/// stdout like every other admin failure (the usage goes to stderr).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let is_admin = std::env::args().any(|a| a == "admin");
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ if is_admin => {
            // The message without the usage block that follows it.
            let detail = e.to_string();
            let message: Vec<&str> = detail
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = message.join(" ");
            println!(
                "{}",
                json!({ "error": message.trim_start_matches("error: ") })
            );
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        _ => e.exit(),
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let db = Database::open(settings).await?;
    println!("{}", json!({"migrated": true}));
    db.close(false).await
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let db = Database::open(settings).await?;
    if db.is_embedded() {
        load_demo_fixtures(&db).await?;
    }
    let server = settings.server()?;
    let crypto_pool = crate::db::pool(db.url(), server.crypto.db_pool_size)?;
    let app = Application::build(&server, db.pool.clone(), crypto_pool)?;
    let watcher = app.watch_changes(db.url().to_string());
    let jobs = app.start_jobs();
    let handle = app.handle();
    let listen = settings
        .listen
        .rsplit_once(':')
        .map(|(host, _)| format!("{host}:{}", app.port()))
        .unwrap_or_else(|| settings.listen.clone());
    tracing::info!(
        listen = %listen,
        workers = settings.workers,
        pool = settings.db_pool_size,
        batching = ?server.batching,
        approver = ?app.approver_port(),
        "croupier is serving"
    );
    if db.is_embedded() {
        print_demo_request(&listen);
    }
    let server = tokio::spawn(app.run_until_stopped());
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    handle.stop(true).await;
    server.await??;
    watcher.abort();
    for job in jobs {
        job.abort();
    }
    db.close(true).await
}

/// Waits for Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// Loads `fixtures/demo.sql` into an empty embedded database.
async fn load_demo_fixtures(db: &Database) -> anyhow::Result<()> {
    let client = db.connect().await?;
    let empty = client
        .query_one("SELECT NOT EXISTS (SELECT 1 FROM counterparties)", &[])
        .await?
        .try_get::<_, bool>(0)?;
    if empty {
        client
            .batch_execute(include_str!("../fixtures/demo.sql"))
            .await?;
        tracing::info!("loaded the demo data (fixtures/demo.sql)");
    }
    Ok(())
}

const DEMO_PROVIDER: &str = "933a215f-a9e6-4f88-9d91-52a87cd50499";
const DEMO_SECRET: &str = "demo-provider-secret";
const DEMO_SESSION: &str = "01900000-0000-7000-8000-0000000000a1";
const DEMO_OPERATOR: &str = "5c2f4b1e-8d3a-4c6f-9e7b-1a2b3c4d5e6f";
const DEMO_OPERATOR_SECRET: &str = "demo-operator-secret";

/// Prints a signed PayIn ready to paste (it signs at paste time, so it never expires).
fn print_demo_request(listen: &str) {
    println!(
        r#"
Demo operator {DEMO_OPERATOR} (secret {DEMO_OPERATOR_SECRET}), players alice (USD 1000), bob (EUR 500).
Demo provider {DEMO_PROVIDER}, session {DEMO_SESSION} (player alice, USD).
A signed PayIn of 1.50, ready to paste (needs curl and openssl):

CP={DEMO_PROVIDER}; SECRET={DEMO_SECRET}; SESSION={DEMO_SESSION}
TS=$(date +%s%3N); RID=$(openssl rand -hex 16); BODY="{{\"betId\":\"demo-$RID\",\"betAmount\":1.50}}"
SIGN=$(printf '%s' "$BODY.$CP.$TS.$RID" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
curl -s -X POST "http://{listen}/v1/sessions/$SESSION/bets/pay-in" -H "Content-Type: application/json" \
  -H "X-Counterparty-Id: $CP" -H "X-Timestamp: $TS" -H "X-Request-Id: $RID" -H "X-Sign: $SIGN" -d "$BODY"; echo
"#
    );
}

async fn admin(settings: &Settings, verb: AdminVerb) -> anyhow::Result<ExitCode> {
    let db = Database::open(settings).await?;
    let admin = Admin::new(db.pool.clone());
    let outcome = run_admin(&admin, settings, verb).await;
    db.close(false).await?;
    let (value, code) = match outcome {
        Ok(result) => result,
        Err(e) => (
            json!({ "error": format!("{e:#}") }).to_string(),
            ExitCode::FAILURE,
        ),
    };
    println!("{value}");
    Ok(code)
}

async fn run_admin(
    admin: &Admin,
    settings: &Settings,
    verb: AdminVerb,
) -> anyhow::Result<(String, ExitCode)> {
    let ok = |v: serde_json::Value| Ok((v.to_string(), ExitCode::SUCCESS));
    // A decision that may not take (prints why, exits 1).
    let decided = |v: serde_json::Value, took: bool| {
        let code = if took {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
        Ok((v.to_string(), code))
    };
    match verb {
        AdminVerb::Provider {
            verb:
                ProviderVerb::Add {
                    name,
                    refuse_standalone_wins,
                },
        } => ok(serde_json::to_value(
            admin.provider_add(&name, !refuse_standalone_wins).await?,
        )?),
        AdminVerb::Provider {
            verb: ProviderVerb::SetLaunchUrl { provider, template },
        } => {
            admin.provider_set_launch_url(&provider, &template).await?;
            ok(json!({ "id": provider, "launchUrlTemplate": template }))
        }
        AdminVerb::Operator {
            verb: OperatorVerb::Add { name },
        } => ok(serde_json::to_value(admin.operator_add(&name).await?)?),
        AdminVerb::Operator {
            verb: OperatorVerb::SetPayoutRail { operator, rail },
        } => {
            admin.operator_set_payout_rail(&operator, &rail).await?;
            ok(json!({ "id": operator, "payoutRail": rail }))
        }
        AdminVerb::Operator {
            verb: OperatorVerb::SetLockedPlay { operator, allowed },
        } => {
            admin
                .operator_set_locked_play(&operator, allowed == "yes")
                .await?;
            ok(json!({ "id": operator, "lockedPlay": allowed == "yes" }))
        }
        AdminVerb::Crypto {
            verb:
                CryptoVerb::SetRate {
                    asset,
                    currency,
                    rate,
                },
        } => {
            let rate = rust_decimal::Decimal::from_str_exact(&rate)
                .map_err(|_| anyhow::anyhow!("rate must be a decimal number"))?;
            admin
                .crypto_set_rate(&asset, Currency::parse(&currency)?, rate)
                .await?;
            Ok((
                format!(
                    "{{\"asset\":{},\"currency\":{},\"rate\":{}}}",
                    json!(asset),
                    json!(currency),
                    crate::money::json_number(rate)
                ),
                ExitCode::SUCCESS,
            ))
        }
        AdminVerb::Crypto {
            verb: CryptoVerb::Reviews,
        } => ok(json!({ "reviews": admin.crypto_reviews().await? })),
        AdminVerb::Crypto {
            verb:
                CryptoVerb::SettlePayout {
                    operator,
                    transaction_id,
                    outcome,
                },
        } => {
            let end = crate::ledger::crypto::PayoutEnd::parse(&outcome)?;
            let settled = crate::ledger::crypto::CryptoLedger::new(admin.pool().clone())
                .payout_settle(&operator, &transaction_id, end)
                .await?;
            decided(
                json!({ "transactionId": transaction_id, "as": outcome, "settle": settled }),
                settled == crate::ledger::crypto::SettleOutcome::Applied,
            )
        }
        AdminVerb::Crypto {
            verb: CryptoVerb::SettleDeposit { tx, outcome },
        } => {
            let settled = crate::ledger::crypto::CryptoLedger::new(admin.pool().clone())
                .deposit_settle(&tx, crate::ledger::crypto::DepositState::parse(&outcome)?)
                .await?;
            decided(
                json!({ "tx": tx, "as": outcome, "settle": settled }),
                settled == crate::ledger::crypto::SettleOutcome::Applied,
            )
        }
        AdminVerb::Crypto {
            verb: CryptoVerb::ReopenDeposit { tx },
        } => {
            let crypto =
                crate::crypto::Crypto::new(settings.crypto.config()?, admin.pool().clone())?;
            let (reopened, outcome) = crypto.reopen_deposit(&tx).await?;
            decided(
                json!({ "tx": tx, "reopen": reopened, "outcome": outcome }),
                reopened == crate::ledger::crypto::ReopenOutcome::Reopened,
            )
        }
        AdminVerb::Crypto {
            verb: CryptoVerb::ResolveReview { id },
        } => {
            admin.crypto_resolve_review(&id).await?;
            ok(json!({ "id": id, "resolved": true }))
        }
        AdminVerb::Counterparty {
            verb: CounterpartyVerb::SetStatus { id, status },
        } => {
            admin
                .counterparty_set_status(&id, status == "active")
                .await?;
            ok(json!({ "id": id, "status": status }))
        }
        AdminVerb::Player {
            verb:
                PlayerVerb::Add {
                    operator,
                    external_id,
                    currency,
                },
        } => {
            let currency = Currency::parse(&currency)?;
            let player = admin.player_add(&operator, &external_id, currency).await?;
            ok(json!({ "playerId": player }))
        }
        AdminVerb::Player {
            verb:
                PlayerVerb::SetStatus {
                    operator,
                    external_id,
                    status,
                },
        } => {
            admin
                .player_set_status(&operator, &external_id, status == "blocked")
                .await?;
            ok(json!({ "externalId": external_id, "status": status }))
        }
        AdminVerb::Wallet {
            verb:
                WalletVerb::Credit {
                    operator,
                    external_id,
                    currency,
                    amount,
                    reference,
                },
        } => {
            let amount = Amount::parse(&amount, Currency::parse(&currency)?)?;
            let balance = admin
                .wallet_credit(&operator, &external_id, amount, &reference)
                .await?;
            // Written by hand: a serde_json::Value would pass the amount through f64.
            let balance = crate::money::json_number(balance);
            Ok((format!("{{\"balance\":{balance}}}"), ExitCode::SUCCESS))
        }
        AdminVerb::Session {
            verb:
                SessionVerb::Open {
                    provider,
                    operator,
                    external_id,
                    currency,
                    game,
                    ttl_minutes,
                },
        } => {
            let session = admin
                .session_open(
                    &provider,
                    &operator,
                    &external_id,
                    Currency::parse(&currency)?,
                    &game,
                    ttl_minutes.unwrap_or(settings.session_ttl_minutes),
                )
                .await?;
            ok(json!({ "sessionId": session.0 }))
        }
        AdminVerb::Session {
            verb: SessionVerb::Close { session },
        } => {
            admin.session_close(SessionId::parse(&session)?).await?;
            ok(json!({ "sessionId": session, "status": "closed" }))
        }
        AdminVerb::Reconcile => {
            let report = admin.reconcile().await?;
            let code = if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
            Ok((serde_json::to_string(&report)?, code))
        }
    }
}
