//! The forwarding engine: a provider call on a seamless session becomes legs (contract
//! section 3), each written before it is sent, sent by one holder of its lease at a time,
//! re-sent with the same `data` byte for byte, and answered to the provider by section 5.
//!
//! A call runs in three kinds of short database steps on the seamless pool, none of them held
//! across an HTTP call: `seamless_call` (decide and write the legs, lease the first),
//! `seamless_record` (an attempt's outcome, lease the next), both combined across concurrent
//! calls (`steps`), and `seamless_lease` (for a caller waiting on a leg someone else sends). A debit is sent at most once per provider call; a
//! credit is tried again within the provider's deadline, then by the retry job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use uuid::Uuid;

use super::casino::{self, Exchange, Reply};
use super::legs::{leg_path, step_of, CallStatus, LegState, LegView};
use super::settings::{Meaning, SeamlessSettings};
use super::steps::{CallStep, RecordStep};
use super::Seamless;
use crate::error::Error;
use crate::ledger::{BetReceipt, Session};

/// What a provider asks of a bet on a seamless session.
#[derive(Debug, Clone)]
pub enum SeamlessOp {
    PayIn {
        round: Option<String>,
        stake: Decimal,
    },
    PayInOut {
        round: Option<String>,
        stake: Decimal,
        win: Decimal,
    },
    PayOut {
        round: Option<String>,
        win: Decimal,
        standalone_wins: bool,
    },
    Refund,
}

impl SeamlessOp {
    fn name(&self) -> &'static str {
        match self {
            SeamlessOp::PayIn { .. } => "pay_in",
            SeamlessOp::PayInOut { .. } => "pay_in_out",
            SeamlessOp::PayOut { .. } => "pay_out",
            SeamlessOp::Refund => "refund",
        }
    }

    /// Whether the call starts with a debit (refused at once while the casino's breaker is
    /// open).
    fn debits(&self) -> bool {
        matches!(self, SeamlessOp::PayIn { .. } | SeamlessOp::PayInOut { .. })
    }
}

/// Extra time a lease outlives an attempt's timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(2);
/// How often a caller looks again at a leg someone else is sending, at first and at most.
const POLL_FIRST: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(200);
/// The shortest attempt worth making.
const MIN_ATTEMPT: Duration = Duration::from_millis(50);
/// Pause before a credit is tried again within a provider's call.
const CREDIT_PAUSE: Duration = Duration::from_secs(1);

fn lease_seconds(settings: &SeamlessSettings) -> f64 {
    (settings.attempt_timeout + LEASE_MARGIN).as_secs_f64()
}

/// The database step that writes a provider call as legs.
fn call_step(
    settings: &SeamlessSettings,
    provider: &str,
    session: &Session,
    bet_id: &str,
    op: &SeamlessOp,
) -> CallStep {
    let (round, amount, win, standalone_wins) = match op {
        SeamlessOp::PayIn { round, stake } => (round.clone(), *stake, None, false),
        SeamlessOp::PayInOut { round, stake, win } => (round.clone(), *stake, Some(*win), false),
        SeamlessOp::PayOut {
            round,
            win,
            standalone_wins,
        } => (round.clone(), Decimal::ZERO, Some(*win), *standalone_wins),
        SeamlessOp::Refund => (None, Decimal::ZERO, None, false),
    };
    CallStep {
        op: op.name(),
        provider: provider.to_string(),
        session: session.id.0,
        bet_id: bet_id.to_string(),
        round,
        amount,
        win,
        standalone_wins,
        send_close: settings.send_close,
        tx1: Uuid::now_v7(),
        tx2: Uuid::now_v7(),
        close_tx: Uuid::now_v7(),
        lease_s: lease_seconds(settings),
    }
}

/// A call's legs as driving left them.
struct Driven {
    legs: Vec<LegView>,
    /// This call's own attempt made the debit final and applied (so confirmed it).
    confirmed: bool,
    /// This call's own attempt heard a verdict on one of its legs.
    heard_verdict: bool,
}

/// What a call's own attempts heard from the casino.
#[derive(Default)]
struct Heard {
    /// Legs this call waits on without sending again: a debit already sent once, a leg the
    /// casino answered 202 for (its verdict comes by accept).
    awaiting: Vec<Uuid>,
    /// The debit, applied.
    confirmed: bool,
    /// A verdict on any leg.
    verdict: bool,
}

impl Heard {
    fn with(self, legs: Vec<LegView>) -> Driven {
        Driven {
            legs,
            confirmed: self.confirmed,
            heard_verdict: self.verdict,
        }
    }
}

const LEASE: &str = "SELECT * FROM seamless_lease($1, $2, $3)";
const VIEW: &str = "SELECT * FROM seamless_lease($1, NULL, 0)";

