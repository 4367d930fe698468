//! The command line: `serve`, `migrate` and the admin verbs. Admin verbs print one JSON
//! object on stdout; logs go to stderr.
//!
//! Every command takes the database flags (`DatabaseSettings`); the server and crypto
//! flags belong to `serve` alone, and each admin verb takes only its own.

mod admin;
mod demo;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::config::{DatabaseSettings, ServerSettings};
use crate::db::Database;

#[derive(Parser)]
#[command(name = "croupier", version, about = "Game-aggregator wallet server")]
struct Cli {
    #[command(flatten)]
    database: DatabaseSettings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the HTTP server (with its own PostgreSQL when DATABASE_URL is unset).
    // Boxed: the server's settings outweigh every other command.
    Serve(Box<ServerSettings>),
    /// Applies the database migrations and exits.
    Migrate,
    /// Operates the wallet without SQL; every verb prints one JSON object.
    Admin {
        #[command(subcommand)]
        verb: admin::AdminVerb,
    },
}

/// Database connections of a one-shot command (`migrate`, an admin verb): a verb may hold
/// a few at once, as the server's queries it reuses were written for a pool.
const COMMAND_POOL_SIZE: usize = 16;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let format = match crate::telemetry::logs::Format::from_env() {
        Ok(format) => format,
        Err(e) => {
            eprintln!("croupier: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::telemetry::logs::init(
        format,
        match cli.command {
            Command::Serve(_) => "info",
            _ => "warn",
        },
    );
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
            Command::Serve(settings) => serve::serve(&cli.database, &settings)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Migrate => migrate(&cli.database).await.map(|()| ExitCode::SUCCESS),
            Command::Admin { verb } => admin::run(&cli.database, verb).await,
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

async fn migrate(database: &DatabaseSettings) -> anyhow::Result<()> {
    let db = Database::open(database, COMMAND_POOL_SIZE, crate::db::Limits::unlimited()).await?;
    println!("{}", json!({"migrated": true}));
    db.close(false).await
}
