//! Crypto deposits and payouts against local fake inabit and B2BINPAY servers. Every scenario
//! ends with `croupier admin reconcile` passing.

use std::time::Duration;

use croupier::crypto::{AssetIds, CryptoConfig};
use croupier::ledger::crypto::{DepositState, PayoutEnd};
use croupier::money::Currency;
use croupier::startup::ServerConfig;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::fakes::{FakeB2binpay, FakeInabit, FIRST_LOGIN_TOKEN, TERMINAL_KEY};
use crate::helpers::{dec, spawn_app_configured, TestApp};

mod treasury;
mod webhook_limits;

fn config(inabit: &FakeInabit, b2b: Option<&FakeB2binpay>) -> CryptoConfig {
    let mut c = CryptoConfig::disabled();
    c.inabit.graphql_url = inabit.graphql_url();
    c.inabit.terminal_url = inabit.server.uri();
    c.inabit.terminal_key = Some(TERMINAL_KEY.into());
    c.inabit.login_token = Some(FIRST_LOGIN_TOKEN.into());
    if let Some(b2b) = b2b {
        c.b2binpay.base_url = b2b.server.uri();
        c.b2binpay.client_id = Some("b2b-client".into());
        c.b2binpay.client_secret = Some("b2b-secret".into());
        c.b2binpay.callback_url = Some("https://casino.example/cb".into());
        c.b2binpay.login = Some("b2b-login".into());
        c.b2binpay.password = Some("b2b-password".into());
    }
    c.assets = vec![AssetIds {
        asset: "USDT".into(),
        blockchain: "TRON".into(),
        decimals: 6,
        inabit_asset_id: Some("asset-usdt".into()),
        inabit_blockchain_id: Some("chain-tron".into()),
        b2binpay_currency_id: Some("2145".into()),
    }];
    c.http_timeout = Duration::from_secs(3);
    c.payout_idle = Duration::ZERO;
    c
}

/// An app wired to the fakes, with a USD player "ann" and the USDT rate 0.99 USD.
async fn app_with(crypto: CryptoConfig) -> TestApp {
    let mut server = ServerConfig::local(crate::helpers::batching());
    server.crypto = crypto;
    let app = spawn_app_configured(server).await;
    app.crypto.seed_login_token().await.unwrap();
    app.admin
        .crypto_set_rate("USDT", Currency::parse("USD").unwrap(), dec("0.99"))
        .await
        .unwrap();
    app.admin
        .operator_set_payout_rail(&app.operator.id, "inabit", "wallet-payouts")
        .await
        .unwrap();
    app.create_player("ann", "USD").await.expect(0);
    app
}

impl TestApp {
    async fn address_of(&self, player: &str) -> String {
        let r = self
            .op_post(
                "/v1/player/crypto/deposit-address",
                &format!(r#"{{"playerExternalId":"{player}","asset":"USDT","blockchain":"TRON"}}"#),
            )
            .await;
        r.expect(0);
        r.data()["address"].as_str().unwrap().to_string()
    }

    /// An inabit Terminal webhook (unsigned), as inabit sends it.
    async fn webhook(&self, body: Value) -> u16 {
        self.http
            .post(format!("{}/v1/crypto/inabit/webhook", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// inabit's API reports the deposit, and a webhook says the same.
    async fn announce(
        &self,
        inabit: &FakeInabit,
        event: &str,
        tx: &str,
        status: &str,
        amount: &str,
        to: &str,
    ) {
        inabit.set_deposit(tx, status, amount, to);
        self.deposit_event(event, tx, status, amount, to).await;
    }

    async fn deposit_event(&self, event: &str, tx: &str, status: &str, amount: &str, to: &str) {
        let status_code = self
            .webhook(json!({
                "event": event,
                "data": {"transactionId": tx, "transactionHash": "0xclaimed", "status": status,
                         "amount": serde_json::from_str::<Value>(amount).unwrap(),
                         "sourceAddress": "0xsender", "destinationAddress": to,
                         "asset": "USDT", "blockchain": "TRON",
                         "customerIdentifier": "whoever", "widgetId": "w", "targetConfirmations": "1"}
            }))
            .await;
        assert_eq!(status_code, 200);
    }

    /// (balance, withdrawable) of ann's USD wallet, from the operator API.
    async fn ann(&self) -> (Decimal, Decimal) {
        let r = self
            .op_get("/v1/player/wallet/balance?playerExternalId=ann&currency=USD")
            .await;
        r.expect(0);
        (r.amount("balance"), r.amount("withdrawable"))
    }

    async fn deposit_state(&self, tx: &str) -> Option<(String, Option<String>)> {
        let client = self.pool.get().await.unwrap();
        client
            .query_opt(
                "SELECT state, review_reason FROM crypto_deposits WHERE provider_tx_id = $1",
                &[&tx],
            )
            .await
            .unwrap()
            .map(|r| (r.get(0), r.get(1)))
    }

    async fn open_reviews(&self) -> Vec<String> {
        let client = self.pool.get().await.unwrap();
        client
            .query(
                "SELECT reason FROM crypto_reviews WHERE resolved_at IS NULL ORDER BY created_at",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn crypto_withdraw(
        &self,
        amount: &str,
        address: &str,
        tx: &str,
    ) -> crate::helpers::OpReply {
        self.op_post(
            "/v1/player/crypto/withdraw",
            &format!(
                r#"{{"playerExternalId":"ann","currency":"USD","amount":{amount},"asset":"USDT","blockchain":"TRON","address":"{address}","transactionId":"{tx}"}}"#
            ),
        )
        .await
    }

    /// A game session on ann's USD wallet.
    async fn ann_session(&self) -> crate::helpers::Player {
        let usd = Currency::parse("USD").unwrap();
        let session = self
            .admin
            .session_open(
                &self.provider.id,
                &self.operator.id,
                "ann",
                usd,
                "slots",
                60,
            )
            .await
            .unwrap();
        crate::helpers::Player {
            external_id: "ann".into(),
            currency: usd,
            session: session.0,
        }
    }

    async fn withdrawal_status(&self, tx: &str) -> String {
        let r = self
            .op_get(&format!("/v1/player/crypto/withdrawals/{tx}"))
            .await;
        r.expect(0);
        r.data()["status"].as_str().unwrap().to_string()
    }

    async fn approver(&self, body: Value) -> bool {
        let r: Value = self
            .http
            .post(format!("{}/v1/approver", self.private_base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["approved"].as_bool().expect("approved is a boolean")
    }
}

#[tokio::test]
async fn a_deposit_is_locked_on_detection_and_unlocked_on_completion() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let to = app.address_of("ann").await;
    assert_eq!(app.address_of("ann").await, to, "the address is persistent");
    assert_eq!(inabit.state().address_calls, 1, "created at inabit once");

    // 100.5 USDT at 0.99 = 99.495 USD, credited rounded down to the cent.
    app.announce(
        &inabit,
        "IncomingTransactionReceived",
        "tx-1",
        "Pending",
        "100.5",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("99.49"), dec("0")));

    // Confirming is the same stage: nothing more. The withdrawal of locked money is refused.
    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-1",
        "Confirming",
        "100.5",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("99.49"), dec("0")));
    app.withdraw("ann", "USD", "10", "w-locked")
        .await
        .expect(102);
    app.crypto_withdraw("10", "TXyz", "cw-locked")
        .await
        .expect(102);

    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-1",
        "Completed",
        "100.5",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("99.49"), dec("99.49")));
    app.withdraw("ann", "USD", "10", "w-after").await.expect(0);
    assert_eq!(app.deposit_state("tx-1").await.unwrap().0, "completed");
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_webhook_naming_a_nul_character_is_refused_not_retried() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    // PostgreSQL text holds no NUL: 400 (inabit does not send it again), never a 503.
    for body in [
        json!({"event": "Incoming\u{0}", "data": {"transactionId": "tx-1"}}),
        json!({"event": "PurchaseUpdated", "data": {"purchaseId": "p\u{0}1"}}),
    ] {
        assert_eq!(app.webhook(body.clone()).await, 400, "{body}");
    }
    // Elsewhere in the body it is only text: recorded as received.
    let body = json!({"event": "PurchaseUpdated", "data": {"purchaseId": "p-1", "note": "\u{0}"}});
    assert_eq!(app.webhook(body).await, 200);
    let events: i64 = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM crypto_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 1);
}

#[tokio::test]
async fn webhooks_are_hints_the_api_decides() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let to = app.address_of("ann").await;

