//! Proof that the books balance: every wallet equals the sum of its journal (and the journal
//! is an unbroken chain of running balances), every bet's state matches its journal rows,
//! every completed transfer has its one journal row, and every crypto deposit and payout
//! matches its journal rows and the wallet's locked amount; every seamless bet matches its
//! legs.

use serde::Serialize;
use serde_json::{Map, Value};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};

/// Wallets whose balance, version or running balance disagrees with the journal.
const WALLETS: &str = "
WITH chain AS (
    SELECT wallet_id, seq, amount, balance_after,
           coalesce(lag(balance_after) OVER w, 0) + amount AS expected_after,
           coalesce(lag(seq) OVER w, 0) + 1 AS expected_seq
      FROM journal
    WINDOW w AS (PARTITION BY wallet_id ORDER BY seq)
), per_wallet AS (
    SELECT wallet_id, sum(amount) AS total, count(*) AS legs, max(seq) AS last_seq,
           count(*) FILTER (WHERE balance_after <> expected_after OR seq <> expected_seq) AS breaks,
           (array_agg(balance_after ORDER BY seq DESC))[1] AS last_balance
      FROM chain GROUP BY wallet_id
)
SELECT w.id::text, w.balance::text, coalesce(j.total, 0)::text,
       w.version, coalesce(j.legs, 0), coalesce(j.breaks, 0)
  FROM wallets w LEFT JOIN per_wallet j ON j.wallet_id = w.id
 WHERE w.balance <> coalesce(j.total, 0)
    OR w.version <> coalesce(j.legs, 0)
    OR coalesce(j.breaks, 0) <> 0
    OR w.balance <> coalesce(j.last_balance, 0)";

/// Journal rows and bets naming a wallet that does not exist (or another player's), or of an
/// unknown kind, or a
/// journal row with no reference (the hot tables carry no foreign keys and one CHECK each;
/// see `sql/0001_core.sql`). Unknown bet states fail the per-bet check below.
const ORPHANS: &str = "
SELECT 'journal', j.id::text FROM journal j
 WHERE NOT EXISTS (SELECT 1 FROM wallets w WHERE w.id = j.wallet_id AND w.player_id = j.player_id)
    OR j.kind NOT IN ('bet', 'win', 'refund', 'win_reversal', 'deposit', 'withdrawal',
                      'crypto_deposit', 'crypto_reversal', 'payout_hold', 'payout_release')
    OR NOT ((j.provider_id IS NOT NULL AND j.bet_id IS NOT NULL) OR j.transfer_id IS NOT NULL)
UNION ALL
SELECT 'bet', b.provider_id || '/' || b.bet_id FROM bets b
 WHERE NOT EXISTS (SELECT 1 FROM wallets w WHERE w.id = b.wallet_id)
    OR b.kind NOT IN ('pay_in', 'pay_in_out', 'pay_out', 'refund')
    OR b.stake < 0 OR b.win < 0";

/// Bets whose journal rows do not match their state, and journal rows naming no bet.
const BETS: &str = "
WITH legs AS (
    SELECT j.provider_id, j.bet_id, sum(j.amount) AS net, count(*) AS n,
           count(*) FILTER (WHERE j.kind = 'bet') AS stakes,
           count(*) FILTER (WHERE j.kind = 'win') AS wins,
           count(*) FILTER (WHERE j.kind = 'refund') AS refunds,
           count(*) FILTER (WHERE j.kind = 'win_reversal') AS reversals,
           -- every leg on the bet's wallet, each of the amount its kind implies
           coalesce(bool_and(j.wallet_id = b.wallet_id AND CASE j.kind
               WHEN 'bet' THEN j.amount = -b.stake
               WHEN 'win' THEN j.amount = b.win
               WHEN 'refund' THEN j.amount = b.stake
               WHEN 'win_reversal' THEN j.amount = -b.win
               ELSE false END), false) AS legs_ok
      FROM journal j
      LEFT JOIN bets b ON b.provider_id = j.provider_id AND b.bet_id = j.bet_id
     WHERE j.bet_id IS NOT NULL
     GROUP BY j.provider_id, j.bet_id
)
SELECT coalesce(b.provider_id, l.provider_id), coalesce(b.bet_id, l.bet_id),
       coalesce(b.state, 'missing'), coalesce(l.net, 0)::text
  FROM bets b FULL JOIN legs l ON l.provider_id = b.provider_id AND l.bet_id = b.bet_id
 WHERE NOT coalesce(CASE WHEN l.n IS NOT NULL AND NOT l.legs_ok THEN false ELSE CASE b.state
    WHEN 'open' THEN l.net = -b.stake AND l.stakes = 1 AND l.n = 1
    WHEN 'settled' THEN l.net = b.win - b.stake AND l.wins = 1 AND l.refunds = 0
                    AND l.stakes = CASE WHEN b.kind = 'pay_out' THEN 0 ELSE 1 END
                    AND l.n = l.stakes + 1
    WHEN 'refunded' THEN l.net = 0 AND l.refunds = 1 AND l.wins = l.reversals
    WHEN 'tombstone' THEN l.n IS NULL
    ELSE false END END, false)
    OR b.state IS NULL";

