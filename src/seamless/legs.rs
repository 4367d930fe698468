//! Legs as the engine sees them: their states, and the rows the call steps answer
//! (`seamless_leg_view`, or `seamless_item_view` from a batch: the same columns after an item
//! number).

use rust_decimal::Decimal;
use tokio_postgres::Row;
use uuid::Uuid;

use super::casino;
use super::settings::Meaning;
use crate::error::Error;

text_enum! {
    /// A leg's state (see `seamless_legs`).
    LegState {
        Pending = "pending",
        Sent = "sent",
        Unknown = "unknown",
        Ok = "ok",
        Refused = "refused",
        Stuck = "stuck",
    }
}

impl LegState {
    pub fn is_final(self) -> bool {
        matches!(self, LegState::Ok | LegState::Refused)
    }
}

text_enum! {
    /// What `seamless_call` made of a provider call.
    CallStatus {
        /// Legs added: drive them; answer 1 once final.
        New = "new",
        /// The same call again: drive what is not final.
        Repeat = "repeat",
        /// A Refund with nothing to send: 1.
        Tombstone = "tombstone",
        /// The same Refund again: 104.
        TombstoneRepeat = "tombstone_repeat",
        Conflict = "conflict",
        BetClosed = "bet_closed",
        BetNotFound = "bet_not_found",
        SessionNotFound = "session_not_found",
        Blocked = "blocked",
    }
}

/// A leg's recorded meaning: the casino's verdict as croupier read it, or `void` (never
/// sent, an earlier leg of its bet having been refused), which is a refusal too.
fn meaning_of(text: &str) -> Result<Meaning, Error> {
    match text {
        "void" => Ok(Meaning::Refused),
        other => Meaning::parse(other),
    }
}

/// A leg as a call step answers it.
#[derive(Debug, Clone)]
pub struct LegView {
    pub id: Uuid,
    pub transaction_type: i16,
    pub state: LegState,
    pub meaning: Option<Meaning>,
    pub balance: Option<Decimal>,
    /// The leg is leased to this caller: send `data` now.
    pub leased: bool,
    pub data: Option<String>,
}

/// A call step's answer: the call's status (from `seamless_call`), its bet, its legs.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub status: Option<CallStatus>,
    pub bet_no: Option<i64>,
    /// The leg column of a row without legs (a tombstone's refund id).
    pub lone_id: Option<Uuid>,
    pub legs: Vec<LegView>,
}

/// The step of `rows`, whose leg-view columns start at column `first`.
pub fn step_of<'a>(rows: impl IntoIterator<Item = &'a Row>, first: usize) -> Result<Step, Error> {
    let mut step = Step::default();
    for (i, row) in rows.into_iter().enumerate() {
        if i == 0 {
            let status: Option<&str> = row.try_get(first)?;
            step.status = status.map(CallStatus::parse).transpose()?;
            step.bet_no = row.try_get(first + 1)?;
        }
        let id: Option<Uuid> = row.try_get(first + 2)?;
        let state: Option<String> = row.try_get(first + 4)?;
        match (id, state) {
            (Some(id), Some(state)) => step.legs.push(LegView {
                id,
                transaction_type: row.try_get(first + 3)?,
                state: LegState::parse(&state)?,
                meaning: row
                    .try_get::<_, Option<&str>>(first + 5)?
                    .map(meaning_of)
                    .transpose()?,
                balance: row.try_get(first + 6)?,
                leased: row.try_get(first + 8)?,
                data: row.try_get(first + 9)?,
            }),
            (id, _) => step.lone_id = id,
        }
    }
    Ok(step)
}

/// The rows of a batch's answer grouped by their item (column 0, 1-based), for `n` items:
/// each item's rows in the order the batch gave them.
pub fn by_item(rows: &[Row], n: usize) -> Result<Vec<Vec<&Row>>, Error> {
    let mut items: Vec<Vec<&Row>> = vec![Vec::new(); n];
    for row in rows {
        let item: i32 = row.try_get(0)?;
        let slot = usize::try_from(item)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| items.get_mut(i))
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("a batch answered item {item}")))?;
        slot.push(row);
    }
    Ok(items)
}

/// The casino path a leg goes to.
pub fn leg_path(transaction_type: i16) -> &'static str {
    if transaction_type == 0 {
        casino::path::CLOSE
    } else {
        casino::path::MAKE
    }
}
