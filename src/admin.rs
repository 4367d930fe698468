//! Operating the server without SQL: onboarding counterparties, players, wallets and
//! sessions. Every function here is one admin verb of the CLI (`croupier admin …`), which
//! prints its result as one JSON object.

use deadpool_postgres::Pool;
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::error::Error;
use crate::ledger::{Ledger, SessionId, TransferKind};
use crate::money::{Amount, Currency};
use crate::players::Players;

/// A new counterparty's credentials. The secret is shown once, here.
#[derive(Debug, Serialize)]
pub struct Credentials {
    pub id: String,
    pub secret: String,
}

/// Admin operations over one database.
pub struct Admin {
    pool: Pool,
    players: Players,
    ledger: Ledger,
}

impl Admin {
    pub fn new(pool: Pool) -> Self {
        Self {
            players: Players::new(pool.clone()),
            ledger: Ledger::new(pool.clone()),
            pool,
        }
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
                    &role,
                    &credentials.secret,
                    &standalone_wins,
                ],
            )
            .await?;
        Ok(credentials)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Chooses the rail (`inabit` or `b2binpay`) of an operator's crypto payouts.
    pub async fn operator_set_payout_rail(&self, operator: &str, rail: &str) -> Result<(), Error> {
        if crate::ledger::crypto::Rail::parse(rail).is_err() {
            return Err(Error::bad_value("rail must be inabit or b2binpay"));
        }
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE counterparties SET payout_rail = $2 WHERE id = $1 AND role = 'operator'",
                &[&operator, &rail],
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
        let client = self.pool.get().await?;
        let is_operator = client
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

    /// Creates `count` players of `operator` (external ids `load-1` … `load-N`) with wallets
    /// in `currency` funded with `funds` each (through the ledger, journaled) and an open
    /// session of `provider` each, in a few set-based statements. For load tests and
    /// benchmarks. Session ids are `load_session_id(provider, n)`, so a pgbench script can
    /// name a player's session without a lookup. Returns them in player order.
    pub async fn load_players(
        &self,
        operator: &str,
        provider: &str,
        count: i32,
        funds: Amount,
    ) -> Result<Vec<Uuid>, Error> {
        if !(1..=10_000_000).contains(&count) {
            return Err(Error::bad_value("count must be 1 to 10,000,000"));
        }
        let currency = funds.currency().code();
        let funds = funds.value();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO players (id, operator_id, external_id)
             SELECT gen_random_uuid(), $1, 'load-' || n FROM generate_series(1, $2) n
             ON CONFLICT ON CONSTRAINT players_operator_external_unique DO NOTHING",
            &[&operator, &count],
        )
        .await?;
        tx.execute(
            "INSERT INTO wallets (id, player_id, currency)
             SELECT gen_random_uuid(), p.id, $3 FROM players p
              WHERE p.operator_id = $1 AND p.external_id = ANY
                    (SELECT 'load-' || n FROM generate_series(1, $2) n)
             ON CONFLICT ON CONSTRAINT wallets_player_currency_unique DO NOTHING",
            &[&operator, &count, &currency],
        )
        .await?;
        tx.execute(
            "SELECT count(*) FROM generate_series(1, $2) n,
                    LATERAL transfer('deposit', $1, 'load-' || n, $3, $4,
                                     'load-funding-' || n || '-' || $5::text,
                                     gen_random_uuid(), gen_random_uuid())",
            &[
                &operator,
                &count,
                &currency,
                &funds,
                &Uuid::now_v7().to_string(),
            ],
        )
        .await?;
        let rows = tx
            .query(
                "INSERT INTO sessions (id, player_id, wallet_id, provider_id, game_id, expires_at)
                 SELECT load_session_id($3, n), p.id, w.id, $3, 'load-game', now() + interval '7 days'
                   FROM generate_series(1, $2) n
                   JOIN players p ON p.operator_id = $1 AND p.external_id = 'load-' || n
                   JOIN wallets w ON w.player_id = p.id AND w.currency = $4
                 ORDER BY n
                 RETURNING id",
                &[&operator, &count, &provider, &currency],
            )
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(Error::from))
            .collect()
    }

    /// Proves the books balance (see `ledger::reconcile`).
    pub async fn reconcile(&self) -> anyhow::Result<crate::ledger::reconcile::Report> {
        let mut client = self.pool.get().await?;
        crate::ledger::reconcile::run(&mut client).await
    }
}
