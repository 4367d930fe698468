//! The ledger: the only code that moves money.
//!
//! Each operation is one SQL function (see `sql/functions/bets.sql` and `transfers.sql`) called through a cached
//! prepared statement: one database round trip that locks the player's wallet, checks the
//! idempotency record, updates the balance and appends the journal. Invariants, enforced by
//! the database and proved by `reconcile`:
//! - a balance is never negative (CHECK on wallets and journal);
//! - every balance change writes one journal row in the same transaction, and for every
//!   wallet `balance == sum(journal.amount)`;
//! - a caller's key (`betId`, `transactionId`) is applied at most once; a refused call leaves
//!   no trace in any balance.

mod bets;
mod combiner;
pub mod crypto;
pub mod reconcile;

use bets::{BetCall, BetRequest};
use combiner::Combiner;
pub use combiner::{all_running as combiners_running, BatchSettings, MAX_BATCH};

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use moka::sync::Cache;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::error::Error;
use crate::money::{Amount, Currency};

/// A provider's id for a bet: the end-to-end key of its money movements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BetId(String);

impl BetId {
    pub fn parse(text: String) -> Result<Self, Error> {
        if text.is_empty() || text.len() > 128 || text.chars().any(char::is_control) {
            return Err(Error::bad_value(
                "betId must be 1 to 128 printable characters",
            ));
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A provider's game round id (shared by all players of a multiplayer round; not unique).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundId(String);

impl RoundId {
    pub fn parse(text: String) -> Result<Self, Error> {
        if text.len() > 128 || text.chars().any(char::is_control) {
            return Err(Error::bad_value(
                "gameRoundId must be at most 128 printable characters",
            ));
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A game session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub Uuid);

impl SessionId {
    /// Parses the id from a URL; anything that is not a UUID names no session.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Uuid::try_parse(text)
            .map(Self)
            .map_err(|_| Error::SessionNotFound)
    }
}

/// A provider's session as the bet path needs it (cached; none of it ever changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub currency: Currency,
    player_id: Uuid,
    /// The operator of the session's player: its mode decides where the bet goes.
    pub operator_id: Arc<str>,
    /// The operator's id of the player (a seamless casino's `PartnerUserId`).
    pub external_id: Arc<str>,
    /// When a transfer-mode bet on it must have been answered: the bet deadline, counted
    /// from the start of the session lookup (one deadline for the lookup and the bet).
    answer_by: tokio::time::Instant,
}

/// What a bet call did: applied now, or found already applied (a repeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BetReceipt {
    /// True when the call was a repeat of one already applied: nothing moved this time.
    pub replayed: bool,
    pub bet_tx: Option<Uuid>,
    pub win_tx: Option<Uuid>,
    pub refund_tx: Option<Uuid>,
    /// The wallet's balance after the call.
    pub balance: Decimal,
}

/// A recorded operator transfer, as Check Transaction shows it.
#[derive(Debug)]
pub struct TransferRecord {
    pub transfer_id: Uuid,
    pub kind: TransferKind,
    /// Why it was refused; None when it completed.
    pub refusal: Option<Error>,
    pub external_id: String,
    pub currency: String,
    pub amount: Decimal,
    pub balance_after: Decimal,
    /// RFC 3339.
    pub created_at: String,
}

text_enum! {
    /// The direction of an operator transfer (`transfers.kind`).
    TransferKind {
        Deposit = "deposit",
        Withdrawal = "withdrawal",
    }
}

/// What a deposit or withdrawal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReceipt {
    pub replayed: bool,
    pub transfer_id: Uuid,
    pub balance: Decimal,
}

/// Ledger ids (see `Ledger::id`).
static NEXT_LEDGER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const BALANCE: &str = "SELECT status, balance FROM session_balance($1, $2)";
const SESSION_FACTS: &str = "SELECT s.provider_id, w.currency, s.player_id, p.operator_id, p.external_id FROM sessions s JOIN wallets w ON w.id = s.wallet_id JOIN players p ON p.id = s.player_id WHERE s.id = $1";
const TRANSFER_RECORD: &str = "
SELECT t.id, t.kind, t.status, t.refusal, p.external_id, w.currency, t.amount, t.balance_after,
       trim(both '\"' from to_json(t.created_at)::text)
  FROM transfers t JOIN players p ON p.id = t.player_id JOIN wallets w ON w.id = t.wallet_id
 WHERE t.operator_id = $1 AND t.transaction_id = $2";
const TRANSFER: &str =
    "SELECT status, transfer_id, balance FROM transfer($1, $2, $3, $4, $5, $6, $7, $8)";

/// A session's fixed facts: who may use it and the currency of its wallet. Neither changes
/// through croupier; the cache is bounded and dropped on any change notified by the database.
#[derive(Debug, Clone)]
struct SessionFacts {
    provider_id: Arc<str>,
    currency: Currency,
    player_id: Uuid,
    operator_id: Arc<str>,
    external_id: Arc<str>,
}

/// Who makes a bet call: the provider, and the request id its transaction claims (None: the
/// id is claimed elsewhere, or there is none).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub provider_id: &'a str,
    pub request_id: Option<Uuid>,
}

