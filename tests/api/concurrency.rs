//! Concurrent calls: the wallet row lock serialises one player's calls, so no race can
//! overdraw a wallet or apply a betId twice.

use futures::future::join_all;

use crate::helpers::{dec, spawn_app};

#[tokio::test]
async fn fifty_concurrent_bets_on_twenty_leave_exactly_twenty_applied() {
    let app = spawn_app().await;
    let p = app.player("USD", "20.00").await;
    let replies = join_all((0..50).map(|i| {
        let (app, p) = (&app, &p);
        async move { app.pay_in(p, &format!("bet-{i}"), "1.00").await }
    }))
    .await;
    let ok = replies.iter().filter(|r| r.code() == 1).count();
    let short = replies.iter().filter(|r| r.code() == 2).count();
    assert_eq!(
        (ok, short),
        (20, 30),
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert_eq!(app.wallet(&p).await, (dec("0"), 21));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn the_same_bet_sent_twenty_times_at_once_is_applied_once() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let replies = join_all((0..20).map(|_| app.pay_in(&p, "same", "7.5"))).await;
    let ok = replies.iter().filter(|r| r.code() == 1).count();
    let repeats = replies.iter().filter(|r| r.code() == 104).count();
    assert_eq!((ok, repeats), (1, 19));
    let tx: Vec<_> = replies.iter().map(|r| r.str("betTransactionId")).collect();
    assert!(tx.iter().all(|t| t == &tx[0]), "one transaction id for all");
    assert_eq!(app.wallet(&p).await, (dec("92.5"), 2));

    let replies = join_all((0..20).map(|_| app.pay_in_out(&p, "same-io", "1", "3"))).await;
    assert_eq!(replies.iter().filter(|r| r.code() == 1).count(), 1);
    assert_eq!(app.wallet(&p).await, (dec("94.5"), 4));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_refund_racing_its_own_bet_ends_consistent_either_way() {
    let app = spawn_app().await;
    let p = app.player("USD", "1000").await;
    for round in 0..20 {
        let bet = format!("race-{round}");
        let (bet_reply, refund_reply) =
            tokio::join!(app.pay_in(&p, &bet, "10"), app.refund(&p, &bet));
        refund_reply.expect(1, 200);
        match app.bet_state(&bet).await.as_deref() {
            // The bet came first and was refunded.
            Some("refunded") => bet_reply.expect(1, 200),
            // The refund came first: the bet is dead on arrival.
            Some("tombstone") => bet_reply.expect(6, 402),
            other => panic!("unexpected state {other:?}"),
        };
    }
    // Either way no money moved in the end.
    assert_eq!(app.wallet(&p).await.0, dec("1000"));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn many_players_betting_at_once_keep_their_books() {
    let app = spawn_app().await;
    let mut players = Vec::new();
    for _ in 0..8 {
        players.push(app.player("USD", "50").await);
    }
    let calls = players.iter().flat_map(|p| (0..10).map(move |i| (p, i)));
    join_all(calls.map(|(p, i)| {
        let app = &app;
        async move {
            let bet = format!("{}-{i}", p.external_id);
            match i % 3 {
                0 => app
                    .pay_in_out(p, &bet, "2", "3")
                    .await
                    .expect(1, 200)
                    .code(),
                1 => {
                    app.pay_in(p, &bet, "2").await.expect(1, 200);
                    app.pay_out(p, &bet, "1").await.expect(1, 200).code()
                }
                _ => {
                    app.pay_in(p, &bet, "2").await.expect(1, 200);
                    app.refund(p, &bet).await.expect(1, 200).code()
                }
            }
        }
    }))
    .await;
    for p in &players {
        // 4 × (+1) + 3 × (−1) + 3 × 0
        assert_eq!(app.wallet(p).await.0, dec("51"));
    }
    app.assert_books_balance().await;
}
