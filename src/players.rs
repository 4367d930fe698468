//! Players, their wallets and game sessions: everything about a player that is not moving
//! money (that is the ledger's). An operator reaches only its own players: every query here
//! is keyed by (operator, external id).

use deadpool_postgres::Pool;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::error::Error;
use crate::ledger::SessionId;
use crate::money::Currency;

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

/// History filter on round state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundFilter {
    All,
    Ended,
    Ongoing,
}

/// What history to read.
#[derive(Debug, Clone, Copy)]
pub struct HistoryQuery<'a> {
    pub filter: RoundFilter,
    /// Lower bound of a round's start: RFC 3339 or epoch milliseconds.
    pub from: Option<&'a str>,
    /// Upper bound (exclusive), same forms.
    pub to: Option<&'a str>,
    /// Page size, 1 to `MAX_PAGE`.
    pub limit: i64,
    /// A previous page's `next_cursor`.
    pub cursor: Option<&'a str>,
}

/// One page of a player's history, newest round first.
#[derive(Debug)]
pub struct HistoryPage {
    /// Each round as a JSON object built by the database (exact amounts).
    pub rounds: Vec<String>,
    /// Where the next page starts; None on the last page.
    pub next_cursor: Option<String>,
}

/// Largest history page.
pub const MAX_PAGE: i64 = 100;

pub struct Players {
    pool: Pool,
}

const WALLET: &str = "
SELECT p.id, p.status = 'blocked', w.currency, w.balance, w.locked
  FROM players p JOIN wallets w ON w.player_id = p.id
 WHERE p.operator_id = $1 AND p.external_id = $2 AND ($3::text IS NULL OR w.currency = $3)
 ORDER BY w.currency
 LIMIT 2";