pub struct Ledger {
    pool: Pool,
    sessions: Cache<Uuid, SessionFacts>,
    /// Group commit, when on: bets are combined into shared transactions.
    batching: Option<BatchSettings>,
    /// Tells this ledger's combiners apart from another's on the same thread.
    id: u64,
    /// The longest a bet call waits (queueing included) before it answers "unavailable".
    deadline: Duration,
}

impl Ledger {
    /// A ledger that runs every bet in a transaction of its own.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            sessions: Cache::builder()
                .max_capacity(200_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            batching: None,
            id: NEXT_LEDGER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            deadline: Duration::from_secs(3),
        }
    }

    /// The same ledger with bet calls answered within `deadline`, whatever the database does.
    pub fn with_deadline(self, deadline: Duration) -> Self {
        Self { deadline, ..self }
    }

    /// A ledger with group commit (see `combiner`).
    pub fn batched(pool: Pool, settings: BatchSettings) -> Self {
        Self {
            batching: Some(settings),
            ..Self::new(pool)
        }
    }

    /// Drops a session from the cache (it changed in the database).
    pub fn forget_session(&self, id: &str) {
        if let Ok(id) = Uuid::try_parse(id) {
            self.sessions.invalidate(&id);
        }
    }

    pub fn forget_all_sessions(&self) {
        self.sessions.invalidate_all();
    }

    /// A provider's session: its wallet's currency, for checking amounts before the call,
    /// and the player it routes by. A session of another provider is "not found".
    pub async fn session(&self, provider_id: &str, id: SessionId) -> Result<Session, Error> {
        let answer_by = tokio::time::Instant::now() + self.deadline;
        let facts = self.session_facts(provider_id, id, answer_by).await?;
        Ok(Session {
            id,
            currency: facts.currency,
            player_id: facts.player_id,
            operator_id: facts.operator_id,
            external_id: facts.external_id,
            answer_by,
        })
    }

    async fn session_facts(
        &self,
        provider_id: &str,
        session: SessionId,
        answer_by: tokio::time::Instant,
    ) -> Result<SessionFacts, Error> {
        let facts = match self.sessions.get(&session.0) {
            Some(facts) => facts,
            None => {
                // Under the bet deadline too: a call that must look its session up (after a
                // restart, on a link being replaced) still answers in time.
                let read = async {
                    let client = self.pool.get().await?;
                    let stmt = client.prepare_cached(SESSION_FACTS).await?;
                    Ok::<_, Error>(client.query_opt(&stmt, &[&session.0]).await?)
                };
                let row = tokio::time::timeout_at(answer_by, read)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::Unavailable(anyhow::anyhow!(
                            "the session lookup did not answer within the deadline"
                        )))
                    })?
                    .ok_or(Error::SessionNotFound)?;
                let currency = Currency::parse(row.try_get(1)?)
                    .map_err(|e| Error::Internal(anyhow::anyhow!("wallet currency: {e}")))?;
                let facts = SessionFacts {
                    provider_id: Arc::from(row.try_get::<_, &str>(0)?),
                    currency,
                    player_id: row.try_get(2)?,
                    operator_id: Arc::from(row.try_get::<_, &str>(3)?),
                    external_id: Arc::from(row.try_get::<_, &str>(4)?),
                };
                self.sessions.insert(session.0, facts.clone());
                facts
            }
        };
        if &*facts.provider_id != provider_id {
            return Err(Error::SessionNotFound);
        }
        Ok(facts)
    }

    /// PayIn: debit the stake of a new bet.
    pub async fn pay_in(
        &self,
        by: Caller<'_>,
        session: &Session,
        bet: BetId,
        round: Option<RoundId>,
        stake: Amount,
    ) -> Result<BetReceipt, Error> {
        let call = BetCall::PayIn {
            round: round.map(RoundId::into_string),
            stake: stake.value(),
        };
        self.bet(by, session, bet, call).await
    }

    /// PayInOut: debit the stake and credit the win of a bet decided at once.
    pub async fn pay_in_out(
        &self,
        by: Caller<'_>,
        session: &Session,
        bet: BetId,
        round: Option<RoundId>,
        stake: Amount,
        win: Amount,
    ) -> Result<BetReceipt, Error> {
        let call = BetCall::PayInOut {
            round: round.map(RoundId::into_string),
            stake: stake.value(),
            win: win.value(),
        };
        self.bet(by, session, bet, call).await
    }

    /// PayOut: credit the win of an open bet (0 = lost), or a standalone win when the
    /// provider allows them.
    pub async fn pay_out(
        &self,
        by: Caller<'_>,
        standalone_wins: bool,
        session: &Session,
        bet: BetId,
        round: Option<RoundId>,
        win: Amount,
    ) -> Result<BetReceipt, Error> {
        let call = BetCall::PayOut {
            round: round.map(RoundId::into_string),
            win: win.value(),
            standalone_wins,
        };
        self.bet(by, session, bet, call).await
    }

    /// Refund: cancel a bet (see the refund rules in `sql/functions/bets.sql`).
    pub async fn refund(
        &self,
        by: Caller<'_>,
        session: &Session,
        bet: BetId,
    ) -> Result<BetReceipt, Error> {
        self.bet(by, session, bet, BetCall::Refund).await
    }

    /// Runs one bet call: through a combiner (routed by player, so one player's calls are
    /// applied in arrival order by one combiner) or in a transaction of its own, within the
    /// deadline. A call past it is answered "unavailable": it may still be applied (its batch
    /// may commit later), which a repeat with the same betId then finds (104). The combiner
    /// is not held up by the caller's leaving: its own database call ends at the
    /// connection's answer deadline at the latest.
    async fn bet(
        &self,
        by: Caller<'_>,
        session: &Session,
        bet: BetId,
        call: BetCall,
    ) -> Result<BetReceipt, Error> {
        let request = BetRequest {
            provider_id: by.provider_id.to_string(),
            request_id: by.request_id,
            session: session.id,
            bet_id: bet.into_string(),
            call,
            tx1: Uuid::now_v7(),
            tx2: Uuid::now_v7(),
        };
        let run = async {
            match self.batching {
                Some(settings) => {
                    let combiner = Combiner::for_this_thread(self.id, &self.pool, settings);
                    combiner.submit(session.player_id, request).await
                }
                None => {
                    // Recorded however the call ends, at the deadline too.
                    let _timed = crate::telemetry::StageTimer::start("database");
                    let client = self.pool.get().await?;
                    bets::execute_one(&client, &request).await
                }
            }
        };
        tokio::time::timeout_at(session.answer_by, run)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Unavailable(anyhow::anyhow!(
                    "the ledger did not answer within the deadline"
                )))
            })
    }

    /// The balance of a session's wallet.
    pub async fn session_balance(
        &self,
        provider_id: &str,
        session: SessionId,
    ) -> Result<Decimal, Error> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(BALANCE).await?;
        let row = client
            .query_opt(&stmt, &[&provider_id, &session.0])
            .await?
            .ok_or(Error::SessionNotFound)?;
        status_error(row.try_get(0)?)?;
        Ok(row.try_get(1)?)
    }

    /// Moves money in (deposit) or out (withdrawal) of a player's wallet, idempotent by the
    /// operator's transaction id. A refusal decided under the wallet lock (insufficient
    /// withdrawable balance, blocked player) is recorded and answered again on a retry.
    pub async fn transfer(
        &self,
        kind: TransferKind,
        operator_id: &str,
        external_id: &str,
        amount: Amount,
        transaction_id: &str,
    ) -> Result<TransferReceipt, Error> {
        if amount.value().is_zero() {
            return Err(Error::bad_value("amount must be more than zero"));
        }
        if transaction_id.is_empty() || transaction_id.len() > 128 {
            return Err(Error::bad_value(
                "transactionId must be 1 to 128 characters",
            ));
        }
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(TRANSFER).await?;
        let value = amount.value();
        let row = client
            .query_one(
                &stmt,
                &[
                    &kind.as_str(),
                    &operator_id,
                    &external_id,
                    &amount.currency().code(),
                    &value,
                    &transaction_id,
                    &Uuid::now_v7(),
                    &Uuid::now_v7(),
                ],
            )
            .await?;
        let replayed = status_error(row.try_get(0)?)?;
        Ok(TransferReceipt {
            replayed,
            transfer_id: row.try_get(1)?,
            balance: row.try_get(2)?,
        })
    }

    /// An operator's transfer by its transaction id.
    pub async fn transfer_record(
        &self,
        operator_id: &str,
        transaction_id: &str,
    ) -> Result<TransferRecord, Error> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(TRANSFER_RECORD).await?;
        let row = client
            .query_opt(&stmt, &[&operator_id, &transaction_id])
            .await?
            .ok_or(Error::TransactionNotFound)?;
        let kind = TransferKind::parse(row.try_get(1)?)?;
        let refusal: Option<&str> = row.try_get(3)?;
        Ok(TransferRecord {
            transfer_id: row.try_get(0)?,
            kind,
            refusal: refusal.map(refusal_error).transpose()?,
            external_id: row.try_get(4)?,
            currency: row.try_get(5)?,
            amount: row.try_get(6)?,
            balance_after: row.try_get(7)?,
            created_at: row.try_get(8)?,
        })
    }
}

