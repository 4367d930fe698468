//! Players, their wallets and game sessions: everything about a player that is not moving
//! money (that is the ledger's). An operator reaches only its own players: every query here
//! is keyed by (operator, external id).
//!
//! `history` reads a player's rounds page by page; `launch` fills a provider's game launch
//! URL.

mod history;
mod launch;

use deadpool_postgres::Pool;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::error::Error;
use crate::ledger::SessionId;
use crate::money::Currency;

pub use history::{HistoryPage, HistoryQuery, RoundFilter, MAX_PAGE};
pub use launch::{check_launch_template, launch_url, LaunchFields};

/// A player's wallet in one currency, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerWallet {
    pub player_id: Uuid,
    /// Whether this call created the player or the wallet.
    pub created: bool,
    pub blocked: bool,
    pub currency: Currency,
    pub balance: Decimal,
    pub locked: Decimal,
}

impl PlayerWallet {
    /// The part of the balance that may be withdrawn.
    pub fn withdrawable(&self) -> Decimal {
        (self.balance - self.locked).max(Decimal::ZERO)
    }
}

text_enum! {
    /// Whether a player may play (`players.status`).
    PlayerStatus {
        Active = "active",
        Blocked = "blocked",
    }
}

/// A session opened for a game launch.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub id: SessionId,
    pub player_id: Uuid,
    /// RFC 3339.
    pub expires_at: String,
    /// The provider's launch URL template, if it has one.
    pub launch_url_template: Option<String>,
}

pub struct Players {
    pool: Pool,
}

const WALLET: &str = "
SELECT p.id, p.status <> 'active', w.currency, w.balance, w.locked
  FROM players p JOIN wallets w ON w.player_id = p.id
 WHERE p.operator_id = $1 AND p.external_id = $2 AND ($3::text IS NULL OR w.currency = $3)
 ORDER BY w.currency
 LIMIT 2";

impl Players {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Creates a player of `operator` with a wallet in `currency`, or finds them. Idempotent.
    pub async fn create(
        &self,
        operator: &str,
        external_id: &str,
        currency: Currency,
    ) -> Result<PlayerWallet, Error> {
        check_external_id(external_id)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let new_player = tx
            .execute(
                "INSERT INTO players (id, operator_id, external_id) VALUES ($1, $2, $3)
                 ON CONFLICT ON CONSTRAINT players_operator_external_unique DO NOTHING",
                &[&Uuid::now_v7(), &operator, &external_id],
            )
            .await?;
        let new_wallet = tx
            .execute(
                "INSERT INTO wallets (id, player_id, currency)
                 SELECT $1, id, $4 FROM players WHERE operator_id = $2 AND external_id = $3
                 ON CONFLICT ON CONSTRAINT wallets_player_currency_unique DO NOTHING",
                &[&Uuid::now_v7(), &operator, &external_id, &currency.code()],
            )
            .await?;
        tx.commit().await?;
        // Back to the pool before `wallet` takes one (see `open_session`).
        drop(client);
        let mut wallet = self.wallet(operator, external_id, Some(currency)).await?;
        wallet.created = new_player + new_wallet > 0;
        Ok(wallet)
    }

    /// The player's wallet in `currency`; without a currency, the player's only wallet.
    pub async fn wallet(
        &self,
        operator: &str,
        external_id: &str,
        currency: Option<Currency>,
    ) -> Result<PlayerWallet, Error> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(WALLET).await?;
        let code = currency.map(|c| c.code());
        let rows = client
            .query(&stmt, &[&operator, &external_id, &code])
            .await?;
        let row = match rows.as_slice() {
            [row] => row,
            [] => return Err(Error::PlayerNotFound),
            _ => {
                return Err(Error::MissingField(
                    "currency (the player has several wallets)".into(),
                ))
            }
        };
        Ok(PlayerWallet {
            player_id: row.try_get(0)?,
            created: false,
            blocked: row.try_get(1)?,
            currency: Currency::parse(row.try_get(2)?)
                .map_err(|e| Error::Internal(anyhow::anyhow!("wallet currency: {e}")))?,
            balance: row.try_get(3)?,
            locked: row.try_get(4)?,
        })
    }

    /// Blocks or unblocks a player: a blocked player cannot bet, be launched into a game or
    /// receive deposits.
    pub async fn set_blocked(
        &self,
        operator: &str,
        external_id: &str,
        blocked: bool,
    ) -> Result<(), Error> {
        let status = if blocked {
            PlayerStatus::Blocked
        } else {
            PlayerStatus::Active
        }
        .as_str();
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

    /// Opens a game session for `provider` on the player's wallet in `currency`.
    pub async fn open_session(
        &self,
        provider: &str,
        operator: &str,
        external_id: &str,
        currency: Currency,
        game: &str,
        ttl_minutes: u32,
    ) -> Result<OpenedSession, Error> {
        if game.is_empty() || game.len() > 128 {
            return Err(Error::bad_value("gameId must be 1 to 128 characters"));
        }
        let minutes = i32::try_from(ttl_minutes)
            .map_err(|_| Error::bad_value("session lifetime too long"))?;
        // No connection is held while `wallet` asks for one: a pool's worth of launches at
        // once would otherwise wait on each other.
        let provider_row = self
            .pool
            .get()
            .await?
            .query_opt(
                "SELECT status = 'active', launch_url_template FROM counterparties
                  WHERE id = $1 AND role = 'provider'",
                &[&provider],
            )
            .await?
            .ok_or_else(|| Error::bad_value("unknown provider"))?;
        if !provider_row.try_get::<_, bool>(0)? {
            return Err(Error::bad_value("provider disabled"));
        }
        let launch_url_template: Option<String> = provider_row.try_get(1)?;
        let wallet = self.wallet(operator, external_id, Some(currency)).await?;
        if wallet.blocked {
            return Err(Error::PlayerBlocked);
        }
        let session = Uuid::now_v7();
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "INSERT INTO sessions (id, player_id, wallet_id, provider_id, game_id, expires_at)
                 SELECT $1, $2, w.id, $3, $4, now() + make_interval(mins => $6)
                   FROM wallets w WHERE w.player_id = $2 AND w.currency = $5
                 RETURNING to_json(expires_at)::text",
                &[
                    &session,
                    &wallet.player_id,
                    &provider,
                    &game,
                    &currency.code(),
                    &minutes,
                ],
            )
            .await?;
        let expires_json: String = row.try_get(0)?;
        Ok(OpenedSession {
            id: SessionId(session),
            player_id: wallet.player_id,
            expires_at: expires_json.trim_matches('"').to_string(),
            launch_url_template,
        })
    }
}

fn check_external_id(external_id: &str) -> Result<(), Error> {
    if external_id.is_empty()
        || external_id.len() > 128
        || external_id.chars().any(char::is_control)
    {
        return Err(Error::bad_value(
            "playerExternalId must be 1 to 128 printable characters",
        ));
    }
    Ok(())
}
