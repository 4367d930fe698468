//! Bad input changes nothing: each refusal is asserted with its code and with the wallet's
//! balance and journal unchanged.

use crate::helpers::{dec, now_ms, spawn_app, Player, Req, TestApp};

async fn unchanged(app: &TestApp, p: &Player) {
    assert_eq!(app.wallet(p).await, (dec("100"), 1), "the wallet moved");
}

#[tokio::test]
async fn bad_amounts_are_5() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    for amount in [
        "1.001",     // more decimals than USD has
        "\"1.001\"", // the same as a string
        "-1",        // negative
        "\"-1\"",
        "\"abc\"", // not a number
        "null",
        "true",
        "{}",
        "1e2", // exponent notation
        "\"1E2\"",
        "1000000001", // above the USD bound
        "\" 1\"",
        "1.00000000000000000000000000001", // beyond Decimal's 28 digits: never rounded to 1
    ] {
        let reply = app.pay_in(&p, "b1", amount).await;
        reply.expect(5, 402);
        let reply = app.pay_in_out(&p, "b2", "1", amount).await;
        reply.expect(5, 402);
        let reply = app.pay_out(&p, "b3", amount).await;
        reply.expect(5, 402);
    }
    unchanged(&app, &p).await;
    assert_eq!(app.bet_state("b1").await, None);

    // The scale is the currency's: 1.5 is fine in USD, not in JPY.
    let yen = app.player("JPY", "100").await;
    app.pay_in(&yen, "y1", "1.5").await.expect(5, 402);
    app.pay_in(&yen, "y1", "1").await.expect(1, 200);
    app.assert_books_balance().await;
}

#[tokio::test]
async fn missing_or_garbled_headers_are_8() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let body = Some(r#"{"betId":"b1","betAmount":1}"#);
    let base = app.req(p.session, "pay-in", body);
    let mut cases: Vec<Req> = Vec::new();
    for header in ["X-Counterparty-Id", "X-Timestamp", "X-Request-Id", "X-Sign"] {
        let mut r = base.clone();
        r.request_id = crate::helpers::nonce();
        r.omit.push(header);
        cases.push(r);
    }
    let garble = |f: &dyn Fn(&mut Req)| {
        let mut r = base.clone();
        r.request_id = crate::helpers::nonce();
        f(&mut r);
        r
    };
    cases.push(garble(&|r| r.timestamp = "yesterday".into()));
    cases.push(garble(&|r| r.timestamp = "-5".into()));
    cases.push(garble(&|r| r.request_id = "short".into()));
    cases.push(garble(&|r| {
        r.request_id = "zz0679b6e5fa48f6892c777b0fa92392".into()
    }));
    cases.push(garble(&|r| r.sign = Some("abc".into())));
    cases.push(garble(&|r| r.sign = Some("g".repeat(64))));
    cases.push(garble(&|r| r.counterparty = "no-such-provider".into()));
    for r in cases {
        let reply = app.send(r.clone()).await;
        assert_eq!(
            (reply.code(), reply.status),
            (8, 401),
            "{r:?}: {}",
            reply.body
        );
    }
    unchanged(&app, &p).await;
}

#[tokio::test]
async fn expired_and_future_timestamps_are_8() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    for offset in [-31_000i64, 31_000, -3_600_000, 3_600_000] {
        let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
        r.timestamp = (now_ms() as i64 + offset).to_string();
        app.send(r).await.expect(8, 401);
    }
    // Just inside the window is fine (a clock running ahead of ours).
    let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    r.timestamp = (now_ms() + 25_000).to_string();
    app.send(r).await.expect(1, 200);
    assert_eq!(app.wallet(&p).await, (dec("99"), 2));
}

#[tokio::test]
async fn a_replayed_nonce_is_8_even_pointed_at_another_session() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let q = app.player("USD", "100").await;
    let r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    app.send(r.clone()).await.expect(1, 200);
    app.send(r.clone()).await.expect(8, 401);
    // Method and path are not signed: the same signed body replayed on another session.
    let mut replay = r;
    replay.path = format!("/v1/sessions/{}/bets/pay-in", q.session);
    app.send(replay).await.expect(8, 401);
    assert_eq!(app.wallet(&p).await, (dec("99"), 2));
    unchanged(&app, &q).await;
}

