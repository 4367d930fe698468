//! A player's history: rounds (bets grouped by provider and game round), newest first, in
//! keyset-paginated pages, and the time bounds and cursors a caller may pass.

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;
use uuid::Uuid;

use super::Players;
use crate::error::Error;

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

impl HistoryQuery<'_> {
    /// Refuses bounds that are not times and a cursor this server did not give, before any
    /// database work (PostgreSQL judges the values of the times).
    pub fn check(&self) -> Result<(), Error> {
        for bound in [self.from, self.to].into_iter().flatten() {
            time_bound(bound)?;
        }
        self.cursor.map(Cursor::decode).transpose()?;
        Ok(())
    }
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

/// Rounds: a player's bets grouped by (provider, gameRoundId); a bet without a round id is a
/// round of its own. A round is ended when none of its bets is open. Keyset-paginated on
/// (start, provider, round key), which never change once a round exists, so pages neither
/// skip nor repeat rounds while new bets arrive.
///
/// In two steps: the page's rounds are chosen from their keys alone (a narrow aggregate over
/// the player's bets, nothing built), then only those rounds are read in full and turned into
/// JSON; a player with a long past costs a page no more than its own rounds' bets.
const HISTORY: &str = "
WITH rounds AS (
    SELECT b.provider_id,
           CASE WHEN b.round_id IS NULL THEN 'b:' || b.bet_id ELSE 'r:' || b.round_id END AS round_key,
           min(b.created_at) AS started_at,
           bool_and(b.state <> 'open') AS ended
      FROM bets b
     WHERE b.player_id = $1 AND b.state <> 'tombstone'
     GROUP BY b.provider_id, round_key
), page AS (
    SELECT provider_id, round_key, started_at, ended
      FROM rounds
     WHERE ($2 = 'ALL' OR ($2 = 'END') = ended)
       AND ($3::text IS NULL OR started_at >= parse_time($3))
       AND ($4::text IS NULL OR started_at < parse_time($4))
       AND ($5::text IS NULL OR (started_at, provider_id, round_key) < ($5::timestamptz, $6, $7))
     ORDER BY started_at DESC, provider_id DESC, round_key DESC
     LIMIT $8
)
SELECT p.started_at::text, p.provider_id, p.round_key,
       json_build_object(
           'roundId', coalesce(min(b.round_id), min(b.bet_id)),
           'providerId', p.provider_id,
           'gameId', min(s.game_id),
           'currency', min(w.currency),
           'status', CASE WHEN p.ended THEN 'END' ELSE 'ING' END,
           'startedAt', p.started_at,
           'endedAt', CASE WHEN p.ended
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
       )::text
  FROM page p
  JOIN bets b ON b.player_id = $1 AND b.state <> 'tombstone' AND b.provider_id = p.provider_id
             AND p.round_key = CASE WHEN b.round_id IS NULL THEN 'b:' || b.bet_id
                                    ELSE 'r:' || b.round_id END
  JOIN sessions s ON s.id = b.session_id
  JOIN wallets w ON w.id = b.wallet_id
 GROUP BY p.started_at, p.provider_id, p.round_key, p.ended
 ORDER BY p.started_at DESC, p.provider_id DESC, p.round_key DESC";

impl Players {
    /// One page of the player's rounds, newest first.
    pub async fn history(
        &self,
        operator: &str,
        external_id: &str,
        query: &HistoryQuery<'_>,
    ) -> Result<HistoryPage, Error> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let client = self.pool.get().await?;
        let player: Uuid = client
            .query_opt(
                "SELECT id FROM players WHERE operator_id = $1 AND external_id = $2",
                &[&operator, &external_id],
            )
            .await?
            .ok_or(Error::PlayerNotFound)?
            .try_get(0)?;
        let filter = match query.filter {
            RoundFilter::All => "ALL",
            RoundFilter::Ended => "END",
            RoundFilter::Ongoing => "ING",
        };
        let from = query.from.map(time_bound).transpose()?;
        let to = query.to.map(time_bound).transpose()?;
        let after = query.cursor.map(Cursor::decode).transpose()?;
        let (after_start, after_provider, after_key) = match &after {
            Some(c) => (
                Some(c.started_at.as_str()),
                Some(c.provider_id.as_str()),
                Some(c.round_key.as_str()),
            ),
            None => (None, None, None),
        };
        let text = Type::TEXT;
        let stmt = client
            .prepare_typed_cached(
                HISTORY,
                &[
                    Type::UUID,
                    text.clone(),
                    text.clone(),
                    text.clone(),
                    text.clone(),
                    text.clone(),
                    text,
                    Type::INT8,
                ],
            )
            .await?;
        let params: [&(dyn ToSql + Sync); 8] = [
            &player,
            &filter,
            &from,
            &to,
            &after_start,
            &after_provider,
            &after_key,
            &(limit + 1),
        ];
        let rows = client
            .query(&stmt, &params)
            .await
            .map_err(|e| match e.as_db_error() {
                // A cursor or bound PostgreSQL cannot read as a time.
                Some(db) if db.code().code().starts_with("22") => {
                    Error::bad_value("from, to or cursor is not a valid time")
                }
                _ => e.into(),
            })?;
        page(&rows, limit)
    }
}

/// The page of `limit` rounds from rows that hold up to one more (which says there is more).
fn page(rows: &[Row], limit: i64) -> Result<HistoryPage, Error> {
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
