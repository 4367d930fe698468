//! Operating the server without SQL: onboarding counterparties, players, wallets and
//! sessions. Every function here is one admin verb of the CLI (`croupier admin …`), which
//! prints its result as one JSON object.

use deadpool_postgres::Pool;
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

pub use crate::auth::{CounterpartyStatus, Role};
use crate::crypto::EventOutcome;
use crate::crypto::{Crypto, CryptoConfig};
use crate::error::Error;
use crate::ledger::crypto::{CryptoLedger, DepositState, PayoutEnd};
/// What the crypto decisions answer, for the command line.
pub use crate::ledger::crypto::{ReopenOutcome, SettleOutcome};
use crate::ledger::{Ledger, SessionId, TransferKind};
use crate::money::{Amount, Currency};
pub use crate::players::PlayerStatus;
use crate::players::Players;

/// A new counterparty's credentials. The secret is shown once, here.
#[derive(Debug, Clone, Serialize)]
pub struct Credentials {
    pub id: String,
    pub secret: String,
}

/// Admin operations over one database.
pub struct Admin {
    pool: Pool,
    players: Players,
    ledger: Ledger,
    crypto_ledger: CryptoLedger,
}

impl Admin {
    pub fn new(pool: Pool) -> Self {
        Self {
            players: Players::new(pool.clone()),
            ledger: Ledger::new(pool.clone()),
            crypto_ledger: CryptoLedger::new(pool.clone()),
            pool,
        }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A new game provider. `standalone_wins`: a PayOut for an unknown betId is a standalone
    /// (jackpot) win; otherwise it is refused as "bet not found".
    pub async fn provider_add(
        &self,
        name: &str,
        standalone_wins: bool,
    ) -> Result<Credentials, Error> {
        self.counterparty_add(name, Role::Provider, standalone_wins)
            .await
    }

    /// A new operator (casino).
    pub async fn operator_add(&self, name: &str) -> Result<Credentials, Error> {
        self.counterparty_add(name, Role::Operator, false).await
    }

    async fn counterparty_add(
        &self,
        name: &str,
        role: Role,
        standalone_wins: bool,
    ) -> Result<Credentials, Error> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(Error::bad_value("name must be 1 to 200 characters"));
        }
        let credentials = Credentials {
            id: Uuid::new_v4().to_string(),
            secret: hex::encode(rand::random::<[u8; 32]>()),
        };
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO counterparties (id, name, role, secret, standalone_wins)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &credentials.id,
                    &name,
                    &role.as_str(),
                    &credentials.secret,
                    &standalone_wins,
                ],
            )
            .await?;
        Ok(credentials)
    }

    /// Chooses an operator's treasury: the rail (`inabit` or `b2binpay`) of its crypto
    /// payouts and the provider wallet on that rail they are sent from. Payouts held before
    /// keep the wallet they were held for.
    pub async fn operator_set_payout_rail(
        &self,
        operator: &str,
        rail: &str,
        wallet: &str,
    ) -> Result<(), Error> {
        if crate::ledger::crypto::Rail::parse(rail).is_err() {
            return Err(Error::bad_value("rail must be inabit or b2binpay"));
        }
        let wallet = wallet.trim();
        if wallet.is_empty() || wallet.len() > 200 || wallet.chars().any(char::is_control) {
            return Err(Error::bad_value("wallet must be a provider wallet id"));
        }
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE counterparties SET payout_rail = $2, payout_wallet = $3
                  WHERE id = $1 AND role = 'operator'",
                &[&operator, &rail, &wallet],
            )
            .await?;
        if n == 0 {
            return Err(Error::bad_value("no such operator"));
        }
        Ok(())
    }

    /// Whether the operator's crypto payouts may take value that did not come in as crypto
    /// (transfer-API deposits, winnings beyond what was deposited in crypto).
    pub async fn operator_set_fiat_crypto_payouts(
        &self,
        operator: &str,
        allowed: bool,
    ) -> Result<(), Error> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE counterparties SET fiat_crypto_payouts = $2
                  WHERE id = $1 AND role = 'operator'",
                &[&operator, &allowed],
            )
            .await?;
        if n == 0 {
            return Err(Error::bad_value("no such operator"));
        }
        Ok(())
    }

    /// Whether the operator's players may stake locked (detected, unconfirmed) deposits.
    pub async fn operator_set_locked_play(
        &self,
        operator: &str,
        allowed: bool,
    ) -> Result<(), Error> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE counterparties SET locked_play = $2 WHERE id = $1 AND role = 'operator'",
                &[&operator, &allowed],
            )
            .await?;
        if n == 0 {
            return Err(Error::bad_value("no such operator"));
        }
        Ok(())
    }

    /// Sets the rate of `asset` in `currency` (1 asset = `rate` currency), used by deposits and
    /// payouts from now on.
    pub async fn crypto_set_rate(
        &self,
        asset: &str,
        currency: Currency,
        rate: Decimal,
    ) -> Result<(), Error> {
        if rate <= Decimal::ZERO {
            return Err(Error::bad_value("rate must be more than zero"));
        }
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO crypto_rates (asset, currency, rate) VALUES ($1, $2, $3)
                 ON CONFLICT (asset, currency) DO UPDATE SET rate = $3, updated_at = now()",
                &[&asset, &currency.code(), &rate],
            )
            .await?;
        Ok(())
    }

    /// The open crypto review queue, oldest first.
    pub async fn crypto_reviews(&self) -> Result<Vec<serde_json::Value>, Error> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT r.id::text, r.subject, r.subject_id::text, pl.external_id, r.reason,
                        r.detail, to_char(r.created_at AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
                   FROM crypto_reviews r LEFT JOIN players pl ON pl.id = r.player_id
                  WHERE r.resolved_at IS NULL ORDER BY r.created_at",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(serde_json::json!({
                    "id": r.try_get::<_, String>(0)?,
                    "subject": r.try_get::<_, String>(1)?,
                    "subjectId": r.try_get::<_, String>(2)?,
                    "playerExternalId": r.try_get::<_, Option<String>>(3)?,
                    "reason": r.try_get::<_, String>(4)?,
                    "detail": r.try_get::<_, Option<String>>(5)?,
                    "createdAt": r.try_get::<_, String>(6)?,
                }))
            })
            .collect()
    }

    /// Marks a review entry as dealt with (any money correction is a separate, journaled
    /// operation).
    pub async fn crypto_resolve_review(&self, id: &str) -> Result<(), Error> {
        let id = Uuid::parse_str(id).map_err(|_| Error::bad_value("id must be a UUID"))?;
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE crypto_reviews SET resolved_at = now() WHERE id = $1 AND resolved_at IS NULL",
                &[&id],
            )
            .await?;
        if n == 0 {
            return Err(Error::bad_value("no open review with this id"));
        }
        Ok(())
    }

    /// Decides a credited deposit waiting in review: `completed` unlocks it, `reversed` takes
    /// the credit back. Returns what happened (`applied` when the decision took).
    pub async fn crypto_settle_deposit(
        &self,
        tx: &str,
        outcome: &str,
    ) -> Result<SettleOutcome, Error> {
        let outcome = DepositState::parse(outcome)?;
        self.crypto_ledger.deposit_settle(tx, outcome).await
    }

    /// Decides a payout waiting in review: paid keeps the amount out of the wallet, released
    /// gives it back. Returns what happened (`applied` when the decision took).
    pub async fn crypto_settle_payout(
        &self,
        operator: &str,
        transaction_id: &str,
        outcome: &str,
    ) -> Result<SettleOutcome, Error> {
        let end = PayoutEnd::parse(outcome)?;
        self.crypto_ledger
            .payout_settle(operator, transaction_id, end)
            .await
    }

    /// Gives a deposit in review that credited nothing a fresh start: reads it from inabit
    /// again (hence the integration settings) and applies it. Returns whether it was
    /// reopened and, if so, what applying it did.
    pub async fn crypto_reopen_deposit(
        &self,
        config: CryptoConfig,
        tx: &str,
    ) -> anyhow::Result<(ReopenOutcome, Option<EventOutcome>)> {
        let crypto = Crypto::new(config, self.pool.clone())?;
        Ok(crypto.reopen_deposit(tx).await?)
    }

    /// Enables or disables a counterparty. Servers drop it from their caches at once.
    pub async fn counterparty_set_status(
        &self,
        id: &str,
        status: CounterpartyStatus,
    ) -> Result<(), Error> {
        let status = status.as_str();
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE counterparties SET status = $2 WHERE id = $1",
                &[&id, &status],
            )
            .await?;
        if n == 0 {
            return Err(Error::bad_value("no such counterparty"));
        }
        Ok(())
    }

    /// Sets the URL template a provider's games are launched with (see `players::launch_url`).
    pub async fn provider_set_launch_url(
        &self,
        provider: &str,
        template: &str,
    ) -> Result<(), Error> {
        crate::players::check_launch_template(template)?;
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE counterparties SET launch_url_template = $2 WHERE id = $1 AND role = 'provider'",
                &[&provider, &template],
            )
            .await?;
        if n == 0 {
            return Err(Error::bad_value("no such provider"));
        }
        Ok(())
    }

    /// Creates a player of `operator` (or finds the existing one) with a wallet in
    /// `currency`. Idempotent.
    pub async fn player_add(
        &self,
        operator: &str,
        external_id: &str,
        currency: Currency,
    ) -> Result<Uuid, Error> {
        let is_operator = self
            .pool
            .get()
            .await?
            .query_opt(
                "SELECT 1 FROM counterparties WHERE id = $1 AND role = 'operator'",
                &[&operator],
            )
            .await?
            .is_some();
        if !is_operator {
            return Err(Error::bad_value("no such operator"));
        }
        Ok(self
            .players
            .create(operator, external_id, currency)
            .await?
            .player_id)
    }

    /// Blocks or unblocks a player.
    pub async fn player_set_status(
        &self,
        operator: &str,
        external_id: &str,
        blocked: bool,
    ) -> Result<(), Error> {
        self.players
            .set_blocked(operator, external_id, blocked)
            .await
    }

    /// Credits a player's wallet, idempotent by `reference` (the operator's transaction id).
    pub async fn wallet_credit(
        &self,
        operator: &str,
        external_id: &str,
        amount: Amount,
        reference: &str,
    ) -> Result<Decimal, Error> {
        let seamless = self
            .pool
            .get()
            .await?
            .query_opt(
                "SELECT 1 FROM seamless_operators WHERE operator_id = $1",
                &[&operator],
            )
            .await?
            .is_some();
        if seamless {
            return Err(Error::SeamlessOperator);
        }
        Ok(self
            .ledger
            .transfer(
                TransferKind::Deposit,
                operator,
                external_id,
                amount,
                reference,
            )
            .await?
            .balance)
    }

    /// Opens a game session for `provider` on the player's wallet in `currency`.
    pub async fn session_open(
        &self,
        provider: &str,
        operator: &str,
        external_id: &str,
        currency: Currency,
        game: &str,
        ttl_minutes: u32,
    ) -> Result<SessionId, Error> {
        Ok(self
            .players
            .open_session(provider, operator, external_id, currency, game, ttl_minutes)
            .await?
            .id)
    }

    /// Closes a session: no more bets on it (wins and refunds still land).
    pub async fn session_close(&self, session: SessionId) -> Result<(), Error> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE sessions SET status = 'closed' WHERE id = $1",
                &[&session.0],
            )
            .await?;
        if n == 0 {
            return Err(Error::SessionNotFound);
        }
        Ok(())
    }

    /// Proves the books balance (see `ledger::reconcile`).
    pub async fn reconcile(&self) -> anyhow::Result<crate::ledger::reconcile::Report> {
        let mut client = self.pool.get().await?;
        crate::ledger::reconcile::run(&mut client).await
    }
}
