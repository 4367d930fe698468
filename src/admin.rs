//! Operating the server without SQL: onboarding counterparties, players, wallets and
//! sessions. Every function here is one admin verb of the CLI (`croupier admin …`), which
//! prints its result as one JSON object.

use deadpool_postgres::Pool;
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::error::Error;
use crate::ledger::{Ledger, SessionId};
use crate::money::{Amount, Currency};

/// A new counterparty's credentials. The secret is shown once, here.
#[derive(Debug, Serialize)]
pub struct Credentials {
    pub id: String,
    pub secret: String,
}

/// Admin operations over one database.
pub struct Admin {
    pool: Pool,
}

impl Admin {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// A new game provider. `standalone_wins`: a PayOut for an unknown betId is a standalone
    /// (jackpot) win; otherwise it is refused as "bet not found".
    pub async fn provider_add(
        &self,
        name: &str,
        standalone_wins: bool,
    ) -> Result<Credentials, Error> {
        self.counterparty_add(name, "provider", standalone_wins)
            .await
    }

    /// A new operator (casino).
    pub async fn operator_add(&self, name: &str) -> Result<Credentials, Error> {
        self.counterparty_add(name, "operator", false).await
    }

    async fn counterparty_add(
        &self,
        name: &str,
        role: &str,
        standalone_wins: bool,
    ) -> Result<Credentials, Error> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(Error::malformed("name must be 1 to 200 characters"));
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
                    &role,
                    &credentials.secret,
                    &standalone_wins,
                ],
            )
            .await?;
        Ok(credentials)
    }

    /// Enables or disables a counterparty. Servers drop it from their caches at once.
    pub async fn counterparty_set_status(&self, id: &str, active: bool) -> Result<(), Error> {
        let status = if active { "active" } else { "disabled" };
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE counterparties SET status = $2 WHERE id = $1",
                &[&id, &status],
            )
            .await?;
        if n == 0 {
            return Err(Error::malformed("no such counterparty"));
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
        if external_id.is_empty() || external_id.len() > 128 {
            return Err(Error::malformed("external id must be 1 to 128 characters"));
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let is_operator = tx
            .query_opt(
                "SELECT 1 FROM counterparties WHERE id = $1 AND role = 'operator'",
                &[&operator],
            )
            .await?
            .is_some();
        if !is_operator {
            return Err(Error::malformed("no such operator"));
        }
        tx.execute(
            "INSERT INTO players (id, operator_id, external_id) VALUES ($1, $2, $3)
             ON CONFLICT ON CONSTRAINT players_operator_external_unique DO NOTHING",
            &[&Uuid::now_v7(), &operator, &external_id],
        )
        .await?;
        let player: Uuid = tx
            .query_one(
                "SELECT id FROM players WHERE operator_id = $1 AND external_id = $2",
                &[&operator, &external_id],
            )
            .await?
            .try_get(0)?;
        tx.execute(
            "INSERT INTO wallets (id, player_id, currency) VALUES ($1, $2, $3)
             ON CONFLICT ON CONSTRAINT wallets_player_currency_unique DO NOTHING",
            &[&Uuid::now_v7(), &player, &currency.code()],
        )
        .await?;
        tx.commit().await?;
        Ok(player)
    }

    /// Blocks or unblocks a player: a blocked player cannot bet.
    pub async fn player_set_status(
        &self,
        operator: &str,
        external_id: &str,
        blocked: bool,
    ) -> Result<(), Error> {
        let status = if blocked { "blocked" } else { "active" };
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE players SET status = $3 WHERE operator_id = $1 AND external_id = $2",
                &[&operator, &external_id, &status],
            )
            .await?;
        if n == 0 {
            return Err(Error::PlayerNotFound);
        }
        Ok(())
    }

    /// Credits a player's wallet, idempotent by `reference` (the operator's transaction id).
    pub async fn wallet_credit(
        &self,
        operator: &str,
        external_id: &str,
        amount: Amount,
        reference: &str,
    ) -> Result<Decimal, Error> {
        if reference.is_empty() || reference.len() > 128 {
            return Err(Error::malformed("reference must be 1 to 128 characters"));
        }
        let ledger = Ledger::new(self.pool.clone());
        Ok(ledger
            .deposit(operator, external_id, amount, reference)
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
        if game.is_empty() || game.len() > 128 {
            return Err(Error::malformed("game id must be 1 to 128 characters"));
        }
        let client = self.pool.get().await?;
        let is_provider = client
            .query_opt(
                "SELECT 1 FROM counterparties WHERE id = $1 AND role = 'provider'",
                &[&provider],
            )
            .await?
            .is_some();
        if !is_provider {
            return Err(Error::malformed("no such provider"));
        }
        let session = Uuid::now_v7();
        let minutes = i32::try_from(ttl_minutes)
            .map_err(|_| Error::malformed("session lifetime too long"))?;
        let n = client
            .execute(
                "INSERT INTO sessions (id, player_id, wallet_id, provider_id, game_id, expires_at)
                 SELECT $1, p.id, w.id, $2, $3, now() + make_interval(mins => $6)
                   FROM players p JOIN wallets w ON w.player_id = p.id AND w.currency = $5
                  WHERE p.operator_id = $7 AND p.external_id = $4",
                &[
                    &session,
                    &provider,
                    &game,
                    &external_id,
                    &currency.code(),
                    &minutes,
                    &operator,
                ],
            )
            .await?;
        if n == 0 {
            return Err(Error::PlayerNotFound);
        }
        Ok(SessionId(session))
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