#[tokio::test]
async fn a_wrong_secret_or_an_altered_body_is_8() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    r.secret = app.operator.secret.clone();
    app.send(r).await.expect(8, 401);
    // Signed for 1, sent with 100.
    let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    r.sign = Some(r.sign_now());
    r.body = Some(br#"{"betId":"b1","betAmount":100}"#.to_vec());
    app.send(r).await.expect(8, 401);
    // The GET form of the signature on a POST.
    let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    let body = r.body.take();
    r.sign = Some(r.sign_now());
    r.body = body;
    app.send(r).await.expect(8, 401);
    // An operator's valid credentials on the provider API.
    let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    r.counterparty = app.operator.id.clone();
    r.secret = app.operator.secret.clone();
    app.send(r).await.expect(8, 401);
    unchanged(&app, &p).await;
}

#[tokio::test]
async fn another_providers_session_is_refused_and_untouched() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let other = app.admin.provider_add("Other Games", true).await.unwrap();
    for (op, body) in [
        ("pay-in", r#"{"betId":"b1","betAmount":1}"#),
        (
            "pay-in-out",
            r#"{"betId":"b2","betAmount":1,"winAmount":5}"#,
        ),
        ("pay-out", r#"{"betId":"b3","winAmount":5}"#),
        ("refund", r#"{"betId":"b4"}"#),
    ] {
        let mut r = app.req(p.session, op, Some(body));
        r.counterparty = other.id.clone();
        r.secret = other.secret.clone();
        app.send(r).await.expect(3, 402);
    }
    unchanged(&app, &p).await;
}

#[tokio::test]
async fn malformed_json_and_oversized_bodies_are_5() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    app.call(&p, "pay-in", r#"{"betId":"b1","betAmount":}"#)
        .await
        .expect(5, 402);
    let padding = "x".repeat(17 * 1024);
    let big = format!(r#"{{"betId":"b1","betAmount":1,"pad":"{padding}"}}"#);
    app.call(&p, "pay-in", &big).await.expect(5, 402);
    // Unknown fields are ignored; numeric ids are accepted.
    app.call(
        &p,
        "pay-in",
        r#"{"betId":4178696881,"betAmount":1,"sessionId":"x","winOdd":1.5,"extra":[1,2]}"#,
    )
    .await
    .expect(1, 200);
    assert_eq!(app.bet_state("4178696881").await.as_deref(), Some("open"));
    assert_eq!(app.wallet(&p).await, (dec("99"), 2));
}

/// Request ids are kept in the database: a second server on it, or this one restarted,
/// refuses a request another has accepted, also re-aimed at another endpoint (method and path
/// are not signed).
#[tokio::test]
async fn a_request_id_is_accepted_once_across_servers_and_restarts() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let r = app.req(p.session, "pay-in", Some(r#"{"betId":"b1","betAmount":1}"#));
    app.send(r.clone()).await.expect(1, 200);

    let other = app.another_server().await;
    other.send(r.clone()).await.expect(8, 401);
    let mut refund = r.clone();
    refund.path = format!("/v1/sessions/{}/bets/refund", p.session);
    other.send(refund).await.expect(8, 401);
    assert_eq!(app.bet_state("b1").await.as_deref(), Some("open"));
    assert_eq!(app.wallet(&p).await, (dec("99"), 2));

    // An operator's deposit, replayed to the other server as a withdrawal.
    let signer = crate::helpers::Signer::from(&app.operator);
    let body = format!(
        r#"{{"playerExternalId":"{}","currency":"USD","amount":5,"transactionId":"d1"}}"#,
        p.external_id
    );
    let deposit = app.op_req(&signer, "/v1/player/wallet/deposit", Some(&body));
    assert_eq!(app.op_send(deposit.clone()).await.code(), 0);
    let mut withdraw = deposit;
    withdraw.path = "/v1/player/wallet/withdraw".into();
    assert_eq!(other.op_send(withdraw).await.code(), 5, "replayed");
    assert_eq!(app.wallet(&p).await, (dec("104"), 3));

    // A request stamped before a server started is judged by its id alone: a new one is
    // accepted (the restart forgot nothing the database kept).
    let restarted = app.another_server().await;
    let mut fresh = app.req(p.session, "pay-in", Some(r#"{"betId":"b2","betAmount":1}"#));
    fresh.timestamp = (now_ms() - 10_000).to_string();
    restarted.send(fresh.clone()).await.expect(1, 200);
    restarted.send(fresh).await.expect(8, 401);
    app.assert_books_balance().await;
}

/// Ids in query strings and paths follow the rules of ids in bodies: a NUL byte (which
/// PostgreSQL cannot store) or another control character is a refused value, never a 500.
#[tokio::test]
async fn control_characters_in_query_and_path_ids_are_refused() {
    let app = spawn_app().await;
    app.player("USD", "100").await;
    for path in [
        "/v1/player/wallet/balance?playerExternalId=al%00ice&currency=USD",
        "/v1/player/wallet/balance?playerExternalId=%0A&currency=USD",
        "/v1/player/history?playerExternalId=al%00ice",
        "/v1/transactions/t%00x",
        "/v1/player/crypto/withdrawals/t%00x",
    ] {
        let reply = app.op_get(path).await;
        assert_eq!(reply.status, 202, "{path}: {}", reply.body);
        assert_eq!(reply.code(), 100, "{path}: {}", reply.body);
    }
    let long = format!(
        "/v1/player/wallet/balance?playerExternalId={}&currency=USD",
        "a".repeat(129)
    );
    assert_eq!(app.op_get(&long).await.code(), 100);
    // The JSON escape of a NUL in a body id is refused the same way.
    let reply = app
        .op_post(
            "/v1/player/wallet/deposit",
            r#"{"playerExternalId":"a\u0000b","currency":"USD","amount":1,"transactionId":"t1"}"#,
        )
        .await;
    assert_eq!(reply.code(), 100, "{}", reply.body);
}

/// The signature covers the body, not the path: a body carrying another call's amount is
/// refused, so a captured PayIn cannot be replayed as a Refund, nor a PayInOut as a PayIn or a
/// PayOut.
#[tokio::test]
async fn a_body_carrying_another_calls_amount_is_refused() {
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    for (op, body) in [
        ("refund", r#"{"betId":"r1","betAmount":10}"#),
        ("refund", r#"{"betId":"r1","winAmount":10}"#),
        ("pay-in", r#"{"betId":"r1","betAmount":10,"winAmount":20}"#),
        ("pay-out", r#"{"betId":"r1","betAmount":10,"winAmount":20}"#),
    ] {
        app.call(&p, op, body).await.expect(5, 402);
    }
    unchanged(&app, &p).await;
    assert_eq!(app.bet_state("r1").await, None, "no tombstone, no bet");
}

/// A client that sends its headers and then its body slowly (or never) is answered, and its
/// connection let go, within the body deadline: it cannot hold the server's attention.
#[tokio::test]
async fn a_body_that_does_not_arrive_is_given_up_on_within_the_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let p = app.player("USD", "100").await;
    let r = app.req(
        p.session,
        "pay-in",
        Some(r#"{"betId":"slow","betAmount":1}"#),
    );
    let address = app.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\nX-Counterparty-Id: {}\r\nX-Timestamp: {}\r\n\
         X-Request-Id: {}\r\nX-Sign: {}\r\n\r\n{{\"betId\"",
        r.path,
        r.counterparty,
        r.timestamp,
        r.request_id,
        "0".repeat(64)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        stream.read_to_end(&mut answer),
    )
    .await;
    let waited = started.elapsed();
    assert!(read.is_ok(), "still waiting for the body after {waited:?}");
    assert!(
        waited < croupier::api::BODY_DEADLINE + std::time::Duration::from_secs(3),
        "let go after {waited:?}"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    unchanged(&app, &p).await;
}