/// Rounds: a player's bets grouped by (provider, gameRoundId); a bet without a round id is a
/// round of its own. A round is ended when none of its bets is open. Keyset-paginated on
/// (start, provider, round key), which never change once a round exists, so pages neither
/// skip nor repeat rounds while new bets arrive.
const HISTORY: &str = "
WITH rounds AS (
    SELECT b.provider_id,
           CASE WHEN b.round_id IS NULL THEN 'b:' || b.bet_id ELSE 'r:' || b.round_id END AS round_key,
           min(b.created_at) AS started_at,
           bool_and(b.state <> 'open') AS ended,
           json_build_object(
               'roundId', coalesce(min(b.round_id), min(b.bet_id)),
               'providerId', b.provider_id,
               'gameId', min(s.game_id),
               'currency', min(w.currency),
               'status', CASE WHEN bool_and(b.state <> 'open') THEN 'END' ELSE 'ING' END,
               'startedAt', min(b.created_at),
               'endedAt', CASE WHEN bool_and(b.state <> 'open')
                               THEN max(greatest(b.settled_at, b.refunded_at, b.created_at)) END,
               'totalBet', coalesce(sum(b.stake) FILTER (WHERE b.state <> 'refunded'), 0),
               'totalWin', coalesce(sum(b.win) FILTER (WHERE b.state <> 'refunded'), 0),
               'bets', json_agg(json_build_object(
                   'betId', b.bet_id,
                   'state', b.state,
                   'betAmount', b.stake,
                   'winAmount', b.win,
                   'betTransactionId', b.bet_tx,
                   'winTransactionId', b.win_tx,
                   'refundTransactionId', b.refund_tx,
                   'createdAt', b.created_at) ORDER BY b.created_at, b.bet_id)
           ) AS round
      FROM bets b
      JOIN sessions s ON s.id = b.session_id
      JOIN wallets w ON w.id = b.wallet_id
     WHERE b.player_id = $1 AND b.state <> 'tombstone'
     GROUP BY b.provider_id, round_key
)
SELECT started_at::text, provider_id, round_key, round::text
  FROM rounds
 WHERE ($2 = 'ALL' OR ($2 = 'END') = ended)
   AND ($3::text IS NULL OR started_at >= parse_time($3))
   AND ($4::text IS NULL OR started_at < parse_time($4))
   AND ($5::text IS NULL OR (started_at, provider_id, round_key) < ($5::timestamptz, $6, $7))
 ORDER BY started_at DESC, provider_id DESC, round_key DESC
 LIMIT $8";

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
        let client = self.pool.get().await?;
        let provider_row = client
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

    /// One page of the player's rounds, newest first.
    pub async fn history(
        &self,
        operator: &str,
        external_id: &str,
        query: &HistoryQuery<'_>,
    ) -> Result<HistoryPage, Error> {
        let HistoryQuery {
            filter,
            from,
            to,
            limit,
            cursor,
        } = *query;
        let limit = limit.clamp(1, MAX_PAGE);
        let client = self.pool.get().await?;
        let player: Uuid = client
            .query_opt(
                "SELECT id FROM players WHERE operator_id = $1 AND external_id = $2",
                &[&operator, &external_id],
            )
            .await?
            .ok_or(Error::PlayerNotFound)?
            .try_get(0)?;
        let filter = match filter {
            RoundFilter::All => "ALL",
            RoundFilter::Ended => "END",
            RoundFilter::Ongoing => "ING",
        };
        let from = from.map(time_bound).transpose()?;
        let to = to.map(time_bound).transpose()?;
        let after = cursor.map(Cursor::decode).transpose()?;
        let (after_start, after_provider, after_key) = match &after {
            Some(c) => (
                Some(c.started_at.as_str()),
                Some(c.provider_id.as_str()),
                Some(c.round_key.as_str()),
            ),
            None => (None, None, None),
        };
        let stmt = client
            .prepare_typed_cached(
                HISTORY,
                &[
                    tokio_postgres::types::Type::UUID,
                    tokio_postgres::types::Type::TEXT,
                    tokio_postgres::types::Type::TEXT,
                    tokio_postgres::types::Type::TEXT,
                    tokio_postgres::types::Type::TEXT,
                    tokio_postgres::types::Type::TEXT,
                    tokio_postgres::types::Type::TEXT,
                    tokio_postgres::types::Type::INT8,
                ],
            )
            .await?;
        let rows = client
            .query(
                &stmt,
                &[
                    &player,
                    &filter,
                    &from,
                    &to,
                    &after_start,
                    &after_provider,
                    &after_key,
                    &(limit + 1),
                ],
            )
            .await
            .map_err(|e| match e.as_db_error() {
                // A cursor or bound PostgreSQL cannot read as a time.
                Some(db) if db.code().code().starts_with("22") => {
                    Error::bad_value("from, to or cursor is not a valid time")
                }
                _ => e.into(),
            })?;
        let mut rounds = Vec::with_capacity(rows.len());
        let mut next_cursor = None;
        for (i, row) in rows.iter().enumerate() {
            if i as i64 == limit {
                // There is more: the page ends with the previous round.
                if let Some(last) = rows.get(i - 1) {
                    next_cursor = Some(
                        Cursor {
                            started_at: last.try_get(0)?,
                            provider_id: last.try_get(1)?,
                            round_key: last.try_get(2)?,
                        }
                        .encode(),
                    );
                }
                break;
            }
            rounds.push(row.try_get(3)?);
        }
        Ok(HistoryPage {
            rounds,
            next_cursor,
        })
    }
}

/// Placeholders a launch URL template may use.
const LAUNCH_PLACEHOLDERS: &[&str] = &[
    "{sessionId}",
    "{gameId}",
    "{language}",
    "{currency}",
    "{mode}",
    "{returnUrl}",
    "{playerId}",
];

/// A launch URL template must be an http(s) URL that names the session.
pub fn check_launch_template(template: &str) -> Result<(), Error> {
    let scheme_ok = template.starts_with("https://") || template.starts_with("http://");
    if !scheme_ok || template.len() > 2048 || !template.contains("{sessionId}") {
        return Err(Error::bad_value(
            "the launch URL template must be an http(s) URL containing {sessionId}",
        ));
    }
    Ok(())
}

/// What a launch URL is made of.
#[derive(Debug, Clone)]
pub struct LaunchFields<'a> {
    pub session: SessionId,
    pub player_id: Uuid,
    pub game: &'a str,
    pub language: &'a str,
    pub currency: Currency,
    pub mode: &'a str,
    pub return_url: &'a str,
}