/// Completed transfers without exactly one journal row of their amount, and the reverse.
const TRANSFERS: &str = "
WITH legs AS (
    SELECT transfer_id, sum(amount) AS net, count(*) AS n
      FROM journal WHERE transfer_id IS NOT NULL AND kind IN ('deposit', 'withdrawal')
     GROUP BY transfer_id
)
SELECT coalesce(t.id, l.transfer_id)::text, coalesce(t.status, 'missing'), coalesce(l.net, 0)::text
  FROM transfers t FULL JOIN legs l ON l.transfer_id = t.id
 WHERE t.id IS NULL
    OR (t.status = 'completed' AND (l.n IS DISTINCT FROM 1 OR l.net <> CASE t.kind
            WHEN 'deposit' THEN t.amount ELSE -t.amount END))
    OR (t.status = 'refused' AND l.n IS NOT NULL)";

/// Crypto deposits and payouts whose journal rows disagree with their state, crypto journal
/// rows naming neither, and wallets whose `locked` is not the sum of their locked deposits and
/// locked winnings (which need a deposit still locked).
const CRYPTO: &str = "
WITH legs AS (
    SELECT transfer_id, wallet_id, kind, sum(amount) AS net, count(*) AS n
      FROM journal
     WHERE kind IN ('crypto_deposit', 'crypto_reversal', 'payout_hold', 'payout_release')
     GROUP BY transfer_id, wallet_id, kind
), per_deposit AS (
    SELECT transfer_id, bool_and(kind IN ('crypto_deposit', 'crypto_reversal')) AS deposit_kinds,
           bool_and(kind IN ('payout_hold', 'payout_release')) AS payout_kinds,
           sum(net) AS net, count(DISTINCT wallet_id) AS wallets, max(wallet_id::text) AS wallet
      FROM legs GROUP BY transfer_id
), locks AS (
    SELECT wallet_id, sum(locked_amount) AS locked FROM crypto_deposits
     WHERE wallet_id IS NOT NULL GROUP BY wallet_id
)
SELECT 'deposit', d.id::text, d.state, coalesce(l.net, 0)::text
  FROM crypto_deposits d LEFT JOIN per_deposit l ON l.transfer_id = d.id
 WHERE coalesce(l.net, 0) <> d.credited
    OR (l.transfer_id IS NOT NULL AND (NOT l.deposit_kinds OR l.wallets <> 1
                                       OR l.wallet <> d.wallet_id::text))
    OR (d.state = 'locked' AND d.locked_amount <> d.credited)
    OR (d.state IN ('seen', 'reversed') AND (d.credited <> 0 OR d.locked_amount <> 0))
    OR (d.state = 'completed' AND d.locked_amount <> 0)
UNION ALL
SELECT 'payout', p.id::text, p.state, coalesce(l.net, 0)::text
  FROM crypto_payouts p LEFT JOIN per_deposit l ON l.transfer_id = p.id
 WHERE coalesce(l.net, 0) <> CASE WHEN p.state IN ('refused', 'released') THEN 0
                                  ELSE -p.amount END
    OR (p.state = 'refused' AND l.transfer_id IS NOT NULL)
    OR (l.transfer_id IS NOT NULL AND (NOT l.payout_kinds OR l.wallets <> 1
                                       OR l.wallet <> p.wallet_id::text))