    // A webhook for a deposit inabit does not know: recorded, no credit.
    app.deposit_event(
        "IncomingTransactionReceived",
        "tx-forged",
        "Completed",
        "1000",
        &to,
    )
    .await;
    // A webhook that lies about the amount and status: the API's word is applied.
    inabit.set_deposit("tx-2", "Pending", "10", &to);
    app.deposit_event(
        "IncomingTransactionStatusUpdated",
        "tx-2",
        "Completed",
        "5000",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("9.90"), dec("0")));
    assert_eq!(app.deposit_state("tx-forged").await, None);

    // Both event families and an unknown event are taken (2xx) and recorded.
    for event in [
        "IncomingTransactionStatusInitiated",
        "PurchaseInitiated",
        "PurchaseUpdated",
        "SomethingNew",
    ] {
        let code = app
            .webhook(json!({"event": event, "data": {"purchaseId": "p-1", "status": "Allocated"}}))
            .await;
        assert_eq!(code, 200, "{event}");
    }
    // Not JSON: refused, nothing recorded.
    let bad = app
        .http
        .post(format!("{}/v1/crypto/inabit/webhook", app.base))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    app.crypto.process_events().await.unwrap();
    let client = app.pool.get().await.unwrap();
    let events: i64 = client
        .query_one(
            "SELECT count(*) FROM crypto_events WHERE source = 'inabit'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 6);
    let pending: i64 = client
        .query_one(
            "SELECT count(*) FROM crypto_events WHERE processed_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 0);
    assert_eq!(app.ann().await, (dec("9.90"), dec("0")));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn an_event_inabit_cannot_confirm_now_is_tried_again_later() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let to = app.address_of("ann").await;
    inabit.state().deposits_down = true;
    app.announce(
        &inabit,
        "IncomingTransactionReceived",
        "tx-r",
        "Completed",
        "10",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("0"), dec("0")));
    // Kept, and not tried again at once.
    assert_eq!(app.crypto.process_events().await.unwrap(), 0);
    inabit.state().deposits_down = false;
    // Five seconds later it is.
    app.sql("UPDATE crypto_events SET last_attempt_at = last_attempt_at - interval '6 seconds'")
        .await;
    assert_eq!(app.crypto.process_events().await.unwrap(), 1);
    assert_eq!(app.ann().await, (dec("9.90"), dec("9.90")));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn an_event_never_confirmed_ends_in_the_review_queue_once_per_transaction() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let to = app.address_of("ann").await;
    inabit.state().deposits_down = true;
    for _ in 0..2 {
        app.announce(
            &inabit,
            "IncomingTransactionReceived",
            "tx-g",
            "Completed",
            "10",
            &to,
        )
        .await;
    }
    // Nineteen tries have failed already, the last one long ago.
    app.sql("UPDATE crypto_events SET attempts = 19, last_attempt_at = now() - interval '1 day'")
        .await;
    assert_eq!(app.crypto.process_events().await.unwrap(), 1);
    assert_eq!(app.open_reviews().await, vec!["event_unconfirmed"]);
    assert_eq!(app.crypto.process_events().await.unwrap(), 0, "given up");
    assert_eq!(app.ann().await, (dec("0"), dec("0")));
    // inabit answers again: polling applies the deposit all the same.
    inabit.state().deposits_down = false;
    app.crypto.poll_deposits().await.unwrap();
    assert_eq!(app.ann().await, (dec("9.90"), dec("9.90")));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn duplicate_and_out_of_order_events_apply_once_and_only_forward() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let to = app.address_of("ann").await;

    inabit.set_deposit("tx-3", "Completed", "20", &to);
    for _ in 0..3 {
        app.deposit_event(
            "IncomingTransactionStatusUpdated",
            "tx-3",
            "Completed",
            "20",
            &to,
        )
        .await;
    }
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("19.80"), dec("19.80")));
    let reads = inabit
        .server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/customer/transactions/tx-3")
        .count();
    assert_eq!(reads, 1, "three webhooks, one confirmation read");

    // A stale read (an older status served late) moves nothing back.
    app.announce(
        &inabit,
        "IncomingTransactionReceived",
        "tx-3",
        "Pending",
        "20",
        &to,
    )
    .await;
    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-3",
        "Failed",
        "20",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("19.80"), dec("19.80")));
    assert_eq!(app.deposit_state("tx-3").await.unwrap().0, "completed");
    assert_eq!(
        app.wallet_of("ann", "USD").await,
        (dec("19.80"), 1),
        "one credit"
    );
    app.assert_books_balance().await;
}

