//! Seamless mode end to end: provider calls forwarded to a casino wallet (the demo casino,
//! at the HTTP boundary), the failure rules, and the books on both sides.

use std::time::Duration;

use croupier::demo_casino::{Casino, CasinoConfig, Fault, FaultRule, Movement};
use croupier::money::Currency;
use croupier::startup::ServerConfig;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::{dec, spawn_app_configured, Player, TestApp};

/// A server, a casino wired to it, and a seamless player with an open session.
pub struct Bench {
    pub app: TestApp,
    pub casino: Casino,
    pub operator: croupier::admin::Credentials,
    pub player: Player,
}

impl Bench {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig::local(crate::helpers::batching());
        // The job is run by hand in these tests.
        config.seamless.job_interval = Duration::from_secs(3600);
        tune(&mut config);
        let app = spawn_app_configured(config).await;
        let jwks_url = format!("{}/mis-api/api/v2/auth/jwks", app.base);
        // The casino needs the operator's credentials for its late accepts: made first with
        // a placeholder wallet, pointed at the casino once it listens.
        let operator = app
            .admin
            .operator_add_seamless("Wallet Casino", "http://127.0.0.1:9")
            .await
            .unwrap();
        let casino = Casino::start(CasinoConfig {
            listen: "127.0.0.1:0".into(),
            jwks_url,
            issuer: Some(app.config.seamless.signing.issuer.clone()),
            auto_players: None,
            currency: "USD".into(),
            accept: Some(croupier::demo_casino::AcceptTarget {
                croupier_url: app.base.clone(),
                client_id: operator.id.clone(),
                secret: operator.secret.clone(),
            }),
            workers: 1,
        })
        .unwrap();
        app.admin
            .operator_set_wallet(&operator.id, &casino.url())
            .await
            .unwrap();
        let usd = Currency::parse("USD").unwrap();
        let external_id = format!("alice-{}", uuid::Uuid::new_v4().simple());
        app.admin
            .player_add(&operator.id, &external_id, usd)
            .await
            .unwrap();
        let session = app
            .admin
            .session_open(
                &app.provider.id,
                &operator.id,
                &external_id,
                usd,
                "slot",
                60,
            )
            .await
            .unwrap();
        casino.set_player(&external_id, dec("100"), "USD");
        // The server learns of the new mode through the database.
        for _ in 0..100 {
            if app
                .seamless
                .settings(&operator.id)
                .await
                .unwrap()
                .is_some_and(|s| s.wallet_url == casino.url())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            player: Player {
                external_id,
                currency: usd,
                session: session.0,
            },
            app,
            casino,
            operator,
        }
    }

    pub fn at_casino(&self) -> Decimal {
        self.casino.balance(&self.player.external_id).unwrap()
    }

    pub fn fault(&self, rules: Vec<FaultRule>) {
        self.casino.set_faults(rules);
    }

    /// The bet's numeric BetId.
    pub async fn bet_no(&self, bet: &str) -> i64 {
        self.app
            .pool
            .get()
            .await
            .unwrap()
            .query_one(
                "SELECT bet_no FROM seamless_bets WHERE provider_id = $1 AND bet_id = $2",
                &[&self.app.provider.id, &bet],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// The legs of a bet: (type, state, meaning, attempts).
    pub async fn legs(&self, bet: &str) -> Vec<(i16, String, Option<String>, i32)> {
        self.app
            .pool
            .get()
            .await
            .unwrap()
            .query(
                "SELECT l.transaction_type, l.state, l.meaning, l.attempts
                   FROM seamless_legs l JOIN seamless_bets b ON b.bet_no = l.bet_no
                  WHERE b.provider_id = $1 AND b.bet_id = $2 ORDER BY l.seq",
                &[&self.app.provider.id, &bet],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    /// The casino's applied movements of a bet, by type.
    pub async fn applied(&self, bet: &str) -> Vec<(i64, Decimal)> {
        let no = self.bet_no(bet).await;
        self.casino
            .movements()
            .into_iter()
            .filter(|m| m.bet_id == no && m.error_code == 200)
            .map(|m| (m.transaction_type, m.amount))
            .collect()
    }

    /// Runs the seamless job until nothing is due (at most `passes`).
    pub async fn settle(&self, passes: usize) {
        for _ in 0..passes {
            let report = self.app.seamless.run_pass().await.unwrap();
            if report.sent == 0 && report.compensated == 0 && report.asked == 0 {
                return;
            }
        }
    }

    /// Every casino movement applied matches an ok leg of the same key and amount, and the
    /// reverse; reconcile passes.
    pub async fn assert_books_agree(&self) {
        let client = self.app.pool.get().await.unwrap();
        let ours: Vec<(i64, i64, Decimal)> = client
            .query(
                "SELECT bet_no, transaction_type::bigint, amount FROM seamless_legs
                  WHERE state = 'ok' AND meaning = 'applied' AND transaction_type <> 0
                  ORDER BY 1, 2",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let mut theirs: Vec<(i64, i64, Decimal)> = self
            .casino
            .movements()
            .into_iter()
            .filter(|m: &Movement| m.error_code == 200)
            .map(|m| (m.bet_id, m.transaction_type, m.amount))
            .collect();
        theirs.sort();
        assert_eq!(
            ours, theirs,
            "croupier's applied legs and the casino's ledger differ"
        );
        let report = self.app.admin.reconcile().await.unwrap();
        assert!(report.ok, "reconcile: {report:?}");
    }
}

pub fn rule(path: &str, kind: Option<i64>, fault: Fault, times: u32) -> FaultRule {
    FaultRule {
        path: Some(path.into()),
        transaction_type: kind,
        bet_id: None,
        fault,
        remaining: Some(times),
    }
}

#[tokio::test]
async fn each_provider_call_becomes_the_contract_movements() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);

    // Balance asks the casino.
    let r = app.balance(p).await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("100")));

    // PayIn (new): make(-1).
    let r = app.pay_in(p, "b1", "10").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("90")));
    assert!(r.str("betTransactionId").is_some());
    assert_eq!(b.applied("b1").await, vec![(-1, dec("10"))]);
    // PayOut (open): make(1), then close.
    let r = app.pay_out(p, "b1", "25.5").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("115.5")));
    assert_eq!(
        b.applied("b1").await,
        vec![(-1, dec("10")), (1, dec("25.5"))]
    );
    b.settle(3).await;
    assert!(
        b.casino.closed(b.bet_no("b1").await),
        "close follows the settlement"
    );

    // A loss: make(1, "0").
    app.pay_in(p, "b2", "5").await.expect(1, 200);
    app.pay_out(p, "b2", "0").await.expect(1, 200);
    assert_eq!(b.applied("b2").await, vec![(-1, dec("5")), (1, dec("0"))]);

    // PayOut (unknown): make(4) under a new BetId.
    let r = app.pay_out(p, "jackpot-1", "50").await;
    r.expect(1, 200);
    assert_eq!(b.applied("jackpot-1").await, vec![(4, dec("50"))]);

    // PayInOut (new): make(-1), then make(1).
    let r = app.pay_in_out(p, "b3", "2", "3").await;
    r.expect(1, 200);
    assert!(r.str("betTransactionId").is_some() && r.str("winTransactionId").is_some());
    assert_eq!(b.applied("b3").await, vec![(-1, dec("2")), (1, dec("3"))]);

    // Refund (open): make(2).
    app.pay_in(p, "b4", "7").await.expect(1, 200);
    let r = app.refund(p, "b4").await;
    r.expect(1, 200);
    assert!(r.str("refundTransactionId").is_some());
    assert_eq!(b.applied("b4").await, vec![(-1, dec("7")), (2, dec("7"))]);

    // Refund (settled): make(-2, win) then make(2, bet).
    app.pay_in(p, "b5", "4").await.expect(1, 200);
    app.pay_out(p, "b5", "6").await.expect(1, 200);
    app.refund(p, "b5").await.expect(1, 200);
    let mut applied = b.applied("b5").await;
    applied.sort();
    assert_eq!(
        applied,
        vec![(-2, dec("6")), (-1, dec("4")), (1, dec("6")), (2, dec("4"))]
    );

    // Refund (unknown): a tombstone, nothing sent; the bet arriving later gets 6.
    let r = app.refund(p, "b6").await;
    r.expect(1, 200);
    app.pay_in(p, "b6", "1").await.expect(6, 402);
    let no = b.bet_no("b6").await;
    assert!(b.casino.movements().iter().all(|m| m.bet_id != no));

    // 100 -10 +25.5 -5 +0 +50 -2 +3 -7 +7 -4 +6 -6 +4 = 161.5
    assert_eq!(b.at_casino(), dec("161.5"));
    b.settle(5).await;
    b.assert_books_agree().await;
}

