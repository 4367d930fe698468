//! Deposit addresses: one per player, asset and blockchain, created at inabit on the first
//! request (a customer for the player, then an address for the customer).
//!
//! Guarantees, with no database connection held across an inabit call:
//! - one stored address per player, asset and blockchain (a unique constraint; the first
//!   stored one is the one every request answers);
//! - one inabit customer per player, kept as soon as inabit has created it, whatever
//!   happens to the address step; concurrent first requests do not create two: in this
//!   process they take turns per player (`Turns`), across servers the customer row is
//!   claimed first (`sql::CLAIM_CUSTOMER`) and a request that finds another server's claim
//!   waits for its customer; each step is committed on its own.
//!
//! Across servers, two first requests for one asset may both ask inabit for an address; the
//! first stored is the only one ever handed out, so no deposit can reach the other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use uuid::Uuid;

use super::{sql, Crypto};
use crate::error::{Error, IntegrationCause};
use crate::money::Currency;

/// A player's deposit address.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositAddress {
    pub player_external_id: String,
    pub asset: String,
    pub blockchain: String,
    pub address: String,
    /// The wallet currency deposits to this address are credited in.
    pub currency: String,
}

/// Per-player turns at creating addresses: a request waits for the one before it (which may
/// have created all it needs) rather than asking inabit in parallel. An async mutex, so that
/// waiting holds no thread and no connection; entries go once nobody holds or awaits them.
#[derive(Default)]
pub(super) struct Turns {
    players: Mutex<HashMap<Uuid, Weak<tokio::sync::Mutex<()>>>>,
}

impl Turns {
    async fn take(&self, player: Uuid) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = {
            let mut players = self.players.lock().unwrap_or_else(PoisonError::into_inner);
            players.retain(|_, turn| turn.strong_count() > 0);
            match players.get(&player).and_then(Weak::upgrade) {
                Some(turn) => turn,
                None => {
                    let turn = Arc::new(tokio::sync::Mutex::new(()));
                    players.insert(player, Arc::downgrade(&turn));
                    turn
                }
            }
        };
        turn.lock_owned().await
    }
}

/// The wallet an address credits.
struct Wallet {
    player: Uuid,
    id: Uuid,
    currency: String,
}

/// Which address is asked for.
struct Wanted<'a> {
    external_id: &'a str,
    asset: &'a str,
    blockchain: &'a str,
}