#[tokio::test]
async fn failed_and_forked_deposits_are_reversed() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let to = app.address_of("ann").await;
    for (tx, end) in [("tx-f", "Failed"), ("tx-k", "PendingFork")] {
        app.announce(
            &inabit,
            "IncomingTransactionReceived",
            tx,
            "Unconfirmed",
            "10",
            &to,
        )
        .await;
        app.crypto.process_events().await.unwrap();
        assert_eq!(app.ann().await, (dec("9.90"), dec("0")));
        inabit.set_deposit(tx, end, "10", &to);
        app.deposit_event("IncomingTransactionStatusUpdated", tx, end, "10", &to)
            .await;
        app.crypto.process_events().await.unwrap();
        assert_eq!(app.ann().await, (dec("0"), dec("0")), "{end}");
        assert_eq!(app.deposit_state(tx).await.unwrap().0, "reversed");
    }
    // A deposit that fails before it was ever seen credits nothing.
    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-never",
        "Failed",
        "10",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("0"), dec("0")));
    assert_eq!(
        app.wallet_of("ann", "USD").await.1,
        4,
        "two credits, two reversals"
    );
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_failed_deposit_already_spent_goes_to_review_not_below_zero() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    app.admin
        .operator_set_locked_play(&app.operator.id, true)
        .await
        .unwrap();
    let to = app.address_of("ann").await;
    app.announce(
        &inabit,
        "IncomingTransactionReceived",
        "tx-s",
        "Pending",
        "100",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("99"), dec("0")));

    // Locked funds are playable (the operator allows it): ann bets 60 of them and loses.
    let player = app.ann_session().await;
    app.pay_in_out(&player, "bet-1", "60", "0")
        .await
        .expect(1, 200);

    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-s",
        "Failed",
        "100",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(
        app.ann().await,
        (dec("39"), dec("0")),
        "not reversed, still locked"
    );
    assert_eq!(
        app.deposit_state("tx-s").await.unwrap(),
        ("review".to_string(), Some("reversal_spent".to_string()))
    );
    assert_eq!(app.open_reviews().await, vec!["reversal_spent"]);
    app.assert_books_balance().await;

    // A person decides, once the casino has topped ann up: the credit is taken back and
    // the lock lifted.
    let ledger = app.crypto.ledger();
    assert_eq!(
        ledger
            .deposit_settle("tx-s", DepositState::Reversed)
            .await
            .unwrap()
            .as_str(),
        "insufficient_funds"
    );
    app.deposit("ann", "USD", "100", "top-up").await.expect(0);
    assert_eq!(
        ledger
            .deposit_settle("tx-s", DepositState::Reversed)
            .await
            .unwrap()
            .as_str(),
        "applied"
    );
    assert_eq!(app.ann().await, (dec("40"), dec("40")));
    assert_eq!(
        ledger
            .deposit_settle("tx-s", DepositState::Completed)
            .await
            .unwrap()
            .as_str(),
        "not_settleable"
    );
    assert!(app.open_reviews().await.is_empty());
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_credited_deposit_reported_elsewhere_goes_to_review_and_is_settled_by_hand() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let to = app.address_of("ann").await;
    app.create_player("bo", "USD").await.expect(0);
    let bo = app.address_of("bo").await;
    inabit.set_deposit("tx-m", "Pending", "10", &to);
    app.crypto.poll_deposits().await.unwrap();
    assert_eq!(app.ann().await, (dec("9.90"), dec("0")));
    // inabit now says the same transaction went to bo's address: no money moves.
    inabit.set_deposit("tx-m", "Completed", "10", &bo);
    app.crypto.poll_deposits().await.unwrap();
    assert_eq!(app.ann().await, (dec("9.90"), dec("0")));
    assert_eq!(app.wallet_of("bo", "USD").await, (dec("0"), 0));
    assert_eq!(
        app.deposit_state("tx-m").await.unwrap(),
        ("review".to_string(), Some("report_changed".to_string()))
    );
    app.assert_books_balance().await;
    let ledger = app.crypto.ledger();
    assert_eq!(
        ledger
            .deposit_settle("tx-m", DepositState::Completed)
            .await
            .unwrap()
            .as_str(),
        "applied"
    );
    assert_eq!(app.ann().await, (dec("9.90"), dec("9.90")));
    assert_eq!(
        ledger
            .deposit_settle("tx-nope", DepositState::Completed)
            .await
            .unwrap()
            .as_str(),
        "not_found"
    );
    app.assert_books_balance().await;
}

