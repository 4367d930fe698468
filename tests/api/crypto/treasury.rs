//! Each operator's treasury: payouts leave from the operator's own wallet, and only value that
//! came in as crypto leaves as crypto unless the operator allows more. Locked (unconfirmed)
//! deposits: not playable by default, and what they win stays locked until they confirm.

use serde_json::json;

use super::{app_with, config, fund};
use crate::fakes::FakeInabit;
use crate::helpers::{dec, Signer, TestApp};

const ANOTHER_WALLET: &str = "wallet-of-the-other-casino";

impl TestApp {
    /// A crypto payout order of `player` signed by `signer`.
    async fn crypto_withdraw_as(
        &self,
        signer: &Signer,
        player: &str,
        amount: &str,
        tx: &str,
    ) -> crate::helpers::OpReply {
        let body = format!(
            r#"{{"playerExternalId":"{player}","currency":"USD","amount":{amount},"asset":"USDT","blockchain":"TRON","address":"TDest","transactionId":"{tx}"}}"#
        );
        self.op_send(self.op_req(signer, "/v1/player/crypto/withdraw", Some(&body)))
            .await
    }
}

#[tokio::test]
async fn each_operator_pays_out_from_its_own_wallet_and_only_what_came_in_as_crypto() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let own = Signer::from(&app.operator);
    // ann (the first operator's) deposits 100 USDT (99 USD) and is credited 50 USD in cash.
    fund(&app, &inabit, "100").await;
    app.deposit("ann", "USD", "50", "cash-ann").await.expect(0);
    assert_eq!(app.ann().await, (dec("149"), dec("149")));

    // Only the crypto-funded 99 may leave as crypto.
    app.crypto_withdraw_as(&own, "ann", "100", "cw-over")
        .await
        .expect(102);
    app.crypto_withdraw_as(&own, "ann", "99", "cw-all")
        .await
        .expect(0);
    app.crypto_withdraw_as(&own, "ann", "1", "cw-more")
        .await
        .expect(102);
    assert_eq!(app.ann().await, (dec("50"), dec("50")), "the cash stays");
    let sent = inabit.state().withdrawals.clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].wallet, "wallet-payouts");

    // A second operator on the same server, whose player has only cash.
    let other = Signer::from(&app.admin.operator_add("other casino").await.unwrap());
    for (path, body) in [
        (
            "/v1/player/create",
            json!({"playerExternalId": "bo", "currency": "USD"}),
        ),
        (
            "/v1/player/wallet/deposit",
            json!({"playerExternalId": "bo", "currency": "USD", "amount": 500,
                   "transactionId": "cash-bo"}),
        ),
    ] {
        let body = body.to_string();
        app.op_send(app.op_req(&other, path, Some(&body)))
            .await
            .expect(0);
    }
    // No treasury of its own: nothing is paid (not from the first operator's wallet).
    let r = app.crypto_withdraw_as(&other, "bo", "10", "bo-1").await;
    assert_ne!(r.code(), 0, "{:?}", r.data());
    app.admin
        .operator_set_payout_rail(&other.id, "inabit", ANOTHER_WALLET)
        .await
        .unwrap();
    // Its own wallet now, but bo's money came in as cash.
    app.crypto_withdraw_as(&other, "bo", "10", "bo-2")
        .await
        .expect(102);
    assert_eq!(inabit.state().withdrawals.len(), 1, "nothing more sent");
    // The operator chooses to pay cash out in crypto, from its own wallet.
    app.admin
        .operator_set_fiat_crypto_payouts(&other.id, true)
        .await
        .unwrap();
    app.crypto_withdraw_as(&other, "bo", "10", "bo-3")
        .await
        .expect(0);
    let sent = inabit.state().withdrawals.clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].wallet, ANOTHER_WALLET);
    // The refusals are recorded: a retry answers alike even now.
    app.crypto_withdraw_as(&other, "bo", "10", "bo-2")
        .await
        .expect(102);
    app.assert_books_balance().await;
}

#[tokio::test]
async fn winnings_on_an_unconfirmed_deposit_stay_locked_until_it_confirms() {
    let inabit = FakeInabit::start().await;
    let app = app_with(config(&inabit, None)).await;
    let to = app.address_of("ann").await;
    app.announce(
        &inabit,
        "IncomingTransactionReceived",
        "tx-1",
        "Pending",
        "100",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("99"), dec("0")));
    let player = app.ann_session().await;

    // Off by default: the unconfirmed 99 cannot be staked.
    app.pay_in(&player, "bet-0", "10").await.expect(2, 402);

    // The operator allows it: ann stakes it and wins, several bets at once.
    app.admin
        .operator_set_locked_play(&app.operator.id, true)
        .await
        .unwrap();
    let ids: Vec<String> = (1..=6).map(|i| format!("bet-{i}")).collect();
    let bets: Vec<_> = ids
        .iter()
        .map(|id| app.pay_in_out(&player, id, "10", "30"))
        .collect();
    for r in futures::future::join_all(bets).await {
        r.expect(1, 200);
    }
    assert_eq!(
        app.ann().await,
        (dec("219"), dec("0")),
        "the winnings are locked"
    );
    app.withdraw("ann", "USD", "1", "w-1").await.expect(102);
    app.crypto_withdraw("1", "TDest", "cw-1").await.expect(102);
    app.assert_books_balance().await;

    // The coins never arrive: the winnings stay locked and a person decides.
    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-1",
        "Failed",
        "100",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("219"), dec("0")));
    assert_eq!(
        app.deposit_state("tx-1").await.unwrap(),
        ("review".into(), Some("failed_with_winnings".into()))
    );
    app.withdraw("ann", "USD", "1", "w-2").await.expect(102);
    app.assert_books_balance().await;
    let settled = app
        .crypto
        .ledger()
        .deposit_settle("tx-1", croupier::ledger::crypto::DepositState::Reversed)
        .await
        .unwrap();
    assert_eq!(settled.as_str(), "applied");
    assert_eq!(app.ann().await, (dec("120"), dec("120")));
    app.assert_books_balance().await;

    // A deposit that confirms frees what was won on it.
    app.announce(
        &inabit,
        "IncomingTransactionReceived",
        "tx-2",
        "Pending",
        "10",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    let r = app.pay_in_out(&player, "bet-9", "5", "20").await;
    r.expect(1, 200);
    assert_eq!(app.ann().await, (dec("144.90"), dec("115")));
    app.announce(
        &inabit,
        "IncomingTransactionStatusUpdated",
        "tx-2",
        "Completed",
        "10",
        &to,
    )
    .await;
    app.crypto.process_events().await.unwrap();
    assert_eq!(app.ann().await, (dec("144.90"), dec("144.90")));
    app.assert_books_balance().await;
}
