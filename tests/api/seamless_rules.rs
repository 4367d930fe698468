//! Seamless mode's repeat and refund rules where the contract leaves room: a refund the
//! casino refuses, refunds with nothing staked, repeats arriving together, a Refund racing
//! its PayIn.

use crate::helpers::dec;
use crate::seamless_flow::Bench;

#[tokio::test]
async fn a_refund_refused_because_the_win_was_spent_leaves_the_bet_settled() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);
    app.pay_in(p, "s1", "10").await.expect(1, 200);
    app.pay_out(p, "s1", "30").await.expect(1, 200);
    // The win is spent: 120 on another bet.
    app.pay_in(p, "s2", "120").await.expect(1, 200);
    assert_eq!(b.at_casino(), dec("0"));
    // The refund's make(-2) is refused for funds: 2, and its make(2) is never sent.
    app.refund(p, "s1").await.expect(2, 402);
    let mut applied = b.applied("s1").await;
    applied.sort();
    assert_eq!(applied, vec![(-1, dec("10")), (1, dec("30"))]);
    // The bet stands as settled: its PayOut and PayIn repeat are 104, not 6.
    app.pay_out(p, "s1", "30").await.expect(104, 200);
    app.pay_in(p, "s1", "10").await.expect(104, 200);
    // A Refund repeat hears the casino's refusal again, without a second movement.
    let sent = b.casino.calls("payments/make");
    app.refund(p, "s1").await.expect(2, 402);
    assert_eq!(b.casino.calls("payments/make"), sent);
    assert_eq!(b.at_casino(), dec("0"));
    b.settle(3).await;
    b.assert_books_agree().await;
}

#[tokio::test]
async fn refunds_with_nothing_staked_answer_their_own_id_and_reconcile() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);
    // A free round won: the refund takes the win back, nothing else.
    app.pay_in(p, "f1", "0").await.expect(1, 200);
    app.pay_out(p, "f1", "3.1").await.expect(1, 200);
    let r = app.refund(p, "f1").await;
    r.expect(1, 200);
    let refund_id = r.str("refundTransactionId");
    assert!(refund_id.is_some(), "no refundTransactionId");
    let mut applied = b.applied("f1").await;
    applied.sort();
    assert_eq!(
        applied,
        vec![(-2, dec("3.1")), (-1, dec("0")), (1, dec("3.1"))]
    );
    let again = app.refund(p, "f1").await;
    again.expect(104, 200);
    assert_eq!(again.str("refundTransactionId"), refund_id);

    // A free round lost: nothing to send, the refund still has its id.
    app.pay_in(p, "f2", "0").await.expect(1, 200);
    app.pay_out(p, "f2", "0").await.expect(1, 200);
    let sent = b.casino.calls("payments/make");
    let r = app.refund(p, "f2").await;
    r.expect(1, 200);
    assert!(r.str("refundTransactionId").is_some());
    assert_eq!(b.casino.calls("payments/make"), sent, "nothing to send");
    let again = app.refund(p, "f2").await;
    again.expect(104, 200);
    assert_eq!(
        again.str("refundTransactionId"),
        r.str("refundTransactionId")
    );
    app.pay_out(p, "f2", "0").await.expect(6, 402);

    // A standalone win refunded: its make(-2) alone.
    app.pay_out(p, "jack", "7").await.expect(1, 200);
    let r = app.refund(p, "jack").await;
    r.expect(1, 200);
    assert!(r.str("refundTransactionId").is_some());
    let mut applied = b.applied("jack").await;
    applied.sort();
    assert_eq!(applied, vec![(-2, dec("7")), (4, dec("7"))]);

    assert_eq!(b.at_casino(), dec("100"));
    b.settle(5).await;
    b.assert_books_agree().await;
}

#[tokio::test]
async fn repeats_arriving_together_are_104_but_the_one_that_heard_the_casino() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);
    app.pay_in(p, "c1", "10").await.expect(1, 200);
    let count = |answers: &[crate::helpers::Reply]| {
        let ones = answers.iter().filter(|r| r.code() == 1).count();
        let repeats = answers.iter().filter(|r| r.code() == 104).count();
        (ones, repeats)
    };
    let pay_outs = futures::future::join_all((0..10).map(|_| app.pay_out(p, "c1", "4"))).await;
    assert_eq!(count(&pay_outs), (1, 9), "PayOut");
    let refunds = futures::future::join_all((0..10).map(|_| app.refund(p, "c1"))).await;
    assert_eq!(count(&refunds), (1, 9), "Refund");
    let mut applied = b.applied("c1").await;
    applied.sort();
    assert_eq!(
        applied,
        vec![
            (-2, dec("4")),
            (-1, dec("10")),
            (1, dec("4")),
            (2, dec("10"))
        ]
    );
    b.settle(5).await;
    b.assert_books_agree().await;
}

#[tokio::test]
async fn a_refund_racing_its_pay_in_never_answers_9() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);
    for round in 0..10 {
        let bet = format!("r{round}");
        let pay_ins = (0..3).map(|_| app.pay_in(p, &bet, "1"));
        let refunds = (0..3).map(|_| app.refund(p, &bet));
        let (pay_ins, refunds) = futures::future::join(
            futures::future::join_all(pay_ins),
            futures::future::join_all(refunds),
        )
        .await;
        for r in pay_ins.iter().chain(&refunds) {
            assert_ne!(r.code(), 9, "{bet}: {:?}", r.str("message"));
        }
        assert!(refunds.iter().all(|r| matches!(r.code(), 1 | 104)), "{bet}");
    }
    // Every bet ends with its stake back or never taken.
    assert_eq!(b.at_casino(), dec("100"));
    b.settle(5).await;
    b.assert_books_agree().await;
}
