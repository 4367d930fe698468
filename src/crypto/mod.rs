//! Crypto top-ups and payouts: inabit (deposit addresses, deposits, withdrawals, Remote
//! Approver) and B2BINPAY (payouts).
//!
//! Invariants this module keeps (with the SQL functions of `sql/functions/crypto_*.sql`):
//! - a webhook is a hint: no balance changes until the deposit has been read back from
//!   inabit's API, and it is the API's amount, address and status that are applied;
//! - every deposit effect is applied once (inabit's transaction id + target state), states
//!   only move forward;
//! - a payout's amount leaves the wallet (a hold) before any provider call, and comes back
//!   only on a final failure;
//! - a payout is never sent twice: inabit is searched for our payout id (the withdrawal's
//!   note) before any resubmission, and B2BINPAY gets the same idempotency key on every try;
//! - crypto work runs on its own small pool, never the bet path's, and no database
//!   connection (nor transaction, nor lock) is held across a provider call: a slow provider
//!   cannot take connections from bets.
//!
//! The jobs by file: `addresses` (deposit addresses), `deposits` (webhooks, the event worker,
//! polling), `payouts` (sending and tracking), `approver` (inabit's Remote Approver),
//! `callbacks` (B2BINPAY), `jobs` (the background loops), `status`; their SQL is in `sql`.

mod addresses;
mod approver;
pub mod b2binpay;
mod callbacks;
mod config;
mod deposits;
pub mod http;
pub mod inabit;
mod jobs;
mod payouts;
mod sql;
mod status;
pub mod webhooks;

use std::sync::Mutex;

use deadpool_postgres::Pool;

use crate::error::Error;
use crate::ledger::crypto::CryptoLedger;
pub use addresses::DepositAddress;
use b2binpay::B2binpay;
pub use config::{AssetIds, CryptoConfig};
pub use deposits::{read_webhook, EventOutcome, Webhook};
use inabit::Inabit;

pub struct Crypto {
    config: CryptoConfig,
    /// The crypto pool (see `CryptoConfig::db_pool_size`).
    pool: Pool,
    ledger: CryptoLedger,
    inabit: Inabit,
    b2binpay: B2binpay,
    /// Wakes the event worker when a webhook arrives.
    wake: tokio::sync::Notify,
    jobs: Mutex<jobs::JobStatus>,
    /// One address creation at a time per player in this process.
    address_turns: addresses::Turns,
    webhooks: webhooks::Webhooks,
}

impl Crypto {
    /// `pool` is the crypto pool: never the one bets run on.
    pub fn new(config: CryptoConfig, pool: Pool) -> anyhow::Result<Self> {
        // No redirect is followed: a provider URL answering 3xx (a hijacked name, a wrong
        // proxy) must not send a money-moving request somewhere else.
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            inabit: Inabit::new(config.inabit.clone(), http.clone(), pool.clone()),
            b2binpay: B2binpay::new(config.b2binpay.clone(), http),
            ledger: CryptoLedger::new(pool.clone()),
            pool,
            wake: tokio::sync::Notify::new(),
            jobs: Mutex::new(jobs::JobStatus::default()),
            address_turns: addresses::Turns::default(),
            webhooks: webhooks::Webhooks::new(config.webhooks),
            config,
        })
    }

    pub fn ledger(&self) -> &CryptoLedger {
        &self.ledger
    }

    /// Stores the configured inabit login token unless the database already has one (which
    /// is then the newer, refreshed token).
    pub async fn seed_login_token(&self) -> anyhow::Result<()> {
        self.inabit.seed_login_token().await
    }

    fn asset(&self, asset: &str, blockchain: &str) -> Result<&AssetIds, Error> {
        self.config
            .assets
            .iter()
            .find(|a| a.asset == asset && a.blockchain == blockchain)
            .ok_or_else(|| Error::bad_value(format!("{asset} on {blockchain} is not offered")))
    }
}