/// Fills a launch URL template, every value percent-encoded.
pub fn launch_url(template: &str, f: &LaunchFields<'_>) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // RFC 3986 unreserved characters stay as they are.
    const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let session = f.session.0.to_string();
    let player = f.player_id.to_string();
    let values = [
        session.as_str(),
        f.game,
        f.language,
        f.currency.code(),
        f.mode,
        f.return_url,
        player.as_str(),
    ];
    let mut url = template.to_string();
    for (placeholder, value) in LAUNCH_PLACEHOLDERS.iter().zip(values) {
        if url.contains(placeholder) {
            let encoded = utf8_percent_encode(value, COMPONENT).to_string();
            url = url.replace(placeholder, &encoded);
        }
    }
    url
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

/// A time bound: epoch milliseconds (`1719766120806`) or an RFC 3339 time with its offset
/// (`2026-11-21T10:00:00Z`, `2026-11-21T10:00:00.5+02:00`); PostgreSQL reads it
/// (`parse_time`). Anything else is refused rather than guessed at.
fn time_bound(text: &str) -> Result<String, Error> {
    let millis = !text.is_empty() && text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit());
    if millis || is_rfc3339(text) {
        return Ok(text.to_string());
    }
    Err(Error::bad_value(
        "from and to are epoch milliseconds or RFC 3339 times with an offset",
    ))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, shape only (PostgreSQL checks the values).
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(digits(0..4) && at(4, b"-") && digits(5..7) && at(7, b"-") && digits(8..10))
        || !(at(10, b"Tt") && digits(11..13) && at(13, b":") && digits(14..16))
        || !(at(16, b":") && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        i += 1;
        let start = i;
        while at(i, b"0123456789") {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1..i + 3) && at(i + 3, b":") && digits(i + 4..i + 6) && i + 6 == b.len()
        }
        _ => false,
    }
}

/// Where a history page ends: the last round's sort key. Opaque to callers (hex of JSON).
struct Cursor {
    started_at: String,
    provider_id: String,
    round_key: String,
}

impl Cursor {
    fn encode(&self) -> String {
        let json = serde_json::json!([self.started_at, self.provider_id, self.round_key]);
        hex::encode(json.to_string())
    }

    fn decode(text: &str) -> Result<Self, Error> {
        let bad = || Error::bad_value("cursor is not one this server gave");
        let bytes = hex::decode(text).map_err(|_| bad())?;
        let parts: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        match <[String; 3]>::try_from(parts) {
            Ok([started_at, provider_id, round_key]) => Ok(Self {
                started_at,
                provider_id,
                round_key,
            }),
            Err(_) => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_urls_encode_every_value() {
        let template = "https://games.example/play?s={sessionId}&g={gameId}&l={language}&r={returnUrl}&m={mode}";
        let fields = LaunchFields {
            session: SessionId(Uuid::nil()),
            player_id: Uuid::nil(),
            game: "slot 1&x=2",
            language: "en",
            currency: Currency::parse("USD").expect("known"),
            mode: "real",
            return_url: "https://casino.example/back?a=1",
        };
        assert_eq!(
            launch_url(template, &fields),
            "https://games.example/play?s=00000000-0000-0000-0000-000000000000&g=slot%201%26x%3D2&l=en&r=https%3A%2F%2Fcasino.example%2Fback%3Fa%3D1&m=real"
        );
        assert!(check_launch_template(template).is_ok());
        assert!(check_launch_template("ftp://x/{sessionId}").is_err());
        assert!(check_launch_template("https://x/no-session").is_err());
    }

    #[test]
    fn time_bounds_are_epoch_millis_or_rfc3339_with_offset() {
        for ok in [
            "1719766120806",
            "0",
            "2026-11-21T10:00:00Z",
            "2026-11-21T10:00:00.123456+02:00",
            "2026-11-21t10:00:00z",
        ] {
            assert!(time_bound(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "yesterday",
            "infinity",
            "epoch",
            "2026-11-21",
            "2026-11-21 10:00",
            "2026-11-21T10:00:00",
            "2026-11-21T10:00:00.Z",
            "2026-11-21T10:00:00+0200",
            "-5",
            "1e12",
            "99999999999999999999",
        ] {
            assert!(time_bound(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor {
            started_at: "2026-11-21 12:00:00.123456+00".into(),
            provider_id: "p".into(),
            round_key: "r:1".into(),
        };
        let back = Cursor::decode(&c.encode()).expect("decodes");
        assert_eq!(
            (back.started_at, back.provider_id, back.round_key),
            (c.started_at, c.provider_id, c.round_key)
        );
        assert!(Cursor::decode("zz").is_err());
        assert!(Cursor::decode(&hex::encode("[1,2]")).is_err());
    }
}