#[tokio::test]
async fn the_provider_is_answered_as_section_5_says() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);

    // Refusals: funds 2, user 3, amount 5, blocked 7, other 99 (nothing applied).
    app.pay_in(p, "r-funds", "1000").await.expect(2, 402);
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::Refuse { code: 102145 },
        1,
    )]);
    app.pay_in(p, "r-user", "1").await.expect(3, 402);
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::Refuse { code: 103801 },
        1,
    )]);
    app.pay_in(p, "r-amount", "1").await.expect(5, 402);
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::Refuse { code: 403 },
        1,
    )]);
    app.pay_in(p, "r-blocked", "1").await.expect(7, 402);
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::Refuse { code: 102823 },
        1,
    )]);
    app.pay_in(p, "r-other", "1").await.expect(99, 402);
    // A repeat gets the same answer, without asking the casino again.
    app.pay_in(p, "r-other", "1").await.expect(99, 402);
    app.pay_in(p, "r-funds", "1000").await.expect(2, 402);
    assert_eq!(b.legs("r-other").await[0].3, 1, "sent once");
    assert_eq!(b.at_casino(), dec("100"));

    // A repeat of a call the casino applied: 104 with the original ids, latest balance.
    let first = app.pay_in(p, "ok-1", "10").await;
    first.expect(1, 200);
    app.pay_in(p, "ok-2", "5").await.expect(1, 200);
    let again = app.pay_in(p, "ok-1", "10").await;
    again.expect(104, 200);
    assert_eq!(again.str("betTransactionId"), first.str("betTransactionId"));
    assert_eq!(again.balance(), Some(dec("85")));
    // Same betId, other data: 9; a closed bet: 6.
    app.pay_in(p, "ok-1", "11").await.expect(9, 402);
    app.refund(p, "ok-2").await.expect(1, 200);
    app.pay_in(p, "ok-2", "5").await.expect(6, 402);
    app.pay_out(p, "ok-2", "5").await.expect(6, 402);
    app.pay_out(p, "ok-1", "20").await.expect(1, 200);
    app.pay_out(p, "ok-1", "20").await.expect(104, 200);
    app.pay_out(p, "ok-1", "21").await.expect(9, 402);
    app.refund(p, "ok-2").await.expect(104, 200);
    // Each (BetId, TransactionType) went to the casino once.
    let ok1 = b.bet_no("ok-1").await;
    let keys: Vec<i64> = b
        .casino
        .movements()
        .iter()
        .filter(|m| m.bet_id == ok1)
        .map(|m| m.transaction_type)
        .collect();
    assert_eq!(keys, vec![-1, 1]);

    // Unknown outcome at the deadline: 99, not confirmed.
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::Hang {
            ms: 5000,
            apply: false,
        },
        1,
    )]);
    let r = app.pay_in(p, "slow", "1").await;
    r.expect(99, 503);
    assert!(
        r.str("message").unwrap().contains("not confirmed"),
        "{}",
        r.body
    );
    b.settle(5).await;
    b.assert_books_agree().await;
}

