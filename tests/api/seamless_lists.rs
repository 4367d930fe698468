//! `payments/make-list`: an operator that enables it gets the makes of concurrent calls as
//! lists (one JWT for many movements), each movement judged by its own result, and a list
//! without an answer leaves every movement in it to the failure rules of a lone make.

use std::time::Duration;

use croupier::demo_casino::Fault;
use croupier::seamless::admin::SettingsChange;

use crate::helpers::dec;
use crate::seamless_flow::{rule, Bench};

/// A bench whose operator sends lists, with the given attempt timeout and provider deadline.
async fn lists_bench(attempt_timeout_ms: i32, provider_deadline_ms: i32) -> Bench {
    let b = Bench::start().await;
    b.app
        .admin
        .operator_set_seamless(
            &b.operator.id,
            &SettingsChange {
                make_list: Some(true),
                attempt_timeout_ms: Some(attempt_timeout_ms),
                provider_deadline_ms: Some(provider_deadline_ms),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.app.seamless.forget_all();
    b
}

/// Holds the first two makes (both list lanes busy) so that the calls behind them queue and
/// go as one list.
fn slow_first_makes(b: &Bench, ms: u64) {
    b.fault(vec![rule("payments/make", None, Fault::Latency { ms }, 2)]);
}

#[tokio::test]
async fn concurrent_calls_go_as_lists_and_each_movement_is_judged_by_its_own_result() {
    let b = lists_bench(3000, 8000).await;
    slow_first_makes(&b, 300);
    // 30 losing bets of 5 on a balance of 100: twenty fit, ten are refused for funds,
    // whatever order the casino applies them in.
    let bets: Vec<String> = (0..30).map(|i| format!("l{i}")).collect();
    let calls = bets
        .iter()
        .map(|bet| b.app.pay_in_out(&b.player, bet, "5", "0"));
    let answers = futures::future::join_all(calls).await;
    let mut codes: Vec<i64> = answers.iter().map(|r| r.code()).collect();
    codes.sort();
    assert_eq!(codes.iter().filter(|c| **c == 1).count(), 20, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 2).count(), 10, "{codes:?}");
    assert!(
        b.casino.calls("payments/make-list") >= 1,
        "no list was sent ({} lone makes)",
        b.casino.calls("payments/make")
    );
    assert!(
        b.casino.calls("payments/make") + b.casino.calls("payments/make-list") < 50,
        "the 50 movements were not combined"
    );
    assert_eq!(b.at_casino(), dec("0"));
    // Each answered balance is the casino's balance after that movement.
    for r in answers.iter().filter(|r| r.code() == 1) {
        let balance = r.balance().unwrap();
        assert!(balance >= dec("0") && balance < dec("100"), "{balance}");
    }
    // Every movement of a list keeps its own result as its exchange.
    let bodies: Vec<String> = b
        .app
        .pool
        .get()
        .await
        .unwrap()
        .query("SELECT body FROM seamless_exchanges", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(bodies.iter().any(|body| body.contains("\"ErrorCode\":402")));
    assert!(
        bodies.iter().all(|body| !body.contains("Results")),
        "{bodies:?}"
    );
    b.assert_books_agree().await;
}

#[tokio::test]
async fn a_list_without_an_answer_leaves_each_movement_to_the_failure_rules() {
    let b = lists_bench(400, 1200).await;
    // The first two makes are slow; the first list behind them is applied by the casino,
    // then answered 500: each of its debits' outcome is unknown.
    b.fault(vec![
        rule("payments/make", None, Fault::Latency { ms: 300 }, 2),
        rule(
            "payments/make-list",
            None,
            Fault::ErrorAfterApply { status: 500 },
            1,
        ),
    ]);
    let bets: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    let calls = bets.iter().map(|bet| b.app.pay_in(&b.player, bet, "5"));
    let answers = futures::future::join_all(calls).await;
    assert!(b.casino.calls("payments/make-list") >= 1, "no list");
    let unconfirmed: Vec<usize> = (0..8).filter(|i| answers[*i].code() == 99).collect();
    assert!(
        !unconfirmed.is_empty(),
        "the list's calls were not confirmed"
    );
    for r in &answers {
        assert!(matches!(r.code(), 1 | 99), "{}", r.code());
    }
    // The casino applied every debit of the list once.
    assert_eq!(b.at_casino(), dec("60"));
    // Debits are never retried in the background …
    b.settle(3).await;
    assert_eq!(b.at_casino(), dec("60"));
    // … but a provider's repeat sends the same movement again and hears its first result.
    for i in &unconfirmed {
        let r = b.app.pay_in(&b.player, &format!("u{i}"), "5").await;
        r.expect(1, 200);
    }
    assert_eq!(b.at_casino(), dec("60"));
    for i in 0..8 {
        assert_eq!(
            b.applied(&format!("u{i}")).await,
            vec![(-1, dec("5"))],
            "bet u{i}"
        );
    }
    b.assert_books_agree().await;
}

#[tokio::test]
async fn credits_of_an_unanswered_list_are_retried_until_applied_once() {
    // The two slow makes hold both lanes for a whole attempt (1 s): long enough for the other
    // four wins to arrive and queue behind them on a busy machine.
    let b = lists_bench(1000, 2400).await;
    for i in 0..6 {
        b.app
            .pay_in(&b.player, &format!("w{i}"), "10")
            .await
            .expect(1, 200);
    }
    assert_eq!(b.at_casino(), dec("40"));
    // The wins queue behind two slow makes; the first list is applied and answered 503.
    b.fault(vec![
        rule("payments/make", None, Fault::Latency { ms: 2500 }, 2),
        rule(
            "payments/make-list",
            None,
            Fault::ErrorAfterApply { status: 503 },
            1,
        ),
    ]);
    let bets: Vec<String> = (0..6).map(|i| format!("w{i}")).collect();
    let calls = bets.iter().map(|bet| b.app.pay_out(&b.player, bet, "7"));
    futures::future::join_all(calls).await;
    assert!(b.casino.calls("payments/make-list") >= 1, "no list");
    // The job sends every unanswered win again: the casino answers each with its first
    // result, nothing is paid twice.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b.app
        .sql("UPDATE seamless_legs SET next_attempt_at = now() WHERE state = 'unknown'")
        .await;
    b.settle(5).await;
    assert_eq!(b.at_casino(), dec("82"));
    for i in 0..6 {
        let mut applied = b.applied(&format!("w{i}")).await;
        applied.sort();
        assert_eq!(applied, vec![(-1, dec("10")), (1, dec("7"))], "bet w{i}");
    }
    let open: i64 = b
        .app
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM seamless_legs WHERE transaction_type = 1 AND state <> 'ok'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(open, 0);
    b.assert_books_agree().await;
}