impl Seamless {
    /// Forwards a provider call on a seamless session to the operator's casino and answers
    /// it as the contract's section 5 says.
    pub async fn bet(
        &self,
        settings: &Arc<SeamlessSettings>,
        provider: &str,
        session: &Session,
        bet_id: &str,
        op: SeamlessOp,
    ) -> Result<BetReceipt, Error> {
        // A sixteenth of the deadline is kept for writing and sending the answer.
        let deadline =
            Instant::now() + settings.provider_deadline - settings.provider_deadline / 16;
        if op.debits() && !self.outbound.breakers.allows(&settings.operator_id) {
            // Nothing is written: a repeat later is a new bet.
            return Err(Error::NotConfirmed);
        }
        let step = self
            .call_step(call_step(settings, provider, session, bet_id, &op))
            .await?;
        let status = step
            .status
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("seamless_call answered no status")))?;
        match status {
            CallStatus::New | CallStatus::Repeat => {}
            CallStatus::Tombstone | CallStatus::TombstoneRepeat => {
                let balance = self.balance_of(settings, &session.external_id).await?;
                return Ok(BetReceipt {
                    replayed: status == CallStatus::TombstoneRepeat,
                    bet_tx: None,
                    win_tx: None,
                    refund_tx: step.lone_id,
                    balance,
                });
            }
            CallStatus::Conflict => return Err(Error::Conflict),
            CallStatus::BetClosed => return Err(Error::BetClosed),
            CallStatus::BetNotFound => return Err(Error::BetNotFound),
            CallStatus::SessionNotFound => return Err(Error::SessionNotFound),
            CallStatus::Blocked => return Err(Error::PlayerBlocked),
        }
        let bet_no = step
            .bet_no
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("a call without its bet")))?;
        let driven = self.drive(settings, step.legs, deadline).await?;
        // A repeat is answered 104 unless this call itself heard the casino's verdict (a
        // provider repeating a call it was answered 99 for); a call that waited on a
        // movement another one sent, or found it final, is a repeat of that one.
        let replayed = status == CallStatus::Repeat && !driven.heard_verdict;
        let receipt = self
            .answer(settings, session, &driven.legs, replayed)
            .await?;
        if op.debits() && !driven.confirmed {
            self.pool()
                .get()
                .await?
                .execute("SELECT seamless_confirm($1)", &[&bet_no])
                .await?;
        }
        Ok(receipt)
    }

    /// Sends the call's legs in order until all are final or the deadline passes.
    async fn drive(
        &self,
        settings: &Arc<SeamlessSettings>,
        mut legs: Vec<LegView>,
        deadline: Instant,
    ) -> Result<Driven, Error> {
        let ids: Vec<Uuid> = legs.iter().map(|l| l.id).collect();
        let lease_s = lease_seconds(settings);
        let mut heard = Heard::default();
        let mut poll = POLL_FIRST;
        loop {
            if legs.iter().all(|l| l.state.is_final()) {
                return Ok(heard.with(legs));
            }
            if let Some(leg) = legs.iter().find(|l| l.leased).cloned() {
                let (after, verdict) = self
                    .attempt(settings, &leg, &ids, deadline, &mut heard)
                    .await?;
                legs = after;
                poll = POLL_FIRST;
                if verdict {
                    // The next leg, if any, is leased to this call already.
                    continue;
                }
                if !heard.awaiting.contains(&leg.id) {
                    // A credit without an answer: a pause before it goes again.
                    let pause =
                        CREDIT_PAUSE.min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(pause).await;
                }
            } else {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(heard.with(legs));
                }
                // Someone else holds the lease, an earlier leg is not final, or a verdict is
                // awaited: look again shortly.
                tokio::time::sleep(poll.min(deadline - now)).await;
                poll = (poll * 2).min(POLL_MAX);
            }
            let waiting = legs
                .iter()
                .find(|l| !l.state.is_final())
                .is_some_and(|l| heard.awaiting.contains(&l.id));
            let time_left = deadline.saturating_duration_since(Instant::now()) > MIN_ATTEMPT;
            let closed = !self.outbound.breakers.allows(&settings.operator_id);
            legs = if waiting || !time_left || closed {
                self.view(&ids).await?
            } else {
                self.lease(&ids, lease_s).await?
            };
        }
    }

    /// Sends a leg this call holds (even when the deadline is near: a lease is never left
    /// behind) and records what the casino said. Answers the call's legs as they then stand
    /// (after a verdict, the next one leased to this call), and whether a verdict came.
    async fn attempt(
        &self,
        settings: &Arc<SeamlessSettings>,
        leg: &LegView,
        ids: &[Uuid],
        deadline: Instant,
        heard: &mut Heard,
    ) -> Result<(Vec<LegView>, bool), Error> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let timeout = settings.attempt_timeout.min(remaining).max(MIN_ATTEMPT);
        let data = leg.data.as_deref().unwrap_or_default();
        let exchange = self
            .send(settings, leg_path(leg.transaction_type), data, timeout)
            .await?;
        let meaning = exchange.reply.meaning();
        tracing::debug!(leg = %leg.id, kind = leg.transaction_type, status = ?exchange.http_status, ?meaning, "casino answered");
        let verdict = !matches!(meaning, Meaning::Unknown | Meaning::Accepted);
        if leg.transaction_type == -1 && !verdict || meaning == Meaning::Accepted {
            heard.awaiting.push(leg.id);
        }
        heard.confirmed |= leg.transaction_type == -1 && meaning == Meaning::Applied;
        heard.verdict |= verdict;
        // After a verdict the next leg is leased at once; otherwise it is looked at again.
        let next = if verdict { ids.to_vec() } else { Vec::new() };
        let leased = self
            .record_step(RecordStep {
                leg: leg.id,
                exchange,
                confirming: true,
                next,
                lease_s: lease_seconds(settings),
            })
            .await?;
        let legs = if verdict {
            leased
        } else {
            self.view(ids).await?
        };
        Ok((legs, verdict))
    }

    async fn lease(&self, ids: &[Uuid], lease_s: f64) -> Result<Vec<LegView>, Error> {
        let rows = self
            .pool()
            .get()
            .await?
            .query(LEASE, &[&ids, &self.steps.owner, &lease_s])
            .await?;
        Ok(step_of(&rows, 0)?.legs)
    }

    async fn view(&self, ids: &[Uuid]) -> Result<Vec<LegView>, Error> {
        let rows = self.pool().get().await?.query(VIEW, &[&ids]).await?;
        Ok(step_of(&rows, 0)?.legs)
    }

    /// Records an attempt the retry job made (it answers no provider and leases nothing).
    pub(crate) async fn record_attempt(&self, leg: Uuid, exchange: Exchange) -> Result<(), Error> {
        self.record_step(RecordStep {
            leg,
            exchange,
            confirming: false,
            next: Vec::new(),
            lease_s: 0.0,
        })
        .await?;
        Ok(())
    }

    /// The provider's answer from the call's legs as they stand.
    async fn answer(
        &self,
        settings: &SeamlessSettings,
        session: &Session,
        legs: &[LegView],
        replayed: bool,
    ) -> Result<BetReceipt, Error> {
        if let Some(refused) = legs.iter().find(|l| l.state == LegState::Refused) {
            return Err(match refused.meaning.unwrap_or(Meaning::Refused) {
                Meaning::InsufficientFunds => Error::InsufficientFunds,
                Meaning::UserNotFound => Error::PlayerNotFound,
                Meaning::IncorrectAmount => Error::bad_value("the casino refused the amount"),
                Meaning::Blocked => Error::PlayerBlocked,
                other => Error::CasinoRefused(other.as_str().to_string()),
            });
        }
        if !legs.iter().all(|l| l.state.is_final()) {
            return Err(Error::NotConfirmed);
        }
        let id_of = |types: &[i16]| {
            legs.iter()
                .find(|l| types.contains(&l.transaction_type))
                .map(|l| l.id)
        };
        // A repeat is answered with the latest balance, a first answer with the casino's.
        let balance = match legs.iter().rev().find_map(|l| l.balance) {
            Some(balance) if !replayed => balance,
            _ => self.balance_of(settings, &session.external_id).await?,
        };
        Ok(BetReceipt {
            replayed,
            bet_tx: id_of(&[-1]),
            win_tx: id_of(&[1, 4]),
            // A Refund's own id: its stake back, or (nothing staked) its win back.
            refund_tx: id_of(&[2]).or_else(|| id_of(&[-2])),
            balance,
        })
    }

    /// The player's balance at the casino (`users/data`). When the casino does not answer
    /// in time, a balance it gave within the last few seconds is served instead.
    pub async fn balance_of(
        &self,
        settings: &SeamlessSettings,
        external_id: &str,
    ) -> Result<Decimal, Error> {
        let key = (settings.operator_id.clone(), external_id.to_string());
        let data = serde_json::json!({ "PartnerUserId": external_id }).to_string();
        let exchange = self
            .outbound
            .post(
                settings,
                casino::path::USERS_DATA,
                &data,
                settings.attempt_timeout,
            )
            .await?;
        match &exchange.reply {
            Reply::Envelope {
                meaning: Meaning::Applied,
                ..
            } => {
                let balance =
                    exchange
                        .reply
                        .value_decimal("Balance")
                        .ok_or_else(|| Error::Integration {
                            cause: crate::error::IntegrationCause::Refused,
                            message: "the casino's users/data answer has no Balance".into(),
                        })?;
                self.balances.insert(key, (balance, Instant::now()));
                Ok(balance)
            }
            Reply::Envelope {
                meaning: Meaning::UserNotFound,
                ..
            } => Err(Error::PlayerNotFound),
            Reply::Envelope {
                meaning: Meaning::Blocked,
                ..
            } => Err(Error::PlayerBlocked),
            _ => match self.balances.get(&key) {
                Some((balance, at)) if at.elapsed() <= BALANCE_STALE => Ok(balance),
                _ => Err(Error::NotConfirmed),
            },
        }
    }
}

/// How old a casino balance may be when served because the casino is slow.
pub const BALANCE_STALE: Duration = Duration::from_secs(5);

/// The balance cache a `Seamless` keeps.
pub fn balance_cache() -> moka::sync::Cache<(String, String), (Decimal, Instant)> {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(BALANCE_STALE * 2)
        .build()
}