#[tokio::test]
async fn a_timed_out_debit_is_resent_only_when_the_provider_repeats_it() {
    let b = Bench::start_with(|c| c.seamless.signing.issuer = "http://croupier.test".into()).await;
    let (app, p) = (&b.app, &b.player);
    b.app
        .admin
        .operator_set_seamless(
            &b.operator.id,
            &croupier::seamless::admin::SettingsChange {
                attempt_timeout_ms: Some(300),
                provider_deadline_ms: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.app.seamless.forget_all();
    // The casino applies the debit but answers too late.
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::Hang {
            ms: 1500,
            apply: true,
        },
        1,
    )]);
    app.pay_in(p, "t1", "10").await.expect(99, 503);
    assert_eq!(b.legs("t1").await, vec![(-1, "unknown".into(), None, 1)]);
    // Nothing retries a debit in the background.
    b.settle(3).await;
    assert_eq!(b.legs("t1").await[0].3, 1);
    // The provider repeats: the same data again; the casino answers its original result.
    let r = app.pay_in(p, "t1", "10").await;
    r.expect(1, 200);
    assert_eq!(r.balance(), Some(dec("90")));
    assert_eq!(
        b.legs("t1").await,
        vec![(-1, "ok".into(), Some("applied".into()), 2)]
    );
    assert_eq!(b.applied("t1").await, vec![(-1, dec("10"))]);

    // Another times out; the provider refunds it: make(2), the stake comes back.
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::Hang {
            ms: 1500,
            apply: true,
        },
        1,
    )]);
    app.pay_in(p, "t2", "10").await.expect(99, 503);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let r = app.refund(p, "t2").await;
    r.expect(1, 200);
    let mut applied = b.applied("t2").await;
    applied.sort();
    assert_eq!(applied, vec![(-1, dec("10")), (2, dec("10"))]);
    assert_eq!(b.at_casino(), dec("90"));
    // The debit's own verdict is told by the return's.
    let legs = b.legs("t2").await;
    assert_eq!(
        (legs[0].1.as_str(), legs[0].2.as_deref()),
        ("ok", Some("applied"))
    );
    b.settle(3).await;
    b.assert_books_agree().await;
}