/// A stored refusal as its error; a stored "refusal" that is none is a broken row.
fn refusal_error(refusal: &str) -> Result<Error, Error> {
    match status_error(refusal) {
        Err(Error::Internal(e)) => Err(Error::Internal(e)),
        Err(refused) => Ok(refused),
        Ok(_) => Err(Error::Internal(anyhow::anyhow!(
            "stored refusal {refusal:?} is not a refusal"
        ))),
    }
}

/// Maps a ledger function's status to `Ok(replayed)` or the refusal.
pub(crate) fn status_error(status: &str) -> Result<bool, Error> {
    match status {
        "ok" => Ok(false),
        "duplicate" => Ok(true),
        "insufficient_funds" => Err(Error::InsufficientFunds),
        "session_not_found" => Err(Error::SessionNotFound),
        "bet_not_found" => Err(Error::BetNotFound),
        "bet_closed" => Err(Error::BetClosed),
        "blocked" => Err(Error::PlayerBlocked),
        "conflict" => Err(Error::Conflict),
        "player_not_found" => Err(Error::PlayerNotFound),
        "replayed" => Err(crate::error::AuthFailure::Replayed.into()),
        other => Err(Error::Internal(anyhow::anyhow!(
            "unknown ledger status {other:?}"
        ))),
    }
}
