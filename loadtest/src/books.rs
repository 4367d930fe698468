//! After a run: the books must balance. Every bet the server acknowledged as applied is in
//! the journal, and `reconcile` (every wallet equals its journal, every bet's legs match its
//! state, so nothing was applied twice) passes.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Books {
    pub acknowledged_bets: usize,
    pub missing_from_journal: i64,
    pub reconcile_ok: bool,
    pub wallet_mismatches: usize,
    pub bet_mismatches: usize,
}

impl Books {
    pub fn ok(&self) -> bool {
        self.missing_from_journal == 0 && self.reconcile_ok
    }
}

pub async fn verify(
    database_url: &str,
    provider_id: &str,
    moved: &[String],
) -> anyhow::Result<Books> {
    verify_against(database_url, provider_id, moved, false).await
}

/// For seamless bets: every acknowledged bet has its debit applied at the casino (an ok leg);
/// `reconcile` checks the legs.
pub async fn verify_seamless(
    database_url: &str,
    provider_id: &str,
    moved: &[String],
) -> anyhow::Result<Books> {
    verify_against(database_url, provider_id, moved, true).await
}

async fn verify_against(
    database_url: &str,
    provider_id: &str,
    moved: &[String],
    seamless: bool,
) -> anyhow::Result<Books> {
    let (mut client, connection) =
        croupier::db::link::connect(database_url, croupier::db::Limits::unlimited()).await?;
    tokio::spawn(connection);
    let missing_sql = if seamless {
        "SELECT count(*) FROM unnest($2::text[]) AS b(id)
          WHERE NOT EXISTS (SELECT 1 FROM seamless_bets s
                              JOIN seamless_legs l ON l.bet_no = s.bet_no
                             WHERE s.provider_id = $1 AND s.bet_id = b.id
                               AND l.transaction_type = -1 AND l.state = 'ok'
                               AND l.meaning = 'applied')"
    } else {
        "SELECT count(*) FROM unnest($2::text[]) AS b(id)
           LEFT JOIN (SELECT DISTINCT bet_id FROM journal WHERE provider_id = $1) j
             ON j.bet_id = b.id
          WHERE j.bet_id IS NULL"
    };
    let missing: i64 = client
        .query_one(missing_sql, &[&provider_id, &moved])
        .await?
        .try_get(0)?;
    let report = croupier::ledger::reconcile::run(&mut client).await?;
    Ok(Books {
        acknowledged_bets: moved.len(),
        missing_from_journal: missing,
        reconcile_ok: report.ok,
        wallet_mismatches: report.wallet_mismatches.len(),
        bet_mismatches: report.bet_mismatches.len(),
    })
}