#[tokio::test]
async fn an_operator_can_keep_locked_deposits_out_of_play() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    app.admin
        .operator_set_locked_play(&app.operator.id, false)
        .await
        .unwrap();
    let to = app.address_of("ann").await;
    app.deposit("ann", "USD", "10", "cash").await.expect(0);
    app.announce(
        &inabit,
        "IncomingTransactionReceived",
        "tx-l",
        "Pending",
        "100",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("109"), dec("10")));
    let player = app.ann_session().await;
    // Only the 10 unlocked may be staked.
    app.pay_in(&player, "b-big", "10.01").await.expect(2, 402);
    app.pay_in(&player, "b-ok", "10").await.expect(1, 200);
    // Wins still land.
    app.pay_out(&player, "b-ok", "5").await.expect(1, 200);
    app.pay_in(&player, "b-5", "5.01").await.expect(2, 402);
    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-l",
        "Completed",
        "100",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    app.pay_in(&player, "b-after", "50").await.expect(1, 200);
    assert_eq!(app.ann().await, (dec("54"), dec("54")));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn under_and_overcharges_unmatched_addresses_and_missing_rates_wait_for_review() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let to = app.address_of("ann").await;
    for (tx, status) in [
        ("tx-u", "Undercharge"),
        ("tx-ue", "UnderchargeExpired"),
        ("tx-o", "Overcharge"),
    ] {
        inabit.set_deposit(tx, status, "10", &to);
        app.deposit_event("IncomingTransactionStatusUpdated", tx, status, "10", &to)
            .await;
    }
    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-nobody",
        "Completed",
        "10",
        "addr-of-nobody",
    )
    .await;
    // Statuses that say nothing yet, or that we do not know, are recorded only.
    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-i",
        "Allocated",
        "0",
        &to,
    )
    .await;
    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-x",
        "SomethingInabitAddsLater",
        "3",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("0"), dec("0")));
    assert_eq!(app.deposit_state("tx-i").await.unwrap().0, "seen");
    assert_eq!(app.deposit_state("tx-x").await.unwrap().0, "seen");
    let mut reviews = app.open_reviews().await;
    reviews.sort();
    assert_eq!(
        reviews,
        [
            "overcharge",
            "undercharge",
            "undercharge_expired",
            "unmatched_address"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
    );

    // No rate for the wallet currency: the deposit waits in review, uncredited.
    app.create_player("eve", "EUR").await.expect(0);
    let eve = app.address_of("eve").await;
    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-e",
        "Completed",
        "10",
        &eve,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(
        app.deposit_state("tx-e").await.unwrap(),
        ("review".to_string(), Some("no_rate".to_string()))
    );
    assert_eq!(app.wallet_of("eve", "EUR").await, (dec("0"), 0));
    // Once the rate is set, the deposit is given a fresh start and credited.
    app.admin
        .crypto_set_rate("USDT", Currency::parse("EUR").unwrap(), dec("0.9"))
        .await
        .unwrap();
    let (reopened, outcome) = app.crypto.reopen_deposit("tx-e").await.unwrap();
    assert_eq!(
        (reopened.as_str(), outcome.map(|o| o.as_str())),
        ("reopened", Some("applied"))
    );
    assert_eq!(app.wallet_of("eve", "EUR").await, (dec("9.0"), 1));
    // A deposit that credited something cannot be reopened.
    let (again, _) = app.crypto.reopen_deposit("tx-e").await.unwrap();
    assert_eq!(again.as_str(), "not_reopenable");
    assert!(!app.open_reviews().await.contains(&"no_rate".to_string()));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_lost_webhook_is_recovered_by_polling() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let to = app.address_of("ann").await;
    inabit.set_deposit("tx-p1", "Pending", "10", &to);
    inabit.set_deposit("tx-p2", "Completed", "5", &to);
    assert_eq!(app.crypto.poll_deposits().await.unwrap(), 2);
    assert_eq!(app.ann().await, (dec("14.85"), dec("4.95")));
    // The checkpoint is durable: a second poll reads from it and applies nothing twice.
    inabit.set_deposit("tx-p1", "Completed", "10", &to);
    app.crypto.poll_deposits().await.unwrap();
    app.crypto.poll_deposits().await.unwrap();
    assert_eq!(app.ann().await, (dec("14.85"), dec("14.85")));
    assert_eq!(app.wallet_of("ann", "USD").await.1, 2);
    let client = app.pool.get().await.unwrap();
    let checkpoint: String = client
        .query_one(
            "SELECT value FROM crypto_checkpoints WHERE name = 'inabit_deposits'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(checkpoint, "2026-01-01T00:00:03.000Z");

    // A deposit croupier cannot read (a status that is not text) does not stop polling: the
    // deposits around it are applied, and it is left to the event worker (then review).
    inabit.set_raw_deposit("tx-odd", json!({"transactionId": "tx-odd", "status": 7}));
    inabit.set_deposit("tx-p3", "Completed", "1", &to);
    app.crypto.poll_deposits().await.unwrap();
    assert_eq!(app.ann().await, (dec("15.84"), dec("15.84")));
    let client = app.pool.get().await.unwrap();
    let odd: i64 = client
        .query_one(
            "SELECT count(*) FROM crypto_events WHERE reference = 'tx-odd' AND event = 'PollFailed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(odd, 1);
    // The newest item unreadable: every poll lists it again, it is recorded once.
    inabit.set_raw_deposit("tx-odd2", json!({"transactionId": "tx-odd2", "amount": {}}));
    app.crypto.poll_deposits().await.unwrap();
    app.crypto.poll_deposits().await.unwrap();
    let odd2: i64 = client
        .query_one(
            "SELECT count(*) FROM crypto_events WHERE reference = 'tx-odd2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(odd2, 1);
    app.assert_books_balance().await;
}

#[tokio::test]
async fn the_scheduled_poll_finds_a_deposit_nobody_announced() {
    let inabit = FakeInabit::start().await;
    let mut c = config(&inabit, None);
    c.poll_interval = Some(Duration::from_millis(200));
    let app = app_with(c).await;
    let to = app.address_of("ann").await;
    let _jobs = app.crypto.spawn_jobs();
    inabit.set_deposit("tx-quiet", "Completed", "1", &to);
    let mut credited = false;
    for _ in 0..50 {
        if app.ann().await.0 == dec("0.99") {
            credited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(credited, "the polling job credited the deposit");
    let status: Value = app
        .http
        .get(format!("{}/v1/crypto/status", app.private_base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(status["jobs"]["lastPollMs"].is_i64(), "{status}");
    assert_eq!(status["inabitLoginToken"]["present"], true);
    app.assert_books_balance().await;
}

/// An app whose provider calls give up after 400 ms, with ann funded with 100 USDT.
async fn impatient_funded_app(inabit: &FakeInabit) -> TestApp {
    let mut c = config(inabit, None);
    c.http_timeout = Duration::from_millis(400);
    let app = app_with(c).await;
    fund(&app, inabit, "100").await;
    app
}

/// A payout of `amount` USD whose withdrawal inabit creates but whose answer comes too late:
/// held, pending, tied to no withdrawal. Returns the payout id.
async fn lost_answer_payout(app: &TestApp, inabit: &FakeInabit, amount: &str, tx: &str) -> String {
    inabit.state().create_delay = Some(Duration::from_millis(1500));
    let r = app.crypto_withdraw(amount, "TDest", tx).await;
    inabit.state().create_delay = None;
    r.expect(0);
    assert_eq!(r.data()["status"], "pending");
    r.data()["payoutId"].as_str().unwrap().to_string()
}

/// Funds ann with a completed deposit of `usdt`.
async fn fund(app: &TestApp, inabit: &FakeInabit, usdt: &str) {
    let to = app.address_of("ann").await;
    inabit.set_deposit("tx-fund", "Completed", usdt, &to);
    app.deposit_event(
        "IncomingTransactionReceived",
        "tx-fund",
        "Completed",
        usdt,
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
}

#[tokio::test]
async fn a_payout_is_held_approved_and_paid() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    fund(&app, &inabit, "100").await;
    assert_eq!(app.ann().await, (dec("99"), dec("99")));

    let r = app.crypto_withdraw("50", "TDest", "cw-1").await;
    r.expect(0);
    let payout_id = r.data()["payoutId"].as_str().unwrap().to_string();
    assert_eq!(r.data()["status"], "pending");
    // 50 USD / 0.99 = 50.505050... USDT, rounded down to 6 decimals, sent exactly.
    assert_eq!(r.amount("coinAmount"), dec("50.505050"));
    assert_eq!(
        app.ann().await,
        (dec("49"), dec("49")),
        "the amount is held"
    );
    let sent = inabit.withdrawals_with_note(&payout_id);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].amount, "50.50505");
    assert_eq!(sent[0].address, "TDest");

    // The Remote Approver asks: our withdrawal, as created, is approved.
    let ask = json!({"transactionId": sent[0].id, "transactionType": "Withdrawal", "network": "TRON",
                     "coin": "USDT", "to": "TDest", "amount": 50.50505});
    assert!(app.approver(ask).await);

    // A repeat of the order answers the same payout and sends nothing more.
    let again = app.crypto_withdraw("50", "TDest", "cw-1").await;
    again.expect(0);
    assert_eq!(again.data()["payoutId"].as_str().unwrap(), payout_id);
    assert_eq!(inabit.state().create_calls, 1);
    // The same transactionId with other details is refused.
    app.crypto_withdraw("51", "TDest", "cw-1").await.expect(100);

    inabit.set_withdrawal_status(&payout_id, "Completed");
    app.crypto.run_payouts().await.unwrap();
    let shown = app.op_get("/v1/player/crypto/withdrawals/cw-1").await;
    shown.expect(0);
    assert_eq!(shown.data()["status"], "paid");
    assert_eq!(app.ann().await, (dec("49"), dec("49")));
    app.op_get("/v1/player/crypto/withdrawals/nope")
        .await
        .expect(100);
    app.assert_books_balance().await;
}

/// Every step of a deposit and a payout takes one connection of the crypto pool at a time:
/// one that held a connection while asking for another would wait forever on a pool of one
/// (and, under load, a pool's worth of such calls would wait on each other).
#[tokio::test]
async fn deposits_and_payouts_run_on_a_crypto_pool_of_one_connection() {
    let inabit = FakeInabit::start().await;
    let mut c = config(&inabit, None);
    c.db_pool_size = 1;
    let app = app_with(c).await;
    fund(&app, &inabit, "100").await;
    assert_eq!(app.ann().await, (dec("99"), dec("99")));
    let r = app.crypto_withdraw("50", "TDest", "one-1").await;
    r.expect(0);
    let payout_id = r.data()["payoutId"].as_str().unwrap().to_string();
    assert_eq!(inabit.withdrawals_with_note(&payout_id).len(), 1);
    app.crypto_withdraw("50", "TDest", "one-1").await.expect(0);
    inabit.set_withdrawal_status(&payout_id, "Completed");
    app.crypto.run_payouts().await.unwrap();
    let shown = app.op_get("/v1/player/crypto/withdrawals/one-1").await;
    shown.expect(0);
    assert_eq!(shown.data()["status"], "paid");
    assert_eq!(app.ann().await, (dec("49"), dec("49")));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_failed_or_refused_payout_releases_the_hold() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    fund(&app, &inabit, "100").await;

    let r = app.crypto_withdraw("10", "TDest", "cw-f").await;
    r.expect(0);
    let payout_id = r.data()["payoutId"].as_str().unwrap().to_string();
    assert_eq!(app.ann().await, (dec("89"), dec("89")));
    inabit.set_withdrawal_status(&payout_id, "Rejected");
    app.crypto.run_payouts().await.unwrap();
    assert_eq!(app.ann().await, (dec("99"), dec("99")), "released");
    let shown = app.op_get("/v1/player/crypto/withdrawals/cw-f").await;
    assert_eq!(shown.data()["status"], "failed");

    // inabit refuses the withdrawal outright: released at once.
    inabit.state().refuse_create = true;
    let r = app.crypto_withdraw("10", "TDest", "cw-r").await;
    r.expect(0);
    assert_eq!(r.data()["status"], "failed");
    assert_eq!(app.ann().await, (dec("99"), dec("99")));
    // More than the withdrawable balance: 102, nothing held, and the same answer on a retry.
    app.crypto_withdraw("1000", "TDest", "cw-big")
        .await
        .expect(102);
    app.crypto_withdraw("1000", "TDest", "cw-big")
        .await
        .expect(102);
    assert_eq!(
        app.wallet_of("ann", "USD").await.1,
        5,
        "credit, hold, release, hold, release"
    );
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_payout_whose_answer_was_lost_is_recovered_without_paying_twice() {
    let inabit = FakeInabit::start().await;
    let app = impatient_funded_app(&inabit).await;

    // inabit creates the withdrawal but its answer comes too late.
    let payout_id = lost_answer_payout(&app, &inabit, "20", "cw-t").await;
    assert_eq!(app.ann().await, (dec("79"), dec("79")));

    // The recovery job finds it at inabit by our payout id and does not send it again.
    app.crypto.run_payouts().await.unwrap();
    app.crypto.run_payouts().await.unwrap();
    assert_eq!(inabit.withdrawals_with_note(&payout_id).len(), 1);
    assert_eq!(inabit.state().create_calls, 1);
    inabit.set_withdrawal_status(&payout_id, "Completed");
    app.crypto.run_payouts().await.unwrap();
    let shown = app.op_get("/v1/player/crypto/withdrawals/cw-t").await;
    assert_eq!(shown.data()["status"], "paid");

    // A hold whose provider call never happened (a restart in between) is sent once.
    let order = croupier::ledger::crypto::PayoutOrder {
        operator_id: app.operator.id.clone(),
        external_id: "ann".into(),
        amount: croupier::money::Amount::parse("5", Currency::parse("USD").unwrap()).unwrap(),
        transaction_id: "cw-restart".into(),
        asset: "USDT".into(),
        blockchain: "TRON".into(),
        address: "TDest".into(),
    };
    let (held, _) = app
        .crypto
        .ledger()
        .payout_hold(
            &order,
            6,
            croupier::ledger::crypto::Rail::Inabit,
            "wallet-payouts",
        )
        .await
        .unwrap();
    assert_eq!(held.state.as_str(), "held");
    app.crypto.run_payouts().await.unwrap();
    app.crypto.run_payouts().await.unwrap();
    assert_eq!(inabit.withdrawals_with_note(&held.id.to_string()).len(), 1);
    assert_eq!(app.ann().await, (dec("74"), dec("74")));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn the_approver_refuses_unknown_and_altered_withdrawals() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    fund(&app, &inabit, "100").await;
    let r = app.crypto_withdraw("9.9", "TDest", "cw-a").await;
    r.expect(0);
    let payout_id = r.data()["payoutId"].as_str().unwrap().to_string();
    let wd = inabit.withdrawals_with_note(&payout_id)[0].clone();
    let good = json!({"transactionId": wd.id, "transactionType": "Withdrawal", "network": "TRON",
                      "coin": "USDT", "to": "TDest", "amount": "10"});
    assert!(app.approver(good.clone()).await);

    let mut altered_address = good.clone();
    altered_address["to"] = json!("TAttacker");
    let mut altered_amount = good.clone();
    altered_amount["amount"] = json!("10.000001");
    let mut altered_coin = good.clone();
    altered_coin["coin"] = json!("BTC");
    let mut unknown = good.clone();
    unknown["transactionId"] = json!("wd-unknown");
    for refused in [
        altered_address,
        altered_amount,
        altered_coin,
        unknown,
        json!({"hello": 1}),
    ] {
        assert!(!app.approver(refused.clone()).await, "{refused}");
    }
    // A withdrawal someone else created at inabit (no payout id of ours in its note).
    inabit.state().withdrawals.push(crate::fakes::Withdrawal {
        id: "wd-foreign".into(),
        note: "payday".into(),
        address: "TDest".into(),
        amount: "10".into(),
        status: "PendingApproval".into(),
        wallet: "wallet-payouts".into(),
    });
    let mut foreign = good.clone();
    foreign["transactionId"] = json!("wd-foreign");
    assert!(!app.approver(foreign).await);
    // A second withdrawal carrying our payout id (sent twice by mistake) is refused.
    inabit.state().withdrawals.push(crate::fakes::Withdrawal {
        id: "wd-second".into(),
        note: payout_id.clone(),
        address: "TDest".into(),
        amount: "10".into(),
        status: "PendingApproval".into(),
        wallet: "wallet-payouts".into(),
    });
    let mut second = good.clone();
    second["transactionId"] = json!("wd-second");
    assert!(!app.approver(second).await);
    // After the payout ended, nothing more is approved for it.
    inabit.set_withdrawal_status(&payout_id, "Failed");
    app.crypto.run_payouts().await.unwrap();
    assert!(!app.approver(good).await);

    // The same withdrawal leaving from another wallet than the operator's is not approved.
    let r = app.crypto_withdraw("9.9", "TDest", "cw-wallet").await;
    r.expect(0);
    let payout_id = r.data()["payoutId"].as_str().unwrap().to_string();
    let set_wallet = |wallet: &str| {
        let mut st = inabit.state();
        let w = st
            .withdrawals
            .iter_mut()
            .find(|w| w.note == payout_id)
            .unwrap();
        w.wallet = wallet.to_string();
        w.id.clone()
    };
    let id = set_wallet("another-operators-wallet");
    let ask = json!({"transactionId": id, "transactionType": "Withdrawal", "network": "TRON",
                     "coin": "USDT", "to": "TDest", "amount": "10"});
    assert!(!app.approver(ask.clone()).await);
    set_wallet("wallet-payouts");
    assert!(app.approver(ask).await);
    app.assert_books_balance().await;
}

#[tokio::test]
async fn access_tokens_are_shared_renewed_once_and_login_tokens_refreshed() {
    let inabit = FakeInabit::start().await;
    let mut c = config(&inabit, None);
    c.inabit.login_refresh_after = Duration::ZERO;
    let app = app_with(c).await;
    fund(&app, &inabit, "100").await;

    // Concurrent payouts share one access token (one renewal in flight at a time).
    let ids: Vec<String> = (0..4).map(|i| format!("cw-c{i}")).collect();
    let orders = ids.iter().map(|id| app.crypto_withdraw("1", "TDest", id));
    for r in futures::future::join_all(orders).await {
        r.expect(0);
    }
    assert_eq!(inabit.state().access_tokens.len(), 1);
    // inabit stops accepting it: fetched again once, and the call goes through.
    let first = inabit.state().access_tokens[0].clone();
    inabit.state().revoked.push(first);
    app.crypto_withdraw("1", "TDest", "cw-c9").await.expect(0);
    assert_eq!(inabit.state().access_tokens.len(), 2);
    assert_eq!(inabit.state().create_calls, 5);

    // The login token is refreshed and the new one kept in the database.
    assert!(app.crypto.refresh_login_if_due().await.unwrap());
    let client = app.pool.get().await.unwrap();
    let stored: String = client
        .query_one(
            "SELECT token FROM integration_tokens WHERE name = 'inabit_login'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, inabit.state().login_token);
    assert_ne!(stored, FIRST_LOGIN_TOKEN);
    // A failed refresh is recorded for the status endpoint (without the token).
    inabit.state().refuse_login_refresh = true;
    assert!(app.crypto.refresh_login_if_due().await.is_err());
    let status = app.crypto.status().await.unwrap();
    let error = status["inabitLoginToken"]["lastError"].as_str().unwrap();
    assert!(error.contains("authentication"), "{error}");
    assert!(
        !status.to_string().contains(&stored),
        "no token in the status"
    );
    app.assert_books_balance().await;
}

fn b2b_callback(payout_ref: &str, tracking: &str, status: i64, amount: &str, key: &[u8]) -> String {
    use hmac::Mac;
    let time = "2026-11-21T10:00:00.000000+00:00";
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{status}{amount}{tracking}{time}").as_bytes());
    let sign = hex::encode(mac.finalize().into_bytes());
    json!({
        "data": {"type": "payout", "id": payout_ref,
                 "attributes": {"address": "TDest", "tracking_id": tracking, "amount": amount},
                 "relationships": {"transfer": {"data": {"type": "transfer", "id": "145"}}}},
        "included": [
            {"type": "currency", "id": "2145", "attributes": {"alpha": "USDT", "exp": 6}},
            {"type": "transfer", "id": "145", "attributes": {"status": status, "amount": amount, "confirmations": 3}}
        ],
        "meta": {"time": time, "sign": sign}
    })
    .to_string()
}

fn b2b_key() -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b"b2b-loginb2b-password").to_vec()
}

impl TestApp {
    async fn b2b_post(&self, body: String) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}/v1/crypto/b2binpay/callback", self.base))
            .header("content-type", "application/vnd.api+json")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

#[tokio::test]
async fn b2binpay_payouts_use_one_idempotency_key_and_signed_callbacks() {
    let inabit = FakeInabit::start().await;
    let b2b = FakeB2binpay::start().await;
    let mut c = config(&inabit, Some(&b2b));
    c.http_timeout = Duration::from_millis(400);
    let app = app_with(c).await;
    app.admin
        .operator_set_payout_rail(&app.operator.id, "b2binpay", "77")
        .await
        .unwrap();
    fund(&app, &inabit, "100").await;

    // The first answer is lost; the retry carries the same key and creates nothing new.
    b2b.state().delay_next = Some(Duration::from_millis(1500));
    let r = app.crypto_withdraw("9.9", "TDest", "b2b-1").await;
    r.expect(0);
    assert_eq!(r.data()["rail"], "b2binpay");
    let tracking = r.data()["payoutId"].as_str().unwrap().to_string();
    app.crypto.run_payouts().await.unwrap();
    {
        let st = b2b.state();
        assert_eq!(st.requests.len(), 2);
        assert_eq!(st.requests[0].0, st.requests[1].0, "same idempotency key");
        assert_eq!(st.requests[0].1, tracking);
        assert_eq!(st.requests[0].2, "10");
        assert_eq!(st.payouts.len(), 1);
    }
    let payout_ref = b2b.state().payouts.values().next().unwrap().clone();
    assert_eq!(app.ann().await, (dec("89.1"), dec("89.1")));

    // Forged (another key) and altered (status changed after signing) callbacks: 401, no change.
    let forged = b2b_callback(&payout_ref, &tracking, -1, "10.000000", b"not-the-key");
    assert_eq!(app.b2b_post(forged).await.0, 401);
    let altered = b2b_callback(&payout_ref, &tracking, 2, "10.000000", &b2b_key())
        .replace(r#""status":2"#, r#""status":-1"#);
    assert_eq!(app.b2b_post(altered).await.0, 401);
    assert_eq!(app.ann().await, (dec("89.1"), dec("89.1")));

    // An early confirmation callback (status 1), then the final one, twice.
    let early = b2b_callback(&payout_ref, &tracking, 1, "10.000000", &b2b_key());
    assert_eq!(app.b2b_post(early).await, (200, String::new()));
    let done = b2b_callback(&payout_ref, &tracking, 2, "10.000000", &b2b_key());
    assert_eq!(app.b2b_post(done.clone()).await, (200, String::new()));
    assert_eq!(app.b2b_post(done).await, (200, String::new()));
    let shown = app.op_get("/v1/player/crypto/withdrawals/b2b-1").await;
    assert_eq!(shown.data()["status"], "paid");
    assert_eq!(app.ann().await, (dec("89.1"), dec("89.1")));

    // A failed transfer releases the hold.
    let r = app.crypto_withdraw("19.8", "TDest", "b2b-2").await;
    r.expect(0);
    let tracking2 = r.data()["payoutId"].as_str().unwrap().to_string();
    let ref2 = b2b.state().payouts.values().max().unwrap().clone();
    assert_eq!(app.ann().await, (dec("69.3"), dec("69.3")));
    let failed = b2b_callback(&ref2, &tracking2, -1, "20.000000", &b2b_key());
    assert_eq!(app.b2b_post(failed).await.0, 200);
    assert_eq!(app.ann().await, (dec("89.1"), dec("89.1")));
    let shown = app.op_get("/v1/player/crypto/withdrawals/b2b-2").await;
    assert_eq!(shown.data()["status"], "failed");
    // A released payout reported paid later: nothing moves, a person is called.
    let paid_late = b2b_callback(&ref2, &tracking2, 2, "20.000000", &b2b_key());
    assert_eq!(app.b2b_post(paid_late).await.0, 200);
    assert_eq!(app.ann().await, (dec("89.1"), dec("89.1")));
    assert_eq!(app.open_reviews().await, vec!["paid_after_release"]);
    // A paid payout cannot be released by a later callback.
    let late = b2b_callback(&payout_ref, &tracking, -3, "10.000000", &b2b_key());
    assert_eq!(app.b2b_post(late).await.0, 200);
    assert_eq!(app.ann().await, (dec("89.1"), dec("89.1")));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn crypto_requests_with_bad_input_change_nothing() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    fund(&app, &inabit, "10").await;
    let before = app.wallet_of("ann", "USD").await;
    let post = |body: &'static str| app.op_post("/v1/player/crypto/withdraw", body);
    post(r#"{"playerExternalId":"ann","currency":"USD","amount":1,"asset":"DOGE","blockchain":"TRON","address":"T","transactionId":"x1"}"#).await.expect(100);
    post(r#"{"playerExternalId":"ann","currency":"USD","amount":1,"asset":"USDT","blockchain":"TRON","transactionId":"x2"}"#).await.expect(2);
    post(r#"{"playerExternalId":"ann","currency":"USD","amount":-1,"asset":"USDT","blockchain":"TRON","address":"T","transactionId":"x3"}"#).await.expect(100);
    post(r#"{"playerExternalId":"ann","currency":"USD","amount":1,"asset":"USDT","blockchain":"TRON","address":"has space","transactionId":"x5"}"#).await.expect(100);
    post(r#"{"playerExternalId":"nobody","currency":"USD","amount":1,"asset":"USDT","blockchain":"TRON","address":"T","transactionId":"x6"}"#).await.expect(100);
    app.op_post(
        "/v1/player/crypto/deposit-address",
        r#"{"playerExternalId":"ann","asset":"USDT"}"#,
    )
    .await
    .expect(2);
    assert_eq!(app.wallet_of("ann", "USD").await, before);
    assert_eq!(inabit.state().create_calls, 0);
    app.assert_books_balance().await;
}

#[tokio::test]
async fn two_withdrawals_of_one_payout_asked_at_once_get_one_approval() {
    let inabit = FakeInabit::start().await;
    let app = impatient_funded_app(&inabit).await;
    // The creation answer is lost, so the payout is tied to no withdrawal yet; a second
    // withdrawal carrying the same payout id exists at inabit too.
    let payout_id = lost_answer_payout(&app, &inabit, "9.9", "cw-race").await;
    inabit.state().withdrawals.push(crate::fakes::Withdrawal {
        id: "wd-twin".into(),
        note: payout_id.clone(),
        address: "TDest".into(),
        amount: "10".into(),
        status: "PendingApproval".into(),
        wallet: "wallet-payouts".into(),
    });
    let ask = |id: &str| {
        json!({"transactionId": id, "transactionType": "Withdrawal", "network": "TRON",
               "coin": "USDT", "to": "TDest", "amount": "10"})
    };
    let (a, b) = tokio::join!(app.approver(ask("wd-1")), app.approver(ask("wd-twin")));
    assert!(a ^ b, "exactly one approved: {a} {b}");
    // Asked again, each gets the same answer.
    assert_eq!(app.approver(ask("wd-1")).await, a);
    assert_eq!(app.approver(ask("wd-twin")).await, b);
    // The recovery job finds the payout tied and sends nothing.
    app.crypto.run_payouts().await.unwrap();
    assert_eq!(inabit.state().create_calls, 1);
    app.assert_books_balance().await;
}

#[tokio::test]
async fn an_unclear_provider_answer_never_releases_a_hold() {
    let inabit = FakeInabit::start().await;
    let app = impatient_funded_app(&inabit).await;

    // A 503 with a GraphQL error body: unknown outcome, the hold stays.
    inabit.state().unavailable_create = true;
    let r = app.crypto_withdraw("9.9", "TDest", "cw-503").await;
    r.expect(0);
    assert_eq!(r.data()["status"], "pending");
    assert_eq!(app.ann().await, (dec("89.1"), dec("89.1")));
    inabit.state().unavailable_create = false;

    // The next try (nothing found at inabit under our id) is refused: an earlier call might
    // have gone through after all, so the payout goes to review with its hold.
    inabit.state().refuse_create = true;
    app.crypto.run_payouts().await.unwrap();
    let shown = app.op_get("/v1/player/crypto/withdrawals/cw-503").await;
    assert_eq!(shown.data()["status"], "review");
    assert_eq!(app.ann().await, (dec("89.1"), dec("89.1")));
    assert_eq!(app.open_reviews().await, vec!["provider_status"]);
    assert_eq!(inabit.state().create_calls, 2);
    // Someone checks at inabit: nothing went out. The hold is released by hand.
    let ledger = app.crypto.ledger();
    let op = app.operator.id.clone();
    assert_eq!(
        ledger
            .payout_settle(&op, "cw-503", PayoutEnd::Released)
            .await
            .unwrap()
            .as_str(),
        "applied"
    );
    assert_eq!(app.ann().await, (dec("99"), dec("99")));
    assert!(app.open_reviews().await.is_empty());
    assert_eq!(
        ledger
            .payout_settle(&op, "cw-503", PayoutEnd::Paid)
            .await
            .unwrap()
            .as_str(),
        "not_in_review"
    );
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_lost_b2binpay_callback_is_made_up_for_by_reading_the_payout() {
    let inabit = FakeInabit::start().await;
    let b2b = FakeB2binpay::start().await;
    let app = app_with(config(&inabit, Some(&b2b))).await;
    app.admin
        .operator_set_payout_rail(&app.operator.id, "b2binpay", "77")
        .await
        .unwrap();
    fund(&app, &inabit, "100").await;
    for (tx, status) in [("b-ok", 2), ("b-fail", -1), ("b-aml", -2)] {
        let r = app.crypto_withdraw("9.9", "TDest", tx).await;
        r.expect(0);
        let reference = b2b
            .state()
            .payouts
            .values()
            .max_by_key(|id| id.parse::<u32>().unwrap())
            .unwrap()
            .clone();
        b2b.state()
            .transfers
            .insert(reference, (status, "10.000000".into()));
    }
    assert_eq!(app.ann().await, (dec("69.3"), dec("69.3")));
    app.crypto.run_payouts().await.unwrap();
    assert_eq!(app.withdrawal_status("b-ok").await, "paid");
    assert_eq!(app.withdrawal_status("b-fail").await, "failed");
    assert_eq!(app.withdrawal_status("b-aml").await, "review");
    assert_eq!(app.ann().await, (dec("79.2"), dec("79.2")));
    app.assert_books_balance().await;
}

/// The deposit-address request of `player` (USDT on TRON), as the operator sends it.
async fn ask_address(app: &TestApp, player: &str) -> crate::helpers::OpReply {
    app.op_post(
        "/v1/player/crypto/deposit-address",
        &format!(r#"{{"playerExternalId":"{player}","asset":"USDT","blockchain":"TRON"}}"#),
    )
    .await
}

#[tokio::test]
async fn bets_keep_answering_while_deposit_addresses_wait_on_a_slow_inabit() {
    let inabit = FakeInabit::start().await;
    inabit.state().customer_delay = Some(Duration::from_secs(5));
    let mut c = config(&inabit, None);
    c.http_timeout = Duration::from_secs(15);
    let app = app_with(c).await;
    // As many address requests as the bet path has connections (the test pool has 16).
    let names: Vec<String> = (0..16).map(|i| format!("slow-{i}")).collect();
    for name in &names {
        app.create_player(name, "USD").await.expect(0);
    }
    let gambler = app.player("USD", "100").await;
    let started = std::time::Instant::now();
    let addresses = futures::future::join_all(names.iter().map(|n| ask_address(&app, n)));
    let bets = async {
        // Let every address request reach inabit first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for i in 0..10 {
            let sent = std::time::Instant::now();
            app.pay_in(&gambler, &format!("while-{i}"), "1")
                .await
                .expect(1, 200);
            assert!(
                sent.elapsed() < Duration::from_secs(1),
                "a bet took {:?}",
                sent.elapsed()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the address requests were still waiting on inabit"
        );
    };
    let (addresses, ()) = tokio::join!(addresses, bets);
    let mut seen = std::collections::BTreeSet::new();
    for r in &addresses {
        r.expect(0);
        seen.insert(r.data()["address"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 16, "one address per player");
    assert_eq!(inabit.state().customer_calls, 16);
    assert_eq!(app.wallet(&gambler).await, (dec("90"), 11));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_deposit_address_timed_out_at_inabit_is_retryable_and_a_refused_one_is_not() {
    let inabit = FakeInabit::start().await;
    let mut c = config(&inabit, None);
    c.http_timeout = Duration::from_millis(400);
    let app = app_with(c).await;
    // No answer in time: the outcome is unknown, the operator may ask again.
    inabit.state().customer_delay = Some(Duration::from_secs(2));
    let r = ask_address(&app, "ann").await;
    r.expect(1);
    assert!(!r.body.contains(TERMINAL_KEY), "{}", r.body);
    // inabit refuses the request itself: asking again changes nothing.
    inabit.state().customer_delay = None;
    inabit.state().refuse_customer = true;
    let r = ask_address(&app, "ann").await;
    r.expect(103);
    assert!(!r.body.contains(TERMINAL_KEY), "{}", r.body);
    assert_eq!(inabit.state().address_calls, 0);
    // Neither try left a claim on the player's customer behind.
    let client = app.pool.get().await.unwrap();
    let customers: i64 = client
        .query_one("SELECT count(*) FROM crypto_customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(customers, 0);
    // Once inabit accepts, the address is created, once.
    inabit.state().refuse_customer = false;
    let to = app.address_of("ann").await;
    assert_eq!(app.address_of("ann").await, to);
    assert_eq!(inabit.state().address_calls, 1);
    assert_eq!(inabit.state().customer_calls, 3);
    assert_eq!(app.ann().await, (dec("0"), dec("0")));
    assert_eq!(app.wallet_of("ann", "USD").await, (dec("0"), 0));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn an_address_request_waits_for_the_customer_another_server_is_creating() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    app.create_player("shared", "USD").await.expect(0);
    // Another server has claimed the creation of this player's customer just now.
    app.sql(&format!(
        "INSERT INTO crypto_customers (player_id, claimed_at)
         SELECT id, now() FROM players WHERE external_id = 'shared' AND operator_id = '{}'",
        app.operator.id
    ))
    .await;
    let asked = ask_address(&app, "shared");
    let other_server = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        // ... and keeps the customer inabit created for it.
        app.sql("UPDATE crypto_customers SET customer_uuid = 'made-elsewhere', claimed_at = NULL")
            .await;
    };
    let (r, ()) = tokio::join!(asked, other_server);
    r.expect(0);
    assert!(r.data()["address"].as_str().is_some(), "{}", r.body);
    // The customer was not created a second time.
    assert_eq!(inabit.state().customer_calls, 0);
    let kept = app
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT customer_uuid FROM crypto_customers", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    assert_eq!(kept, "made-elsewhere");
}

/// Outbound calls follow no redirect: a provider URL that answers 307 (a hijacked DNS name, a
/// misconfigured proxy) cannot send a money-moving request somewhere else.
#[tokio::test]
async fn a_redirect_from_a_provider_is_not_followed() {
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let inabit = FakeInabit::start().await;
    let redirector = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/v1/customers", inabit.server.uri())),
        )
        .mount(&redirector)
        .await;
    let mut c = config(&inabit, None);
    c.inabit.terminal_url = redirector.uri();
    c.inabit.graphql_url = format!("{}/graphql", redirector.uri());
    let app = app_with(c).await;
    let r = app
        .op_post(
            "/v1/player/crypto/deposit-address",
            r#"{"playerExternalId":"ann","asset":"USDT","blockchain":"TRON"}"#,
        )
        .await;
    assert_ne!(r.code(), 0, "{}", r.body);
    assert!(!redirector.received_requests().await.unwrap().is_empty());
    let followed = inabit.server.received_requests().await.unwrap();
    assert!(
        followed.is_empty(),
        "the redirect was followed: {followed:?}"
    );
}

/// The Remote Approver approves withdrawals only: a transaction of another type that names
/// one of our payouts (a swap, a transfer between wallets) is refused.
#[tokio::test]
async fn the_approver_approves_withdrawals_only() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    fund(&app, &inabit, "100").await;
    let r = app.crypto_withdraw("50", "TDest", "cw-type").await;
    r.expect(0);
    let payout_id = r.data()["payoutId"].as_str().unwrap().to_string();
    let sent = inabit.withdrawals_with_note(&payout_id);
    let ask = |kind: &str| {
        json!({"transactionId": sent[0].id, "transactionType": kind, "network": "TRON",
               "coin": "USDT", "to": "TDest", "amount": 50.50505})
    };
    for kind in ["Transfer", "Swap", ""] {
        assert!(!app.approver(ask(kind)).await, "{kind:?} approved");
    }
    let mut untyped = ask("Withdrawal");
    untyped.as_object_mut().unwrap().remove("transactionType");
    assert!(!app.approver(untyped).await, "no transactionType approved");
    assert!(app.approver(ask("Withdrawal")).await);
    app.assert_books_balance().await;
}