#[tokio::test]
async fn an_abandoned_debit_is_returned_after_the_wait_and_its_bet_closed() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);
    b.app
        .admin
        .operator_set_seamless(
            &b.operator.id,
            &croupier::seamless::admin::SettingsChange {
                attempt_timeout_ms: Some(300),
                provider_deadline_ms: Some(800),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.app.seamless.forget_all();
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::Hang {
            ms: 1000,
            apply: true,
        },
        1,
    )]);
    app.pay_in(p, "ab1", "10").await.expect(99, 503);
    // Not yet abandoned: nothing is returned.
    b.settle(2).await;
    assert_eq!(b.applied("ab1").await, vec![(-1, dec("10"))]);
    // The provider neither repeats nor refunds for the wait (60 s, made to have passed).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b.app
        .sql("UPDATE seamless_bets SET last_call_at = now() - interval '61 seconds'")
        .await;
    b.settle(3).await;
    let mut applied = b.applied("ab1").await;
    applied.sort();
    assert_eq!(applied, vec![(-1, dec("10")), (2, dec("10"))]);
    assert_eq!(b.at_casino(), dec("100"));
    let legs = b.legs("ab1").await;
    assert_eq!(
        (legs[0].1.as_str(), legs[0].2.as_deref()),
        ("ok", Some("applied"))
    );
    assert_eq!((legs[1].0, legs[1].1.as_str()), (2, "ok"));
    // The debit is never sent again: a late PayIn gets 6; the provider's Refund takes the
    // return as its own.
    app.pay_in(p, "ab1", "10").await.expect(6, 402);
    app.refund(p, "ab1").await.expect(1, 200);
    app.refund(p, "ab1").await.expect(104, 200);
    assert_eq!(b.legs("ab1").await.len(), 2);

    // A debit never sent at all (its sender died before the call) is voided, not returned.
    app.sql(&format!(
        "SELECT seamless_call('pay_in', '{}', '{}', 'ab2', NULL, 3, NULL, false, true,
                gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 5)",
        app.provider.id, p.session
    ))
    .await;
    app.sql(
        "UPDATE seamless_legs SET state = 'pending', attempts = 0, lease_until = NULL
              WHERE bet_no = (SELECT bet_no FROM seamless_bets WHERE bet_id = 'ab2');
             UPDATE seamless_bets SET last_call_at = now() - interval '61 seconds'
              WHERE bet_id = 'ab2'",
    )
    .await;
    b.settle(3).await;
    assert_eq!(
        b.legs("ab2").await,
        vec![(-1, "refused".into(), Some("not_found".into()), 0)]
    );
    assert!(b.applied("ab2").await.is_empty());
    app.refund(p, "ab2").await.expect(1, 200);
    b.assert_books_agree().await;
}

