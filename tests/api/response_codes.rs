//! Every `_responseCode` of the table, with its HTTP status, and the wallet untouched by
//! each refusal.

use std::time::Duration;

use croupier::money::Currency;
use uuid::Uuid;

use crate::helpers::{dec, spawn_app};

#[tokio::test]
async fn balance_answers_currency_and_balance_with_code_1() {
    let app = spawn_app().await;
    let p = app.player("EUR", "12.34").await;
    let r = app.balance(&p).await;
    r.expect(1, 200);
    assert_eq!(r.str("currency").as_deref(), Some("EUR"));
    assert_eq!(r.balance(), Some(dec("12.34")));
    // Amounts are JSON numbers, transaction ids strings.
    let r = app.pay_in(&p, "b1", "\"0.34\"").await;
    assert!(r.json["balance"].is_number(), "{}", r.body);
    assert!(r.json["betTransactionId"].is_string(), "{}", r.body);
    assert!(r.body.contains(r#""balance":12,"#), "{}", r.body);
}

#[tokio::test]
async fn insufficient_funds_is_2() {
    let app = spawn_app().await;
    let p = app.player("USD", "5").await;
    app.pay_in(&p, "b1", "5.01").await.expect(2, 402);
    app.pay_in_out(&p, "b2", "6", "100").await.expect(2, 402);
    assert_eq!(app.bet_state("b1").await, None);
    assert_eq!(app.wallet(&p).await, (dec("5"), 1));
    // A refused bet leaves no trace: with funds, the same betId is a new bet.
    app.pay_in(&p, "b1", "5").await.expect(1, 200);
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_session_that_is_unknown_closed_or_another_providers_is_3() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let mut unknown = p.clone();
    unknown.session = Uuid::now_v7();
    app.pay_in(&unknown, "b1", "1").await.expect(3, 402);
    app.balance(&unknown).await.expect(3, 402);
    app.refund(&unknown, "b1").await.expect(3, 402);
    app.pay_out(&unknown, "b1", "1").await.expect(3, 402);

    // Not a UUID at all.
    let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    r.path = "/v1/sessions/not-a-session/bets/pay-in".into();
    app.send(r).await.expect(3, 402);

    // Another provider's session: a provider reaches only the sessions opened for it.
    let other = app.admin.provider_add("Other Games", true).await.unwrap();
    let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    r.counterparty = other.id.clone();
    r.secret = other.secret.clone();
    app.send(r).await.expect(3, 402);
    let mut r = app.req(p.session, "balance", None);
    r.counterparty = other.id;
    r.secret = other.secret;
    app.send(r).await.expect(3, 402);

    // A closed session takes no bets.
    app.pay_in(&p, "open-bet", "1").await.expect(1, 200);
    app.admin
        .session_close(croupier::ledger::SessionId(p.session))
        .await
        .unwrap();
    app.pay_in(&p, "b2", "1").await.expect(3, 402);
    app.balance(&p).await.expect(3, 402);
    // … but the win of a bet placed before still lands.
    app.pay_out(&p, "open-bet", "2").await.expect(1, 200);
    assert_eq!(app.wallet(&p).await, (dec("101"), 3));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn a_pay_out_for_an_unknown_bet_is_4_when_the_provider_refuses_standalone_wins() {
    let app = spawn_app().await;
    let strict = app.admin.provider_add("Strict Games", false).await.unwrap();
    let p = app.player("USD", "100").await;
    let session = app
        .admin
        .session_open(
            &strict.id,
            &app.operator.id,
            &p.external_id,
            Currency::parse("USD").unwrap(),
            "g",
            60,
        )
        .await
        .unwrap();
    let mut r = app.req(
        session.0,
        "pay-out",
        Some(r#"{"betId":"nope","winAmount":5}"#),
    );
    r.counterparty = strict.id;
    r.secret = strict.secret;
    app.send(r).await.expect(4, 402);
    assert_eq!(app.wallet(&p).await, (dec("100"), 1));
}

#[tokio::test]
async fn a_malformed_request_is_5() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    for body in [
        r#"{"betId":"b1","betAmount":1"#,
        r#"not json"#,
        r#"{"betAmount":1}"#,
        r#"{"betId":"b1"}"#,
        r#"{"betId":"","betAmount":1}"#,
        r#"{"betId":{"x":1},"betAmount":1}"#,
        r#"{"betId":"b1","betAmount":1,"betAmount":2}"#,
        r#"[]"#,
        r#""#,
    ] {
        app.call(&p, "pay-in", body).await.expect(5, 402);
    }
    app.call(&p, "pay-out", r#"{"betId":"b1"}"#)
        .await
        .expect(5, 402);
    app.call(&p, "pay-in-out", r#"{"betId":"b1","betAmount":1}"#)
        .await
        .expect(5, 402);
    app.call(&p, "refund", r#"{}"#).await.expect(5, 402);
    assert_eq!(app.wallet(&p).await, (dec("100"), 1));
}

#[tokio::test]
async fn a_blocked_player_or_a_disabled_provider_is_7() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "before", "10").await.expect(1, 200);
    app.admin
        .player_set_status(&app.operator.id, &p.external_id, true)
        .await
        .unwrap();
    app.pay_in(&p, "b1", "1").await.expect(7, 402);
    app.pay_in_out(&p, "b2", "1", "1").await.expect(7, 402);
    app.balance(&p).await.expect(7, 402);
    // Money owed to a blocked player still lands.
    app.pay_out(&p, "before", "20").await.expect(1, 200);
    assert_eq!(app.wallet(&p).await, (dec("110"), 3));
    app.admin
        .player_set_status(&app.operator.id, &p.external_id, false)
        .await
        .unwrap();
    app.balance(&p).await.expect(1, 200);

    // Disabling a provider reaches the running server's cache through the database
    // (LISTEN/NOTIFY, asynchronous: polled with a call that moves no money).
    app.admin
        .counterparty_set_status(
            &app.provider.id,
            croupier::admin::CounterpartyStatus::Disabled,
        )
        .await
        .unwrap();
    let mut code = 0;
    for _ in 0..50 {
        code = app.balance(&p).await.code();
        if code == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code, 7);
    app.pay_in(&p, "b4", "1").await.expect(7, 402);
    assert_eq!(app.wallet(&p).await, (dec("110"), 3));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn the_players_of_a_disabled_operator_cannot_bet() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "before", "10").await.expect(1, 200);
    app.admin
        .counterparty_set_status(
            &app.operator.id,
            croupier::admin::CounterpartyStatus::Disabled,
        )
        .await
        .unwrap();
    app.pay_in(&p, "b1", "1").await.expect(7, 402);
    app.balance(&p).await.expect(7, 402);
    // Wins owed still land.
    app.pay_out(&p, "before", "5").await.expect(1, 200);
    assert_eq!(app.wallet(&p).await, (dec("95"), 3));
}

#[tokio::test]
async fn a_bad_signature_is_8_with_http_401() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    r.secret = "not-the-secret".into();
    let reply = app.send(r).await;
    reply.expect(8, 401);
    assert!(!reply.body.contains(&app.provider.secret));
    assert_eq!(app.wallet(&p).await, (dec("100"), 1));
}

#[tokio::test]
async fn an_unreachable_database_is_99_and_retryable() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.pay_in(&p, "b1", "1").await.expect(1, 200);
    // Take the database away under the running server.
    app.drop_database().await;
    let r = app.pay_in(&p, "b2", "1").await;
    assert_eq!(r.code(), 99, "{}", r.body);
    assert!(r.status == 503 || r.status == 500, "{}", r.status);
}

#[tokio::test]
async fn an_unknown_endpoint_is_a_json_404() {
    let app = spawn_app().await;
    let p = app.player("USD", "1").await;
    let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    r.path = format!("/v1/sessions/{}/bets/pay-sideways", p.session);
    let reply = app.send(r).await;
    assert_eq!(reply.status, 404);
    assert!(reply.json["message"]
        .as_str()
        .unwrap()
        .contains("pay-sideways"));
    let mut r = app.req(p.session, "balance", None);
    r.method = reqwest::Method::DELETE;
    assert_eq!(app.send(r).await.status, 404);
    assert_eq!(app.wallet(&p).await, (dec("1"), 1));
}
