//! The operator transfer-wallet API, as a casino uses it.

use std::collections::HashSet;

use futures::future::join_all;
use uuid::Uuid;

use crate::helpers::{dec, now_ms, spawn_app, Player, Signer, TestApp};

const LAUNCH_TEMPLATE: &str =
    "https://games.example/play?session={sessionId}&game={gameId}&lang={language}&mode={mode}&back={returnUrl}";

async fn launch(app: &TestApp, player: &str, currency: &str) -> crate::helpers::OpReply {
    app.op_post(
        "/v1/game/launch",
        &format!(
            r#"{{"playerExternalId":"{player}","currency":"{currency}","providerId":"{}","gameId":"slot-7","language":"de","returnUrl":"https://casino.example/lobby","mode":"real"}}"#,
            app.provider.id
        ),
    )
    .await
}

#[tokio::test]
async fn the_whole_life_of_a_player() {
    let app = spawn_app().await;
    app.admin
        .provider_set_launch_url(&app.provider.id, LAUNCH_TEMPLATE)
        .await
        .unwrap();

    // Account Init, twice: the same player.
    let created = app.create_player("alice", "USD").await;
    created.expect(0);
    assert_eq!(created.data()["created"], true);
    let again = app.create_player("alice", "USD").await;
    again.expect(0);
    assert_eq!(again.data()["created"], false);
    assert_eq!(again.data()["playerId"], created.data()["playerId"]);

    let d = app.deposit("alice", "USD", "100.50", "dep-1").await;
    d.expect(0);
    assert_eq!(d.amount("balance"), dec("100.5"));
    assert_eq!(d.amount("amount"), dec("100.5"));
    assert_eq!(d.json["message"], "successful request");

    // Launch: a session and the provider's game URL.
    let l = launch(&app, "alice", "USD").await;
    l.expect(0);
    let session = l.data()["sessionId"].as_str().unwrap().to_string();
    let url = l.data()["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("https://games.example/play?session={session}&game=slot-7&lang=de&mode=real&back=https%3A%2F%2Fcasino.example%2Flobby")
    );

    // Bets through the provider API on the launched session.
    let p = Player {
        external_id: "alice".into(),
        currency: croupier::money::Currency::parse("USD").unwrap(),
        session: Uuid::parse_str(&session).unwrap(),
    };
    app.call(
        &p,
        "pay-in-out",
        r#"{"betId":"b1","gameRoundId":"round-1","betAmount":10,"winAmount":25}"#,
    )
    .await
    .expect(1, 200);
    app.call(
        &p,
        "pay-in",
        r#"{"betId":"b2","gameRoundId":"round-1","betAmount":5}"#,
    )
    .await
    .expect(1, 200);
    app.call(
        &p,
        "pay-out",
        r#"{"betId":"b2","gameRoundId":"round-1","winAmount":0}"#,
    )
    .await
    .expect(1, 200);
    app.call(
        &p,
        "pay-in",
        r#"{"betId":"b3","gameRoundId":"round-2","betAmount":20}"#,
    )
    .await
    .expect(1, 200);

    // 100.50 - 10 + 25 - 5 - 20 = 90.50
    let b = app
        .op_get("/v1/player/wallet/balance?playerExternalId=alice&currency=USD")
        .await;
    b.expect(0);
    assert_eq!(b.amount("balance"), dec("90.5"));
    assert_eq!(b.amount("withdrawable"), dec("90.5"));
    assert_eq!(b.data()["currency"], "USD");

    let w = app.withdraw("alice", "USD", "40", "wd-1").await;
    w.expect(0);
    assert_eq!(w.amount("balance"), dec("50.5"));

    // History: round-2 (ongoing) is newest, round-1 ended.
    let h = app
        .op_get("/v1/player/history?playerExternalId=alice&type=ALL")
        .await;
    h.expect(0);
    let rounds = h.data()["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{}", h.body);
    assert_eq!(rounds[0]["roundId"], "round-2");
    assert_eq!(rounds[0]["status"], "ING");
    assert_eq!(rounds[1]["roundId"], "round-1");
    assert_eq!(rounds[1]["status"], "END");
    assert_eq!(rounds[1]["bets"].as_array().unwrap().len(), 2);
    assert_eq!(rounds[1]["gameId"], "slot-7");
    // Exact amounts, read from the JSON text (the database writes `"key" : value`).
    let compact = h.body.replace(' ', "");
    assert!(
        compact.contains(r#""totalBet":15,"totalWin":25"#),
        "{}",
        h.body
    );
    assert!(h.data()["nextCursor"].is_null());
    let ended = app
        .op_get("/v1/player/history?playerExternalId=alice&type=END")
        .await;
    let ended = ended.data()["rounds"].as_array().unwrap().clone();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["roundId"], "round-1");
    let ongoing = app
        .op_get("/v1/player/history?playerExternalId=alice&type=ING")
        .await;
    let ongoing = ongoing.data()["rounds"].as_array().unwrap().clone();
    assert_eq!(ongoing.len(), 1);
    assert_eq!(ongoing[0]["roundId"], "round-2");
    // The open round ends when its bet is settled.
    app.call(&p, "pay-out", r#"{"betId":"b3","winAmount":30}"#)
        .await
        .expect(1, 200);
    let ongoing = app
        .op_get("/v1/player/history?playerExternalId=alice&type=ING")
        .await;
    assert_eq!(ongoing.data()["rounds"].as_array().unwrap().len(), 0);

    // Check Transaction.
    let t = app.op_get("/v1/transactions/wd-1").await;
    t.expect(0);
    assert_eq!(t.data()["type"], "withdrawal");
    assert_eq!(t.data()["status"], "completed");
    assert_eq!(t.amount("amount"), dec("40"));
    assert_eq!(t.data()["referenceId"], w.data()["referenceId"]);
    app.op_get("/v1/transactions/nope").await.expect(100);

    assert_eq!(app.wallet_of("alice", "USD").await, (dec("80.5"), 8));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn every_code_of_the_table_and_nothing_moves_on_refusal() {
    let app = spawn_app().await;
    app.create_player("bob", "USD").await.expect(0);
    app.deposit("bob", "USD", "100", "seed").await.expect(0);
    let before = app.wallet_of("bob", "USD").await;
    assert_eq!(before, (dec("100"), 1));
    let me = Signer::from(&app.operator);
    let body = r#"{"playerExternalId":"bob","currency":"USD","amount":1,"transactionId":"t-x"}"#;
    let deposit = "/v1/player/wallet/deposit";

    // 2: missing data.
    app.op_post(
        deposit,
        r#"{"playerExternalId":"bob","currency":"USD","transactionId":"t1"}"#,
    )
    .await
    .expect(2);
    app.op_post(
        deposit,
        r#"{"playerExternalId":"bob","currency":"USD","amount":1}"#,
    )
    .await
    .expect(2);
    app.op_post(
        deposit,
        r#"{"currency":"USD","amount":1,"transactionId":"t1"}"#,
    )
    .await
    .expect(2);
    app.op_get("/v1/player/wallet/balance?currency=USD")
        .await
        .expect(2);

    // 3: invalid key.
    let mut r = app.op_req(&me, deposit, Some(body));
    r.secret = "wrong-secret".into();
    app.op_send(r).await.expect(3);
    let mut r = app.op_req(&me, deposit, Some(body));
    r.omit.push("X-Sign");
    app.op_send(r).await.expect(3);

    // 4: data format error.
    app.op_post(deposit, r#"{"playerExternalId":"bob","#)
        .await
        .expect(4);
    app.op_post(
        deposit,
        r#"{"playerExternalId":"bob","currency":"USD","amount":"abc","transactionId":"t1"}"#,
    )
    .await
    .expect(4);
    app.op_post(
        deposit,
        r#"{"playerExternalId":{"a":1},"currency":"USD","amount":1,"transactionId":"t1"}"#,
    )
    .await
    .expect(4);
    app.op_post(
        deposit,
        r#"{"playerExternalId":"bob","currency":5,"amount":1,"transactionId":"t1"}"#,
    )
    .await
    .expect(4);
    app.op_post(
        deposit,
        r#"{"playerExternalId":7,"currency":"USD","amount":1,"transactionId":"t1"}"#,
    )
    .await
    .expect(4);
    app.op_post(
        deposit,
        r#"{"playerExternalId":"bob","currency":"USD","amount":1,"transactionId":9}"#,
    )
    .await
    .expect(4);
    app.op_post(deposit, r#"[1,2]"#).await.expect(4);
    let mut r = app.op_req(&me, deposit, Some(body));
    r.timestamp = "abc".into();
    app.op_send(r).await.expect(3);

    // 5: expired request (old, future, replayed).
    for offset in [-31_000i64, 31_000] {
        let mut r = app.op_req(&me, deposit, Some(body));
        r.timestamp = (now_ms() as i64 + offset).to_string();
        app.op_send(r).await.expect(5);
    }
    let r = app.op_req(&me, "/v1/player/wallet/balance?playerExternalId=bob", None);
    app.op_send(r.clone()).await.expect(0);
    app.op_send(r).await.expect(5);

    // 6: invalid agent (unknown, disabled).
    let mut r = app.op_req(&me, deposit, Some(body));
    r.counterparty = "no-such-operator".into();
    app.op_send(r).await.expect(6);
    let other = app.admin.operator_add("Closed Casino").await.unwrap();
    app.admin
        .counterparty_set_status(&other.id, croupier::admin::CounterpartyStatus::Disabled)
        .await
        .unwrap();
    let r = app.op_req(&Signer::from(&other), deposit, Some(body));
    app.op_send(r).await.expect(6);

    // 9: blocked user.
    app.op_post(
        "/v1/player/status",
        r#"{"playerExternalId":"bob","blocked":true}"#,
    )
    .await
    .expect(0);
    app.deposit("bob", "USD", "1", "t-blocked").await.expect(9);
    app.admin
        .provider_set_launch_url(&app.provider.id, LAUNCH_TEMPLATE)
        .await
        .unwrap();
    launch(&app, "bob", "USD").await.expect(9);
    app.op_post(
        "/v1/player/status",
        r#"{"playerExternalId":"bob","blocked":false}"#,
    )
    .await
    .expect(0);

    // 100: data value error.
    for amount in ["-1", "1.001", "1000000001", "0"] {
        app.deposit("bob", "USD", amount, "t-bad").await.expect(100);
    }
    app.deposit("bob", "XXX", "1", "t-bad").await.expect(100);
    app.deposit("nobody", "USD", "1", "t-bad").await.expect(100);
    app.deposit("bob", "EUR", "1", "t-bad").await.expect(100); // no EUR wallet
    app.op_get("/v1/transactions/never-seen").await.expect(100);
    app.deposit("bob", "USD", "2", "seed").await.expect(100); // conflicting reuse

    // 101: permission denied (a provider's credentials).
    let r = app.op_req(&Signer::from(&app.provider), deposit, Some(body));
    app.op_send(r).await.expect(101);

    // 102: insufficient balance (also: a player with nothing to bet cannot enter a game).
    let short = app.withdraw("bob", "USD", "100.01", "t-short").await;
    short.expect(102);
    assert_eq!(short.json["message"], "insufficient balance");
    app.create_player("broke", "USD").await.expect(0);
    launch(&app, "broke", "USD").await.expect(102);

    // 103: integration failure (a provider with no launch URL).
    let bare = app.admin.provider_add("No URL Games", true).await.unwrap();
    app.op_post(
        "/v1/game/launch",
        &format!(
            r#"{{"playerExternalId":"bob","currency":"USD","providerId":"{}","gameId":"g"}}"#,
            bare.id
        ),
    )
    .await
    .expect(103);

    assert_eq!(app.wallet_of("bob", "USD").await, before);
    app.assert_books_balance().await;

    // 1: error occurred (the database is gone).
    app.drop_database().await;
    app.deposit("bob", "USD", "1", "t-gone").await.expect(1);
}

#[tokio::test]
async fn a_repeated_transaction_id_answers_the_original_and_a_different_body_is_100() {
    let app = spawn_app().await;
    app.create_player("carol", "EUR").await.expect(0);
    app.create_player("dave", "EUR").await.expect(0);
    let first = app.deposit("carol", "EUR", "50", "d-1").await;
    first.expect(0);
    app.deposit("carol", "EUR", "25", "d-2").await.expect(0);
    // Same id, same body (amount written differently): the original answer, data and all.
    let again = app.deposit("carol", "EUR", "\"50.00\"", "d-1").await;
    again.expect(0);
    assert_eq!(again.data(), first.data());
    // Same id, other amount / player / operation.
    app.deposit("carol", "EUR", "51", "d-1").await.expect(100);
    app.deposit("dave", "EUR", "50", "d-1").await.expect(100);
    app.withdraw("carol", "EUR", "50", "d-1").await.expect(100);
    assert_eq!(app.wallet_of("carol", "EUR").await, (dec("75"), 2));

    // A refused withdrawal is remembered: the retry is refused again, even with funds now.
    app.withdraw("carol", "EUR", "100", "w-1").await.expect(102);
    app.deposit("carol", "EUR", "100", "d-3").await.expect(0);
    app.withdraw("carol", "EUR", "100", "w-1").await.expect(102);
    let t = app.op_get("/v1/transactions/w-1").await;
    t.expect(0);
    assert_eq!(t.data()["status"], "refused");
    assert_eq!(t.data()["refusalCode"], 102);
    assert_eq!(app.wallet_of("carol", "EUR").await, (dec("175"), 3));

    // Concurrent duplicates apply once.
    let replies = join_all((0..20).map(|_| app.deposit("dave", "EUR", "5", "d-same"))).await;
    assert!(replies.iter().all(|r| r.code() == 0));
    let refs: HashSet<_> = replies
        .iter()
        .map(|r| r.data()["referenceId"].to_string())
        .collect();
    assert_eq!(refs.len(), 1);
    assert_eq!(app.wallet_of("dave", "EUR").await, (dec("5"), 1));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn forty_concurrent_withdrawals_of_ten_from_250_leave_exactly_25() {
    let app = spawn_app().await;
    app.create_player("erin", "USD").await.expect(0);
    app.deposit("erin", "USD", "250", "fund").await.expect(0);
    let replies = join_all((0..40).map(|i| {
        let app = &app;
        async move { app.withdraw("erin", "USD", "10", &format!("w-{i}")).await }
    }))
    .await;
    let ok = replies.iter().filter(|r| r.code() == 0).count();
    let short = replies.iter().filter(|r| r.code() == 102).count();
    assert_eq!((ok, short), (25, 15));
    assert_eq!(app.wallet_of("erin", "USD").await, (dec("0"), 26));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn only_the_withdrawable_part_can_be_withdrawn() {
    let app = spawn_app().await;
    app.create_player("fay", "USD").await.expect(0);
    app.deposit("fay", "USD", "100", "fund").await.expect(0);
    app.sql("UPDATE wallets SET locked = 60").await;
    let b = app
        .op_get("/v1/player/wallet/balance?playerExternalId=fay")
        .await;
    assert_eq!(
        (b.amount("balance"), b.amount("withdrawable")),
        (dec("100"), dec("40"))
    );
    app.withdraw("fay", "USD", "40.01", "w-1").await.expect(102);
    app.withdraw("fay", "USD", "40", "w-2").await.expect(0);
    assert_eq!(app.wallet_of("fay", "USD").await, (dec("60"), 2));
    // Locked money comes from crypto deposits only: a lock no deposit explains is flagged.
    let report = app.admin.reconcile().await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.crypto_mismatches.len(), 1, "{report:?}");
    assert_eq!(report.crypto_mismatches[0]["subject"], "locked");
}

#[tokio::test]
async fn an_operator_sees_only_its_own_players() {
    let app = spawn_app().await;
    app.create_player("gus", "USD").await.expect(0);
    app.deposit("gus", "USD", "10", "mine").await.expect(0);
    let other = Signer::from(&app.admin.operator_add("Other Casino").await.unwrap());
    let send = |path: &str, body: Option<&str>| app.op_send(app.op_req(&other, path, body));
    send("/v1/player/wallet/balance?playerExternalId=gus", None)
        .await
        .expect(100);
    send("/v1/player/history?playerExternalId=gus", None)
        .await
        .expect(100);
    send("/v1/transactions/mine", None).await.expect(100);
    send(
        "/v1/player/wallet/withdraw",
        Some(r#"{"playerExternalId":"gus","currency":"USD","amount":1,"transactionId":"x"}"#),
    )
    .await
    .expect(100);
    send(
        "/v1/player/status",
        Some(r#"{"playerExternalId":"gus","blocked":true}"#),
    )
    .await
    .expect(100);
    // The same external id is another player of the other operator, with its own wallet.
    send(
        "/v1/player/create",
        Some(r#"{"playerExternalId":"gus","currency":"USD"}"#),
    )
    .await
    .expect(0);
    let b = send("/v1/player/wallet/balance?playerExternalId=gus", None).await;
    b.expect(0);
    assert_eq!(b.amount("balance"), dec("0"));
    // The other operator may reuse a transaction id of ours: ids are per operator.
    send(
        "/v1/player/wallet/deposit",
        Some(r#"{"playerExternalId":"gus","currency":"USD","amount":3,"transactionId":"mine"}"#),
    )
    .await
    .expect(0);
    assert_eq!(app.wallet_of("gus", "USD").await, (dec("10"), 1));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn history_pages_miss_and_repeat_nothing_while_bets_arrive() {
    let app = spawn_app().await;
    let p = app.player("USD", "1000").await;
    for i in 0..25 {
        app.call(
            &p,
            "pay-in-out",
            &format!(r#"{{"betId":"b{i}","gameRoundId":"r{i}","betAmount":1,"winAmount":0}}"#),
        )
        .await
        .expect(1, 200);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!(
                "/v1/player/history?playerExternalId={}&limit=7&cursor={c}",
                p.external_id
            ),
            None => format!(
                "/v1/player/history?playerExternalId={}&limit=7",
                p.external_id
            ),
        };
        let page = app.op_get(&path).await;
        page.expect(0);
        for round in page.data()["rounds"].as_array().unwrap() {
            seen.push(round["roundId"].as_str().unwrap().to_string());
        }
        pages += 1;
        // New rounds, and a new bet in an old round, arrive between pages.
        app.call(
            &p,
            "pay-in",
            &format!(r#"{{"betId":"new{pages}","gameRoundId":"new{pages}","betAmount":1}}"#),
        )
        .await
        .expect(1, 200);
        app.call(
            &p,
            "pay-in",
            &format!(r#"{{"betId":"late{pages}","gameRoundId":"r3","betAmount":1}}"#),
        )
        .await
        .expect(1, 200);
        match page.data()["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a round was repeated: {seen:?}");
    let expected: Vec<String> = (0..25).rev().map(|i| format!("r{i}")).collect();
    assert_eq!(seen, expected);
    // Limits are bounded and a foreign cursor is refused.
    app.op_get(&format!(
        "/v1/player/history?playerExternalId={}&limit=101",
        p.external_id
    ))
    .await
    .expect(100);
    app.op_get(&format!(
        "/v1/player/history?playerExternalId={}&cursor=zz",
        p.external_id
    ))
    .await
    .expect(100);
    for bad in ["yesterday", "2026-11-21", "infinity", "1e12"] {
        app.op_get(&format!(
            "/v1/player/history?playerExternalId={}&from={bad}",
            p.external_id
        ))
        .await
        .expect(100);
    }
    // A time window (epoch milliseconds) that ends before everything is empty.
    let empty = app
        .op_get(&format!(
            "/v1/player/history?playerExternalId={}&to=1000",
            p.external_id
        ))
        .await;
    empty.expect(0);
    assert_eq!(empty.data()["rounds"].as_array().unwrap().len(), 0);
    let all = app
        .op_get(&format!(
            "/v1/player/history?playerExternalId={}&from=2020-01-01T00:00:00Z&limit=100",
            p.external_id
        ))
        .await;
    assert_eq!(all.data()["rounds"].as_array().unwrap().len(), 25 + pages);
}