impl Crypto {
    /// The player's address for the asset, created at inabit on the first request.
    pub async fn deposit_address(
        &self,
        operator_id: &str,
        external_id: &str,
        asset: &str,
        blockchain: &str,
        currency: Option<Currency>,
    ) -> Result<DepositAddress, Error> {
        self.asset(asset, blockchain)?;
        let wanted = Wanted {
            external_id,
            asset,
            blockchain,
        };
        let wallet = self
            .address_wallet(operator_id, external_id, currency)
            .await?;
        if let Some(known) = self.known_address(&wanted, wallet.player).await? {
            return Ok(known);
        }
        let _turn = self.address_turns.take(wallet.player).await;
        // The request before ours may have created it.
        if let Some(known) = self.known_address(&wanted, wallet.player).await? {
            return Ok(known);
        }
        let customer = self.customer(wallet.player).await?;
        let address = self
            .inabit
            .customer_address(&customer, asset, blockchain)
            .await?;
        let scale = Currency::parse(&wallet.currency)
            .map(|c| c.scale() as i32)
            .map_err(|_| Error::Internal(anyhow::anyhow!("unknown wallet currency")))?;
        self.pool
            .get()
            .await?
            .execute(
                sql::INSERT_ADDRESS,
                &[
                    &Uuid::now_v7(),
                    &wallet.player,
                    &wallet.id,
                    &scale,
                    &asset,
                    &blockchain,
                    &address,
                ],
            )
            .await?;
        self.known_address(&wanted, wallet.player)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("stored address vanished")))
    }

    /// The one wallet of the player (of `currency` when given).
    async fn address_wallet(
        &self,
        operator_id: &str,
        external_id: &str,
        currency: Option<Currency>,
    ) -> Result<Wallet, Error> {
        let client = self.pool.get().await?;
        let wallets = client
            .query(
                sql::PLAYER_WALLETS,
                &[&operator_id, &external_id, &currency.map(|c| c.code())],
            )
            .await?;
        match wallets.as_slice() {
            [] => Err(Error::PlayerNotFound),
            [one] => Ok(Wallet {
                player: one.try_get(0)?,
                id: one.try_get(1)?,
                currency: one.try_get(2)?,
            }),
            _ => Err(Error::MissingField(
                "currency (the player has several wallets)".into(),
            )),
        }
    }

    async fn known_address(
        &self,
        wanted: &Wanted<'_>,
        player: Uuid,
    ) -> Result<Option<DepositAddress>, Error> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                sql::KNOWN_ADDRESS,
                &[&player, &wanted.asset, &wanted.blockchain],
            )
            .await?;
        row.map(|row| {
            Ok(DepositAddress {
                player_external_id: wanted.external_id.to_string(),
                asset: wanted.asset.to_string(),
                blockchain: wanted.blockchain.to_string(),
                address: row.try_get(0)?,
                currency: row.try_get(1)?,
            })
        })
        .transpose()
    }

    /// The player's inabit customer: the stored one, or one created now under a claim and
    /// stored as soon as inabit answers (our player id is the customer identifier). While
    /// another server holds the claim, waits for its customer, up to the claim's lifetime.
    async fn customer(&self, player: Uuid) -> Result<String, Error> {
        // Longer than a customer creation can take: a claim older than that is a dead
        // server's, and may be taken over.
        let claim_life = self.config.http_timeout * 2 + Duration::from_secs(10);
        let claim_ms = claim_life.as_millis() as i64;
        let deadline = tokio::time::Instant::now() + claim_life;
        loop {
            let client = self.pool.get().await?;
            let claim: Option<SystemTime> = client
                .query_opt(sql::CLAIM_CUSTOMER, &[&player, &claim_ms])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            if let Some(claim) = claim {
                drop(client);
                return self.create_customer(player, claim).await;
            }
            let stored: Option<String> = client
                .query_opt(sql::STORED_CUSTOMER, &[&player])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?
                .flatten();
            drop(client);
            if let Some(customer) = stored {
                return Ok(customer);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Integration {
                    cause: IntegrationCause::Unavailable,
                    message: "another server is creating the player's inabit customer".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates the customer at inabit under our claim (`claim`, its time) and keeps it, or
    /// gives the claim up when inabit did not create it.
    async fn create_customer(&self, player: Uuid, claim: SystemTime) -> Result<String, Error> {
        let customer = match self.inabit.create_customer(&player.to_string()).await {
            Ok(customer) => customer,
            Err(e) => {
                self.pool
                    .get()
                    .await?
                    .execute(sql::DROP_CUSTOMER_CLAIM, &[&player, &claim])
                    .await?;
                return Err(e.into());
            }
        };
        // inabit has it now: keeping it must not fail on a passing database error, or the
        // next request would create a second customer for the player.
        let mut tries = 0;
        let kept = loop {
            let kept = match self.pool.get().await {
                Ok(client) => client
                    .execute(sql::KEEP_CUSTOMER, &[&player, &customer, &claim])
                    .await
                    .map_err(Error::from),
                Err(e) => Err(Error::from(e)),
            };
            tries += 1;
            match kept {
                Err(e) if e.retryable() && tries < 5 => {
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                other => break other?,
            }
        };
        if kept != 1 {
            tracing::error!(%player, customer, "inabit customer created but not kept: its claim was taken over");
            return Err(Error::Internal(anyhow::anyhow!(
                "the customer claim of player {player} was taken over"
            )));
        }
        Ok(customer)
    }
}
