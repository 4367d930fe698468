//! The books at the end, read straight from PostgreSQL (not through the proxy): every bet
//! as the providers' model has it (acknowledged ones present with their amounts, refused ones
//! absent, no bet the model does not know), every balance equal to the model, every
//! acknowledged money call journaled, and `reconcile` clean.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::Serialize;

use super::play::{BetState, Book};

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub balances_checked: usize,
    pub balance_mismatches: usize,
    pub bets_checked: usize,
    pub bet_mismatches: usize,
    /// Bets in the database the model never saw applied.
    pub bets_unknown_to_model: usize,
    pub acknowledged_calls: usize,
    pub missing_from_journal: i64,
    pub reconcile_ok: bool,
    pub examples: Vec<String>,
}

impl Verdict {
    pub fn mismatches(&self) -> u64 {
        (self.balance_mismatches + self.bet_mismatches + self.bets_unknown_to_model) as u64
            + self.missing_from_journal.unsigned_abs()
            + u64::from(!self.reconcile_ok)
    }

    fn example(&mut self, text: String) {
        if self.examples.len() < 5 {
            self.examples.push(text);
        }
    }
}

/// Compares the database with the model of every provider (`sessions` in player order).
pub async fn verify(
    database_url: &str,
    provider_id: &str,
    sessions: &[String],
    book: &Book,
) -> anyhow::Result<Verdict> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let mut verdict = Verdict::default();

    let rows = client
        .query(
            "SELECT s.id::text, w.balance::text FROM sessions s JOIN wallets w ON w.id = s.wallet_id
              WHERE s.provider_id = $1",
            &[&provider_id],
        )
        .await?;
    let mut balances = HashMap::new();
    for row in rows {
        let balance: String = row.try_get(1)?;
        balances.insert(row.try_get::<_, String>(0)?, balance.parse::<Decimal>()?);
    }
    for (player, model) in &book.balances {
        verdict.balances_checked += 1;
        let session = sessions
            .get(*player)
            .map(String::as_str)
            .unwrap_or_default();
        let stored = balances.get(session);
        if stored != Some(model) {
            verdict.balance_mismatches += 1;
            verdict.example(format!(
                "player {player}: balance {stored:?}, model {model}"
            ));
        }
    }

    let rows = client
        .query(
            "SELECT bet_id, state, stake::text, win::text FROM bets WHERE provider_id = $1",
            &[&provider_id],
        )
        .await?;
    let mut stored = HashMap::new();
    for row in rows {
        let state: String = row.try_get(1)?;
        let stake: Decimal = row.try_get::<_, String>(2)?.parse()?;
        let win: Option<String> = row.try_get(3)?;
        let win = win.map(|w| w.parse::<Decimal>()).transpose()?;
        let bet = match (state.as_str(), win) {
            ("open", _) => BetState::Open { stake },
            ("settled", Some(win)) => BetState::Settled { stake, win },
            ("refunded", _) => BetState::Refunded,
            ("tombstone", _) => BetState::Tombstone,
            (other, win) => {
                anyhow::bail!("bet state {other} (win {win:?}) is not one the ledger writes")
            }
        };
        stored.insert(row.try_get::<_, String>(0)?, bet);
    }
    for (bet, model) in &book.bets {
        verdict.bets_checked += 1;
        let found = stored.remove(bet);
        let same = match (&found, model) {
            (None, BetState::Absent) => true,
            (Some(found), model) => found == model,
            (None, _) => false,
        };
        if !same {
            verdict.bet_mismatches += 1;
            verdict.example(format!("bet {bet}: stored {found:?}, model {model:?}"));
        }
    }
    verdict.bets_unknown_to_model = stored.len();
    if let Some((bet, state)) = stored.iter().next() {
        verdict.example(format!("bet {bet} stored as {state:?}, never sent"));
    }
    drop(client);

    let books = crate::books::verify(database_url, provider_id, &book.acknowledged).await?;
    verdict.acknowledged_calls = books.acknowledged_bets;
    verdict.missing_from_journal = books.missing_from_journal;
    verdict.reconcile_ok = books.reconcile_ok;
    Ok(verdict)
}
