//! Load generator for croupier's provider bet API, and the side-by-side benchmark.
//!
//! - `client`: one keep-alive connection sending signed calls;
//! - `scenario`: what a virtual game provider sends and expects;
//! - `run`: closed and open loop engines with coordinated-omission-corrected latency;
//! - `players`: the load-test players and their sessions;
//! - `books`: the after-run check that every acknowledged bet is journaled and reconciles;
//! - `chaos`: the server under load while it is killed, its database crashed and the link
//!   between them broken, then the books against the players' own model;
//! - `bench`: pgbench on the ledger's own SQL versus the server over HTTP, in one run;
//! - `report`: summary lines, JSON and the latency-versus-throughput chart.

pub mod bench;
pub mod books;
pub mod chaos;
pub mod client;
pub mod players;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stages;

use croupier::admin::Admin;
use croupier::money::{Amount, Currency};

use crate::client::Signer;

/// A provider and its funded players with open sessions, made through the admin functions.
pub struct Fixture {
    pub provider: Signer,
    pub sessions: Vec<String>,
}

/// Creates a provider, a seamless operator whose wallet is at `wallet_url` (its makes
/// combined into `make-list` calls when `make_list`), and `players` players (`load-1` …) with
/// open sessions; their money is the casino's.
pub async fn seed_seamless(
    database_url: &str,
    players: i32,
    wallet_url: &str,
    make_list: bool,
) -> anyhow::Result<Fixture> {
    let pool = croupier::db::pool(database_url, 2, croupier::db::Limits::unlimited())?;
    let (mut client, connection) =
        croupier::db::link::connect(database_url, croupier::db::Limits::unlimited()).await?;
    tokio::spawn(connection);
    croupier::db::migrate::run(&mut client).await?;
    let admin = Admin::new(pool.clone());
    let provider = admin.provider_add("loadtest provider", true).await?;
    let operator = admin
        .operator_add_seamless("loadtest seamless operator", wallet_url)
        .await?;
    let change = croupier::seamless::admin::SettingsChange {
        make_list: Some(make_list),
        ..Default::default()
    };
    admin.operator_set_seamless(&operator.id, &change).await?;
    pool.close();
    let sessions = players::create(
        &mut client,
        &operator.id,
        &provider.id,
        players,
        "USD",
        rust_decimal::Decimal::ZERO,
    )
    .await?;
    Ok(Fixture {
        provider: Signer {
            id: provider.id,
            secret: provider.secret,
        },
        sessions,
    })
}

/// Creates a provider, an operator and `players` players with `funds` USD each.
pub async fn seed(database_url: &str, players: i32, funds: &str) -> anyhow::Result<Fixture> {
    let pool = croupier::db::pool(database_url, 2, croupier::db::Limits::unlimited())?;
    let (mut client, connection) =
        croupier::db::link::connect(database_url, croupier::db::Limits::unlimited()).await?;
    tokio::spawn(connection);
    croupier::db::migrate::run(&mut client).await?;
    let admin = Admin::new(pool.clone());
    let provider = admin.provider_add("loadtest provider", true).await?;
    let operator = admin.operator_add("loadtest operator").await?;
    pool.close();
    let funds = Amount::parse(funds, Currency::parse("USD")?)?;
    let sessions = players::create(
        &mut client,
        &operator.id,
        &provider.id,
        players,
        funds.currency().code(),
        funds.value(),
    )
    .await?;
    Ok(Fixture {
        provider: Signer {
            id: provider.id,
            secret: provider.secret,
        },
        sessions,
    })
}