UNION ALL
SELECT 'journal', l.transfer_id::text, 'orphan', l.net::text
  FROM per_deposit l
 WHERE NOT EXISTS (SELECT 1 FROM crypto_deposits d WHERE d.id = l.transfer_id)
   AND NOT EXISTS (SELECT 1 FROM crypto_payouts p WHERE p.id = l.transfer_id)
UNION ALL
SELECT 'locked', w.id::text, w.locked::text, (coalesce(k.locked, 0) + w.locked_wins)::text
  FROM wallets w LEFT JOIN locks k ON k.wallet_id = w.id
 WHERE w.locked <> coalesce(k.locked, 0) + w.locked_wins
    OR (w.locked_wins > 0 AND coalesce(k.locked, 0) = 0)";

/// Seamless bets whose legs disagree with their state (contract section 6): a provider
/// answered for a debit that is not applied, a (BetId, TransactionType) sent twice, a credit
/// neither final nor stuck past its retry horizon, a stuck leg waiting for a person; and the
/// references the seamless tables keep without foreign keys (a bet's session, a leg's bet, an
/// exchange's leg).
const SEAMLESS: &str = "
WITH per_bet AS (
    SELECT b.bet_no, b.state, b.kind, b.confirmed, b.refund_tx,
           max(l.state) FILTER (WHERE l.transaction_type = -1) AS debit,
           count(*) FILTER (WHERE l.transaction_type IN (1, 4)) AS credits,
           -- a refused (or voided) return or reversal moved nothing
           count(*) FILTER (WHERE l.transaction_type = 2 AND l.state <> 'refused') AS returns,
           count(*) FILTER (WHERE l.transaction_type = -2 AND l.state <> 'refused')
               AS reversals,
           count(*) FILTER (WHERE l.transaction_type = 2 AND l.compensation) AS compensations,
           count(*) FILTER (WHERE l.transaction_type <> 0) AS money_legs
      FROM seamless_bets b LEFT JOIN seamless_legs l ON l.bet_no = b.bet_no
     GROUP BY b.bet_no
)
SELECT 'bet', bet_no::text, state, coalesce(debit, 'none') FROM per_bet
 WHERE (confirmed AND debit IS DISTINCT FROM 'ok')
    OR NOT CASE state
        WHEN 'open' THEN debit IS NOT NULL AND credits = 0 AND returns = 0
        WHEN 'settled' THEN credits = 1 AND returns = 0 AND reversals = 0
                        AND (kind = 'pay_out') = (debit IS NULL)
        -- the stake back, the win back, or both; or nothing to send (no stake, no win)
        WHEN 'refunded' THEN returns <= 1 AND reversals <= 1
                         AND (returns = 1 OR reversals = 1 OR refund_tx IS NOT NULL)
        WHEN 'refused' THEN debit = 'refused'
        WHEN 'compensated' THEN compensations = 1
        WHEN 'tombstone' THEN money_legs = 0 OR debit = 'refused'
        ELSE false END
UNION ALL
SELECT 'key', bet_no::text, transaction_type::text, count(*)::text FROM seamless_legs
 GROUP BY bet_no, transaction_type HAVING count(*) > 1
UNION ALL
SELECT 'leg', l.id::text, l.state, l.transaction_type::text
  FROM seamless_legs l JOIN seamless_bets b ON b.bet_no = l.bet_no
  LEFT JOIN seamless_operators o ON o.operator_id = b.operator_id
 WHERE l.state = 'stuck'
    OR (l.transaction_type <> -1 AND l.state NOT IN ('ok', 'refused')
        AND l.created_at < now() - make_interval(secs => coalesce(o.retry_horizon_s, 0) + 60))
UNION ALL
SELECT 'orphan', b.bet_no::text, 'bet', b.session_id::text FROM seamless_bets b
 WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = b.session_id)
UNION ALL
SELECT 'orphan', l.id::text, 'leg', l.bet_no::text FROM seamless_legs l
 WHERE NOT EXISTS (SELECT 1 FROM seamless_bets b WHERE b.bet_no = l.bet_no)
