//! Group commit: calls that share one transaction answer exactly as if each ran alone, in
//! order, including calls that depend on each other inside the batch.

use futures::future::join_all;
use rust_decimal::Decimal;
use uuid::Uuid;

use std::time::Duration;

use croupier::ledger::BatchSettings;

use crate::helpers::{batching, dec, spawn_app, spawn_app_with, Player, TestApp};

/// One call of a batch: (op, player, bet id, stake, win).
type Call<'a> = (
    &'a str,
    &'a Player,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
);

/// Runs `calls` through `bet_batch` in one statement; returns (status, balance) per call.
async fn batch(app: &TestApp, calls: &[Call<'_>]) -> Vec<(String, Option<Decimal>)> {
    let nonces: Vec<Option<Uuid>> = calls.iter().map(|_| None).collect();
    batch_claiming(app, calls, &nonces).await
}

/// `batch`, each call claiming its request id (`None`: none).
async fn batch_claiming(
    app: &TestApp,
    calls: &[Call<'_>],
    nonces: &[Option<Uuid>],
) -> Vec<(String, Option<Decimal>)> {
    let ops: Vec<&str> = calls.iter().map(|c| c.0).collect();
    let providers: Vec<&str> = calls.iter().map(|_| app.provider.id.as_str()).collect();
    let sessions: Vec<Uuid> = calls.iter().map(|c| c.1.session).collect();
    let bets: Vec<&str> = calls.iter().map(|c| c.2).collect();
    let rounds: Vec<Option<&str>> = calls.iter().map(|_| None).collect();
    let stakes: Vec<Option<Decimal>> = calls.iter().map(|c| c.3.map(dec)).collect();
    let wins: Vec<Option<Decimal>> = calls.iter().map(|c| c.4.map(dec)).collect();
    let tx1: Vec<Uuid> = calls.iter().map(|_| Uuid::now_v7()).collect();
    let tx2: Vec<Uuid> = calls.iter().map(|_| Uuid::now_v7()).collect();
    let standalone: Vec<bool> = calls.iter().map(|_| true).collect();
    let client = app.pool.get().await.unwrap();
    client
        .query(
            "SELECT status, balance FROM bet_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &ops,
                &providers,
                &sessions,
                &bets,
                &rounds,
                &stakes,
                &wins,
                &tx1,
                &tx2,
                &standalone,
                &nonces,
            ],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn statuses(outcomes: &[(String, Option<Decimal>)]) -> Vec<&str> {
    outcomes.iter().map(|o| o.0.as_str()).collect()
}

#[tokio::test]
async fn calls_in_one_batch_see_each_other_in_order() {
    let app = spawn_app().await;
    let p = app.player("USD", "10").await;
    let q = app.player("USD", "5").await;
    let out = batch(
        &app,
        &[
            ("pay_in", &p, "a", Some("4"), None),          // 6 left
            ("pay_in", &p, "a", Some("4"), None),          // the same bet again: duplicate
            ("pay_in", &p, "a", Some("5"), None),          // other data: conflict
            ("pay_in", &p, "b", Some("7"), None),          // 6 < 7: insufficient funds
            ("pay_out", &p, "a", None, Some("20")),        // settles a: 26
            ("refund", &p, "c", None, None),               // tombstone
            ("pay_in_out", &p, "c", Some("1"), Some("2")), // refunded first: closed
            ("pay_in_out", &q, "d", Some("5"), Some("1")), // the other wallet: 1
            ("refund", &p, "a", None, None),               // reverses a: 26 + 4 - 20 = 10
            ("pay_out", &p, "a", None, Some("20")),        // refunded: closed
            ("pay_in", &p, "b", Some("7"), None),          // now affordable: 3
        ],
    )
    .await;
    assert_eq!(
        statuses(&out),
        [
            "ok",
            "duplicate",
            "conflict",
            "insufficient_funds",
            "ok",
            "ok",
            "bet_closed",
            "ok",
            "ok",
            "bet_closed",
            "ok"
        ]
    );
    let balances: Vec<Option<Decimal>> = out.iter().map(|o| o.1).collect();
    assert_eq!(
        balances,
        [
            Some(dec("6")),
            Some(dec("6")),
            None,
            None,
            Some(dec("26")),
            Some(dec("26")),
            None,
            Some(dec("1")),
            Some(dec("10")),
            None,
            Some(dec("3")),
        ]
    );
    // deposit + a + win + refund + reversal + b
    assert_eq!(app.wallet(&p).await, (dec("3"), 6));
    assert_eq!(app.wallet(&q).await, (dec("1"), 3));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_batch_names_sessions_it_cannot_use_without_failing_the_rest() {
    let app = spawn_app().await;
    let p = app.player("USD", "10").await;
    let mut ghost = p.clone();
    ghost.session = Uuid::now_v7();
    app.sql(&format!(
        "UPDATE sessions SET status = 'closed' WHERE id = '{}'",
        p.session
    ))
    .await;
    let q = app.player("USD", "10").await;
    let out = batch(
        &app,
        &[
            ("pay_in", &ghost, "x", Some("1"), None),
            ("pay_in", &p, "y", Some("1"), None), // closed session: no bets
            ("pay_out", &p, "z", None, Some("2")), // a win still lands
            ("pay_in", &q, "w", Some("1"), None),
        ],
    )
    .await;
    assert_eq!(
        statuses(&out),
        ["session_not_found", "session_not_found", "ok", "ok"]
    );
    assert_eq!(app.wallet(&p).await, (dec("12"), 2));
    assert_eq!(app.wallet(&q).await, (dec("9"), 2));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn concurrent_bets_of_one_player_share_transactions_when_batching_is_on() {
    let app = spawn_app().await;
    let p = app.player("USD", "1000").await;
    let replies = join_all((0..60).map(|i| {
        let (app, p) = (&app, &p);
        async move { app.pay_in_out(p, &format!("g-{i}"), "1", "1").await }
    }))
    .await;
    assert!(replies.iter().all(|r| r.code() == 1));
    let client = app.pool.get().await.unwrap();
    let transactions: i64 = client
        .query_one(
            "SELECT count(DISTINCT xmin::text) FROM journal WHERE kind = 'bet'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    if batching().is_some() {
        assert!(transactions < 60, "60 bets in {transactions} transactions");
    } else {
        assert_eq!(transactions, 60);
    }
    assert_eq!(app.wallet(&p).await, (dec("1000"), 121));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_full_queue_answers_99_at_once_and_leaves_no_trace() {
    // One combiner, one bet per batch, one bet of queue: a burst overflows it.
    let app = spawn_app_with(Some(BatchSettings {
        combiners: 1,
        max_batch: 1,
        queue: 1,
        max_wait: Duration::ZERO,
    }))
    .await;
    let p = app.player("USD", "1000").await;
    app.balance(&p).await.expect(1, 200); // the session is cached: the burst is not slowed
    let replies = join_all((0..100).map(|i| {
        let (app, p) = (&app, &p);
        async move { (i, app.pay_in(p, &format!("q-{i}"), "1").await) }
    }))
    .await;
    let applied: Vec<usize> = replies
        .iter()
        .filter(|(_, r)| r.code() == 1)
        .map(|(i, _)| *i)
        .collect();
    let refused: Vec<usize> = replies
        .iter()
        .filter(|(_, r)| r.code() == 99)
        .map(|(i, r)| {
            assert_eq!(r.status, 503, "{}", r.body);
            *i
        })
        .collect();
    assert_eq!(applied.len() + refused.len(), 100);
    assert!(!refused.is_empty() && !applied.is_empty());
    for i in &refused {
        assert_eq!(app.bet_state(&format!("q-{i}")).await, None);
    }
    let (balance, rows) = app.wallet(&p).await;
    assert_eq!(rows, 1 + applied.len() as i64);
    assert_eq!(balance, dec("1000") - Decimal::from(applied.len() as i64));
    // A refused bet, sent again, applies.
    app.pay_in(&p, &format!("q-{}", refused[0]), "1")
        .await
        .expect(1, 200);
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_batch_keeps_locked_funds_out_of_play_when_the_operator_says_so() {
    let app = spawn_app().await;
    let p = app.player("USD", "10").await;
    // A detected crypto deposit of 100 USD (asset = wallet currency: rate 1), locked.
    app.sql(&format!(
        "INSERT INTO crypto_addresses (id, player_id, wallet_id, scale, asset, blockchain, address)
         SELECT gen_random_uuid(), w.player_id, w.id, 2, 'USD', 'TEST', 'addr-1'
           FROM wallets w JOIN players pl ON pl.id = w.player_id
          WHERE pl.external_id = '{}';
         SELECT crypto_deposit_apply('tx-1', 'Pending', 100, 'USD', 'TEST', 'addr-1', NULL,
                                     gen_random_uuid(), gen_random_uuid());",
        p.external_id
    ))
    .await;
    app.admin
        .operator_set_locked_play(&app.operator.id, false)
        .await
        .unwrap();
    let out = batch(
        &app,
        &[
            ("pay_in", &p, "b1", Some("10.01"), None),
            ("pay_in", &p, "b2", Some("10"), None),
            ("pay_in", &p, "b3", Some("0.01"), None),
        ],
    )
    .await;
    assert_eq!(
        statuses(&out),
        ["insufficient_funds", "ok", "insufficient_funds"]
    );
    app.admin
        .operator_set_locked_play(&app.operator.id, true)
        .await
        .unwrap();
    let out = batch(&app, &[("pay_in", &p, "b4", Some("100"), None)]).await;
    assert_eq!(out, [("ok".to_string(), Some(dec("0")))]);
    app.assert_books_balance().await;
}

/// A batch claims its calls' request ids in its own transaction: an id claimed before (by
/// another batch, another server) is a replay, refused without touching its neighbours.
#[tokio::test]
async fn a_batch_refuses_a_call_whose_request_id_was_claimed_before() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let outcomes = batch_claiming(
        &app,
        &[("pay_in", &p, "n1", Some("1"), None)],
        &[Some(first)],
    )
    .await;
    assert_eq!(statuses(&outcomes), ["ok"]);
    let outcomes = batch_claiming(
        &app,
        &[
            ("pay_in", &p, "n2", Some("5"), None),
            ("pay_in", &p, "n3", Some("2"), None),
        ],
        &[Some(first), Some(second)],
    )
    .await;
    assert_eq!(statuses(&outcomes), ["replayed", "ok"]);
    assert_eq!(outcomes[1].1, Some(dec("97")));
    assert_eq!(app.bet_state("n2").await, None);
    app.assert_books_balance().await;
}

/// New bets the balance covers are placed set-based, wallet by wallet; a wallet with
/// anything else in the batch (a refusal, a repeat, locked funds) goes call by call. Both
/// kinds in one batch answer as one by one would, and leave the same books.
#[tokio::test]
async fn set_based_and_one_by_one_wallets_in_one_batch_answer_as_one_by_one() {
    let app = spawn_app().await;
    let fast = app.player("USD", "10").await;
    let short = app.player("USD", "10").await;
    let repeat = app.player("USD", "10").await;
    let first = batch(&app, &[("pay_in", &repeat, "r1", Some("1"), None)]).await;
    assert_eq!(statuses(&first), ["ok"]);
    let out = batch(
        &app,
        &[
            ("pay_in_out", &fast, "f1", Some("10"), Some("25")), // 25: the win pays for f3
            ("pay_in", &short, "s1", Some("6"), None),           // 4
            ("pay_in", &repeat, "r2", Some("2"), None),          // 7
            ("pay_in", &fast, "f2", Some("5"), None),            // 20
            ("pay_in", &short, "s2", Some("6"), None),           // 4 < 6: refused
            ("pay_in", &repeat, "r1", Some("1"), None),          // a repeat: 7
            ("pay_in_out", &fast, "f3", Some("20"), Some("0.5")), // 0.5
            ("pay_in", &short, "s3", Some("4"), None),           // 0
            ("pay_in", &repeat, "r3", Some("6"), None),          // 1
        ],
    )
    .await;
    assert_eq!(
        statuses(&out),
        [
            "ok",
            "ok",
            "ok",
            "ok",
            "insufficient_funds",
            "duplicate",
            "ok",
            "ok",
            "ok"
        ]
    );
    let balances: Vec<Option<Decimal>> = out.iter().map(|o| o.1).collect();
    assert_eq!(
        balances,
        [
            Some(dec("25")),
            Some(dec("4")),
            Some(dec("7")),
            Some(dec("20")),
            None,
            Some(dec("7")),
            Some(dec("0.5")),
            Some(dec("0")),
            Some(dec("1")),
        ]
    );
    // deposit + f1 (2 legs) + f2 + f3 (2 legs); deposit + s1 + s3; deposit + r1 + r2 + r3
    assert_eq!(app.wallet(&fast).await, (dec("0.5"), 6));
    assert_eq!(app.wallet(&short).await, (dec("0"), 3));
    assert_eq!(app.wallet(&repeat).await, (dec("1"), 4));
    assert_eq!(app.bet_state("s2").await, None);
    assert_eq!(app.bet_state("f1").await.as_deref(), Some("settled"));
    assert_eq!(app.bet_state("f2").await.as_deref(), Some("open"));
    // The journal chain (sequence numbers, balance after each leg) is checked here.
    app.assert_books_balance().await;
}

/// A bet placed set-based whose betId another transaction places first, while the batch
/// waits for it: the batch takes its wallet's other bets back and runs that wallet call by
/// call, so the reused betId is a conflict and its neighbour is placed once.
#[tokio::test]
async fn a_bet_id_taken_by_another_transaction_mid_batch_sends_its_wallet_one_by_one() {
    let app = spawn_app().await;
    let p = app.player("USD", "10").await;
    let q = app.player("USD", "10").await;
    let mut other = app.pool.get().await.unwrap();
    let tx = other.transaction().await.unwrap();
    let row = tx
        .query_one(
            "SELECT status FROM pay_in($1, $2, 'race', NULL, 3, gen_random_uuid())",
            &[&app.provider.id, &q.session],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ok");
    let calls = [
        ("pay_in", &p, "race", Some("1"), None),
        ("pay_in", &p, "mine", Some("2"), None),
    ];
    let racing = batch(&app, &calls);
    let commit = async {
        // The batch's INSERT waits on the uncommitted row; then it is committed.
        tokio::time::sleep(Duration::from_millis(500)).await;
        tx.commit().await.unwrap();
    };
    let (out, ()) = tokio::join!(racing, commit);
    assert_eq!(
        out,
        [
            ("conflict".to_string(), None),
            ("ok".to_string(), Some(dec("8")))
        ]
    );
    assert_eq!(app.wallet(&p).await, (dec("8"), 2));
    assert_eq!(app.wallet(&q).await, (dec("7"), 2));
    app.assert_books_balance().await;
}