#[tokio::test]
async fn a_credit_is_retried_through_an_outage_and_a_5xx_after_applying_pays_once() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);
    app.pay_in(p, "c1", "10").await.expect(1, 200);
    // The casino is down for the win: the provider hears 99, the credit keeps queueing.
    b.fault(vec![rule("payments/make", None, Fault::Down, 1000)]);
    b.app
        .admin
        .operator_set_seamless(
            &b.operator.id,
            &croupier::seamless::admin::SettingsChange {
                provider_deadline_ms: Some(3000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.app.seamless.forget_all();
    app.pay_out(p, "c1", "30").await.expect(99, 503);
    let legs = b.legs("c1").await;
    assert_eq!((legs[1].0, legs[1].1.as_str()), (1, "unknown"));
    assert!(
        legs[1].3 >= 2,
        "retried within the provider's deadline: {legs:?}"
    );
    // Down for the equivalent of 30 s of retries.
    for _ in 0..3 {
        b.app
            .sql("UPDATE seamless_legs SET next_attempt_at = now() WHERE state = 'unknown'")
            .await;
        b.app.seamless.run_pass().await.unwrap();
    }
    assert_eq!(b.at_casino(), dec("90"));
    // Back up: the next retry delivers it, once.
    b.fault(vec![]);
    b.app
        .sql("UPDATE seamless_legs SET next_attempt_at = now() WHERE state = 'unknown'")
        .await;
    b.settle(3).await;
    assert_eq!(b.at_casino(), dec("120"));
    app.pay_out(p, "c1", "30").await.expect(104, 200);

    // A 5xx after applying: the retry gets the original result, no second credit.
    app.pay_in(p, "c2", "10").await.expect(1, 200);
    b.fault(vec![rule(
        "payments/make",
        Some(1),
        Fault::ErrorAfterApply { status: 500 },
        1,
    )]);
    let r = app.pay_out(p, "c2", "15").await;
    r.expect(1, 200);
    assert_eq!(b.applied("c2").await, vec![(-1, dec("10")), (1, dec("15"))]);
    assert_eq!(b.legs("c2").await[1].3, 2);
    assert_eq!(b.at_casino(), dec("125"));
    b.settle(3).await;
    b.assert_books_agree().await;
}

#[tokio::test]
async fn a_credit_past_its_horizon_is_stuck_until_a_person_resolves_it() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);
    app.pay_in(p, "s1", "10").await.expect(1, 200);
    b.fault(vec![rule("payments/make", Some(1), Fault::Down, 1000)]);
    b.app
        .admin
        .operator_set_seamless(
            &b.operator.id,
            &croupier::seamless::admin::SettingsChange {
                provider_deadline_ms: Some(3000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.app.seamless.forget_all();
    app.pay_out(p, "s1", "5").await.expect(99, 503);
    app.sql("UPDATE seamless_legs SET created_at = now() - interval '25 hours' WHERE transaction_type = 1").await;
    let report = b.app.seamless.run_pass().await.unwrap();
    assert_eq!(report.stuck, 1);
    let stuck = b.app.admin.seamless_legs("stuck").await.unwrap();
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0]["transactionType"], 1);
    assert_eq!(stuck[0]["betId"], "s1");
    // Reconcile flags it.
    assert!(!b.app.admin.reconcile().await.unwrap().ok);
    // A person checks with the casino: it never got it; they pay it by hand and record ok.
    let leg: uuid::Uuid = stuck[0]["legId"].as_str().unwrap().parse().unwrap();
    let resolved = b
        .app
        .admin
        .seamless_resolve(
            leg,
            croupier::seamless::admin::Resolution::Ok,
            "paid by the casino's support, ticket 42",
            "ops-anna",
        )
        .await
        .unwrap();
    assert_eq!(resolved["state"], "ok");
    assert_eq!(resolved["resolvedBy"], "ops-anna");
    assert_eq!(resolved["note"], "paid by the casino's support, ticket 42");
    assert!(b
        .app
        .admin
        .seamless_resolve(
            leg,
            croupier::seamless::admin::Resolution::Refused,
            "again",
            "x"
        )
        .await
        .is_err());
    assert!(b.app.admin.seamless_legs("stuck").await.unwrap().is_empty());
    assert!(b.app.admin.reconcile().await.unwrap().ok);
    app.pay_out(p, "s1", "5").await.expect(104, 200);
}

#[tokio::test]
async fn a_202_is_settled_by_the_casinos_accept_and_a_contradiction_changes_nothing() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::AcceptLater { delay_ms: 300 },
        1,
    )]);
    let r = app.pay_in(p, "a1", "10").await;
    r.expect(1, 200);
    assert_eq!(
        b.legs("a1").await,
        vec![(-1, "ok".into(), Some("applied".into()), 1)]
    );
    assert_eq!(b.at_casino(), dec("90"));

    // A contradicting verdict on it: recorded, nothing changes.
    let token: Value = app
        .http
        .post(format!("{}/mis-api/api/v2/auth/token", app.base))
        .json(&json!({"PartnerClientId": b.operator.id, "Secret": b.operator.secret}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["Value"]["AccessToken"].as_str().unwrap().to_string();
    let no = b.bet_no("a1").await;
    let accept = |body: Value| {
        let (http, base, token) = (app.http.clone(), app.base.clone(), token.clone());
        async move {
            let r = http
                .post(format!("{base}/mis-api/api/v2/payments/accept"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, answer) =
        accept(json!({"BetId": no, "TransactionType": -1, "ErrorCode": 402})).await;
    assert_eq!((status, answer["ErrorCode"].as_i64()), (200, Some(200)));
    assert!(answer["Message"].as_str().unwrap().contains("discrepancy"));
    assert_eq!(b.legs("a1").await[0].1, "ok");
    // The same verdict again: idempotent.
    let (_, answer) = accept(json!({"BetId": no, "TransactionType": -1, "ErrorCode": 200})).await;
    assert!(answer["Message"].as_str().unwrap().contains("already"));
    // A verdict on nothing croupier sent, and without a token.
    let (_, answer) = accept(json!({"BetId": no, "TransactionType": 1, "ErrorCode": 200})).await;
    assert!(answer["Message"].as_str().unwrap().contains("discrepancy"));
    let r = app
        .http
        .post(format!("{}/mis-api/api/v2/payments/accept", app.base))
        .json(&json!({"BetId": no, "TransactionType": -1, "ErrorCode": 200}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let discrepancies: i64 = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM seamless_discrepancies", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(discrepancies, 2);
    b.assert_books_agree().await;
}

#[tokio::test]
async fn an_unknown_debit_is_resolved_by_payments_info_after_the_accept_window() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);
    b.app
        .admin
        .operator_set_seamless(
            &b.operator.id,
            &croupier::seamless::admin::SettingsChange {
                attempt_timeout_ms: Some(300),
                provider_deadline_ms: Some(800),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.app.seamless.forget_all();
    // One applied behind a lost answer, one never applied.
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::Hang {
            ms: 1000,
            apply: true,
        },
        1,
    )]);
    app.pay_in(p, "i1", "10").await.expect(99, 503);
    b.fault(vec![rule(
        "payments/make",
        Some(-1),
        Fault::Hang {
            ms: 1000,
            apply: false,
        },
        1,
    )]);
    app.pay_in(p, "i2", "5").await.expect(99, 503);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Within the accept window nothing is asked.
    assert_eq!(b.app.seamless.run_pass().await.unwrap().asked, 0);
    app.sql("UPDATE seamless_legs SET last_sent_at = now() - interval '31 seconds'")
        .await;
    assert_eq!(b.app.seamless.run_pass().await.unwrap().asked, 2);
    assert_eq!(
        b.legs("i1").await,
        vec![(-1, "ok".into(), Some("applied".into()), 1)]
    );
    assert_eq!(
        b.legs("i2").await,
        vec![(-1, "refused".into(), Some("not_found".into()), 1)]
    );
    // The provider's repeat now hears the verdict.
    app.pay_in(p, "i1", "10").await.expect(104, 200);
    app.pay_in(p, "i2", "5").await.expect(99, 402);
    b.assert_books_agree().await;
}

#[tokio::test]
async fn the_same_bet_twenty_times_at_once_is_one_debit_at_the_casino() {
    let b = Bench::start().await;
    let calls = (0..20).map(|_| b.app.pay_in(&b.player, "dup", "10"));
    let answers = futures::future::join_all(calls).await;
    let mut codes: Vec<i64> = answers.iter().map(|r| r.code()).collect();
    codes.sort();
    assert_eq!(codes[0], 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 1 || *c == 104), "{codes:?}");
    let ids: std::collections::HashSet<_> =
        answers.iter().map(|r| r.str("betTransactionId")).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(b.applied("dup").await, vec![(-1, dec("10"))]);
    assert_eq!(b.at_casino(), dec("90"));
    let makes = b.casino.movements().len();
    assert_eq!(makes, 1);
    b.assert_books_agree().await;
}

#[tokio::test]
async fn a_casino_that_keeps_failing_opens_the_breaker_for_new_bets() {
    let b = Bench::start().await;
    let (app, p) = (&b.app, &b.player);
    b.app
        .admin
        .operator_set_seamless(
            &b.operator.id,
            &croupier::seamless::admin::SettingsChange {
                attempt_timeout_ms: Some(200),
                provider_deadline_ms: Some(400),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.app.seamless.forget_all();
    b.fault(vec![rule("payments/make", None, Fault::Down, 1000)]);
    for i in 0..5 {
        app.pay_in(p, &format!("br{i}"), "1").await.expect(99, 503);
    }
    // Open: the next bet is answered 99 at once, and nothing of it is written or sent.
    app.pay_in(p, "br-next", "1").await.expect(99, 503);
    let written: i64 = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM seamless_bets WHERE bet_id = 'br-next'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(written, 0);
    b.fault(vec![]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    app.pay_in(p, "br-next", "1").await.expect(1, 200);
}

#[tokio::test]
async fn launch_and_the_operator_balance_ask_the_casino() {
    let b = Bench::start().await;
    let app = &b.app;
    app.admin
        .provider_set_launch_url(&app.provider.id, "https://games.example/play?s={sessionId}")
        .await
        .unwrap();
    let signer = crate::helpers::Signer::from(&b.operator);
    let launch = json!({"playerExternalId": b.player.external_id, "currency": "USD",
                        "providerId": app.provider.id, "gameId": "slot"})
    .to_string();
    let r = app
        .op_send(app.op_req(&signer, "/v1/game/launch", Some(&launch)))
        .await;
    r.expect(0);
    assert!(r.data()["url"]
        .as_str()
        .unwrap()
        .starts_with("https://games.example/play?s="));
    let path = format!(
        "/v1/player/wallet/balance?playerExternalId={}&currency=USD",
        b.player.external_id
    );
    let r = app.op_send(app.op_req(&signer, &path, None)).await;
    r.expect(0);
    assert_eq!(r.amount("balance"), dec("100"));
    // Nothing to bet at the casino: no game.
    b.casino.set_player(&b.player.external_id, dec("0"), "USD");
    app.op_send(app.op_req(&signer, "/v1/game/launch", Some(&launch)))
        .await
        .expect(102);
}