UNION ALL
SELECT 'orphan', e.id::text, 'exchange', e.leg_id::text FROM seamless_exchanges e
 WHERE NOT EXISTS (SELECT 1 FROM seamless_legs l WHERE l.id = e.leg_id)";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub ok: bool,
    pub wallets: i64,
    pub journal_rows: i64,
    pub bets: i64,
    pub transfers: i64,
    pub wallet_mismatches: Vec<Value>,
    pub bet_mismatches: Vec<Value>,
    pub transfer_mismatches: Vec<Value>,
    pub crypto_mismatches: Vec<Value>,
    pub seamless_bets: i64,
    pub seamless_mismatches: Vec<Value>,
    /// Credits, returns and closes not final yet (still being retried): not a mismatch.
    pub seamless_legs_in_flight: i64,
    /// Casino verdicts that contradicted a recorded one: recorded, never applied.
    pub seamless_discrepancies: i64,
}

/// Checks the whole ledger in one repeatable-read snapshot.
pub async fn run(client: &mut Client) -> anyhow::Result<Report> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let counts = tx
        .query_one(
            "SELECT (SELECT count(*) FROM wallets), (SELECT count(*) FROM journal),
                    (SELECT count(*) FROM bets), (SELECT count(*) FROM transfers),
                    (SELECT count(*) FROM seamless_bets),
                    (SELECT count(*) FROM seamless_legs
                      WHERE transaction_type <> -1 AND state NOT IN ('ok', 'refused', 'stuck')),
                    (SELECT count(*) FROM seamless_discrepancies)",
            &[],
        )
        .await?;
    let wallet_fields = [
        "walletId",
        "balance",
        "journalSum",
        "version",
        "journalRows",
        "chainBreaks",
    ];
    let mut wallet_mismatches = mismatches(&tx, WALLETS, &wallet_fields).await?;
    wallet_mismatches.extend(mismatches(&tx, ORPHANS, &["orphan", "id"]).await?);
    let bet_fields = ["providerId", "betId", "state", "journalNet"];
    let bet_mismatches = mismatches(&tx, BETS, &bet_fields).await?;
    let transfer_fields = ["transferId", "status", "journalNet"];
    let transfer_mismatches = mismatches(&tx, TRANSFERS, &transfer_fields).await?;
    let crypto_fields = ["subject", "id", "state", "journalNet"];
    let crypto_mismatches = mismatches(&tx, CRYPTO, &crypto_fields).await?;
    let seamless_fields = ["subject", "id", "state", "detail"];
    let seamless_mismatches = mismatches(&tx, SEAMLESS, &seamless_fields).await?;
    tx.commit().await?;
    Ok(Report {
        ok: wallet_mismatches.is_empty()
            && bet_mismatches.is_empty()
            && transfer_mismatches.is_empty()
            && crypto_mismatches.is_empty()
            && seamless_mismatches.is_empty(),
        wallets: counts.try_get(0)?,
        journal_rows: counts.try_get(1)?,
        bets: counts.try_get(2)?,
        transfers: counts.try_get(3)?,
        wallet_mismatches,
        bet_mismatches,
        transfer_mismatches,
        crypto_mismatches,
        seamless_bets: counts.try_get(4)?,
        seamless_mismatches,
        seamless_legs_in_flight: counts.try_get(5)?,
        seamless_discrepancies: counts.try_get(6)?,
    })
}

/// Runs one check and gives each row found as a JSON object, column `i` under `fields[i]`:
/// a `bigint` column as a number, any other as text.
async fn mismatches(
    tx: &Transaction<'_>,
    sql: &str,
    fields: &[&str],
) -> Result<Vec<Value>, tokio_postgres::Error> {
    let rows = tx.query(sql, &[]).await?;
    rows.iter()
        .map(|row| {
            let mut object = Map::new();
            for (i, field) in fields.iter().enumerate() {
                let value = if row.columns().get(i).map(|c| c.type_()) == Some(&Type::INT8) {
                    Value::from(row.try_get::<_, i64>(i)?)
                } else {
                    Value::from(row.try_get::<_, String>(i)?)
                };
                object.insert((*field).to_string(), value);
            }
            Ok(Value::Object(object))
        })
        .collect()
}
