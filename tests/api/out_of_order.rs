//! Every row of the out-of-order table in `reference/betcore.md`, each asserting the answer,
//! the balance and the journal.

use crate::helpers::{dec, spawn_app};

#[tokio::test]
async fn a_new_pay_in_debits_the_stake() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let r = app.pay_in(&p, "b1", "10.5").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("89.5")));
    assert!(r.str("betTransactionId").is_some());
    assert_eq!(app.wallet(&p).await, (dec("89.5"), 2));
    assert_eq!(app.bet_state("b1").await.as_deref(), Some("open"));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_new_pay_in_out_debits_the_stake_and_credits_the_win() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let r = app.pay_in_out(&p, "b1", "10.5", "55.25").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("144.75")));
    let (bet_tx, win_tx) = (r.str("betTransactionId"), r.str("winTransactionId"));
    assert!(bet_tx.is_some() && win_tx.is_some() && bet_tx != win_tx);
    assert_eq!(app.wallet(&p).await, (dec("144.75"), 3));
    assert_eq!(app.bet_state("b1").await.as_deref(), Some("settled"));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_repeated_pay_in_answers_104_with_the_original_transaction() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let first = app.pay_in(&p, "b1", "10").await;
    first.expect(1, 200);
    // Same data, amount written differently (string, trailing zero): still the same bet.
    let again = app
        .call(&p, "pay-in", r#"{"betId":"b1","betAmount":"10.00"}"#)
        .await;
    again.expect(104, 200);
    assert_eq!(again.str("betTransactionId"), first.str("betTransactionId"));
    assert_eq!(again.balance(), Some(dec("90")));
    assert_eq!(app.wallet(&p).await, (dec("90"), 2));

    let first = app.pay_in_out(&p, "b2", "5", "7").await;
    first.expect(1, 200);
    let again = app.pay_in_out(&p, "b2", "5", "7").await;
    again.expect(104, 200);
    assert_eq!(again.str("winTransactionId"), first.str("winTransactionId"));
    assert_eq!(app.wallet(&p).await, (dec("92"), 4));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_pay_in_reusing_a_bet_id_with_other_data_gets_9() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "b1", "10").await.expect(1, 200);
    app.pay_in(&p, "b1", "11").await.expect(9, 402);
    app.pay_in_out(&p, "b1", "10", "0").await.expect(9, 402);
    app.call(
        &p,
        "pay-in",
        r#"{"betId":"b1","betAmount":10,"gameRoundId":"r9"}"#,
    )
    .await
    .expect(9, 402);
    // The same betId on another player's session is other data too.
    let q = app.player("USD", "100").await;
    app.pay_in(&q, "b1", "10").await.expect(9, 402);
    assert_eq!(app.wallet(&p).await, (dec("90"), 2));
    assert_eq!(app.wallet(&q).await, (dec("100"), 1));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_pay_in_for_a_refunded_bet_or_a_tombstone_gets_6() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "b1", "10").await.expect(1, 200);
    app.refund(&p, "b1").await.expect(1, 200);
    app.pay_in(&p, "b1", "10").await.expect(6, 402);
    // Refund first: the bet, when it arrives, is dead.
    app.refund(&p, "b2").await.expect(1, 200);
    app.pay_in(&p, "b2", "10").await.expect(6, 402);
    app.pay_in_out(&p, "b2", "10", "20").await.expect(6, 402);
    assert_eq!(app.wallet(&p).await, (dec("100"), 3));
    assert_eq!(app.bet_state("b2").await.as_deref(), Some("tombstone"));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_pay_out_settles_an_open_bet() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "win", "10").await.expect(1, 200);
    let r = app.pay_out(&p, "win", "25.5").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("115.5")));
    assert!(r.str("winTransactionId").is_some());
    // A loss is a PayOut of 0: settled, balance unchanged.
    app.pay_in(&p, "loss", "10").await.expect(1, 200);
    let r = app.pay_out(&p, "loss", "0").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("105.5")));
    assert_eq!(app.bet_state("loss").await.as_deref(), Some("settled"));
    assert_eq!(app.wallet(&p).await, (dec("105.5"), 5));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_pay_out_for_an_unknown_bet_is_a_standalone_win() {
    let app = spawn_app().await;
    let p = app.player("USD", "0").await;
    let r = app.pay_out(&p, "jackpot", "1000").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("1000")));
    assert_eq!(app.bet_state("jackpot").await.as_deref(), Some("settled"));
    // It is a settled bet: a PayIn with that id is other data.
    app.pay_in(&p, "jackpot", "1").await.expect(9, 402);
    assert_eq!(app.wallet(&p).await, (dec("1000"), 1));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_repeated_pay_out_answers_104_and_another_win_gets_9() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "b1", "10").await.expect(1, 200);
    let first = app.pay_out(&p, "b1", "30").await;
    first.expect(1, 200);
    let again = app.pay_out(&p, "b1", "30.00").await;
    again.expect(104, 200);
    assert_eq!(again.str("winTransactionId"), first.str("winTransactionId"));
    app.pay_out(&p, "b1", "31").await.expect(9, 402);
    // PayInOut already carries its win: a PayOut with the same win is a repeat.
    app.pay_in_out(&p, "b2", "1", "2").await.expect(1, 200);
    app.pay_out(&p, "b2", "2").await.expect(104, 200);
    app.pay_out(&p, "b2", "3").await.expect(9, 402);
    assert_eq!(app.wallet(&p).await, (dec("121"), 5));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_pay_out_for_a_refunded_bet_gets_6() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "b1", "10").await.expect(1, 200);
    app.refund(&p, "b1").await.expect(1, 200);
    app.pay_out(&p, "b1", "30").await.expect(6, 402);
    app.refund(&p, "b2").await.expect(1, 200);
    app.pay_out(&p, "b2", "30").await.expect(6, 402);
    assert_eq!(app.wallet(&p).await, (dec("100"), 3));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_refund_of_an_open_bet_gives_the_stake_back() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "b1", "10").await.expect(1, 200);
    let r = app.refund(&p, "b1").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("100")));
    assert!(r.str("refundTransactionId").is_some());
    assert_eq!(app.bet_state("b1").await.as_deref(), Some("refunded"));
    assert_eq!(app.wallet(&p).await, (dec("100"), 3));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_refund_of_a_settled_bet_reverses_every_leg() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in_out(&p, "b1", "10", "50").await.expect(1, 200);
    let r = app.refund(&p, "b1").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("100")));
    assert_eq!(app.wallet(&p).await, (dec("100"), 5));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_refund_of_a_settled_bet_whose_win_was_spent_gets_2_and_changes_nothing() {
    let app = spawn_app().await;
    let p = app.player("USD", "10").await;
    app.pay_in(&p, "b1", "10").await.expect(1, 200);
    app.pay_out(&p, "b1", "100").await.expect(1, 200);
    app.pay_in(&p, "b2", "95").await.expect(1, 200);
    // Balance 5; reversing b1 would be 5 + 10 - 100 < 0.
    app.refund(&p, "b1").await.expect(2, 402);
    assert_eq!(app.bet_state("b1").await.as_deref(), Some("settled"));
    assert_eq!(app.wallet(&p).await, (dec("5"), 4));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_refund_for_an_unknown_bet_writes_a_tombstone() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let r = app.refund(&p, "ghost").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("100")));
    assert_eq!(app.bet_state("ghost").await.as_deref(), Some("tombstone"));
    assert_eq!(app.wallet(&p).await, (dec("100"), 1));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_repeated_refund_answers_104() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "b1", "10").await.expect(1, 200);
    let first = app.refund(&p, "b1").await;
    first.expect(1, 200);
    let again = app.refund(&p, "b1").await;
    again.expect(104, 200);
    assert_eq!(
        again.str("refundTransactionId"),
        first.str("refundTransactionId")
    );
    app.refund(&p, "ghost").await.expect(1, 200);
    app.refund(&p, "ghost").await.expect(104, 200);
    assert_eq!(app.wallet(&p).await, (dec("100"), 3));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn wins_and_refunds_ignore_session_expiry_but_bets_do_not() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "b1", "10").await.expect(1, 200);
    app.pay_in(&p, "b2", "10").await.expect(1, 200);
    app.sql(&format!(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = '{}'",
        p.session
    ))
    .await;
    app.pay_in(&p, "b3", "10").await.expect(3, 402);
    app.pay_in_out(&p, "b4", "10", "1").await.expect(3, 402);
    app.pay_out(&p, "b1", "15").await.expect(1, 200);
    app.refund(&p, "b2").await.expect(1, 200);
    // A retry of a bet applied before the expiry is still "already processed".
    app.pay_in(&p, "b1", "10").await.expect(104, 200);
    assert_eq!(app.wallet(&p).await, (dec("105"), 5));
    app.assert_books_balance().await;
}
