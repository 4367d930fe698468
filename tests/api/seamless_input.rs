//! What a seamless casino sends that PostgreSQL cannot store: a NUL character in a token
//! request or a verdict is refused as the caller's mistake, never answered "try again" (503).

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn casino_post(app: &TestApp, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/mis-api/api/v2/{path}", app.base))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.expect("the call is answered");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("a JSON envelope"))
}

async fn discrepancies(app: &TestApp) -> i64 {
    app.pool
        .get()
        .await
        .expect("a connection")
        .query_one("SELECT count(*) FROM seamless_discrepancies", &[])
        .await
        .expect("the count")
        .get(0)
}

#[tokio::test]
async fn a_token_request_naming_an_id_with_a_nul_is_unauthorized() {
    let app = spawn_app().await;
    let casino = app
        .admin
        .operator_add_seamless("Seamless Casino", "http://127.0.0.1:9/wallet")
        .await
        .expect("a seamless operator");
    let id_with_nul = format!("{}\u{0}", casino.id);
    let ask = json!({"PartnerClientId": id_with_nul, "Secret": casino.secret});
    let (status, answer) = casino_post(&app, "auth/token", None, &ask).await;
    assert_eq!(
        (status, answer["ErrorCode"].as_i64()),
        (401, Some(401)),
        "{answer}"
    );
    // The operator's own credentials still work.
    let ask = json!({"PartnerClientId": casino.id, "Secret": casino.secret});
    assert_eq!(casino_post(&app, "auth/token", None, &ask).await.0, 200);
}

#[tokio::test]
async fn a_verdict_holding_a_nul_is_refused_and_records_nothing() {
    let app = spawn_app().await;
    let casino = app
        .admin
        .operator_add_seamless("Seamless Casino", "http://127.0.0.1:9/wallet")
        .await
        .expect("a seamless operator");
    let ask = json!({"PartnerClientId": casino.id, "Secret": casino.secret});
    let (_, answer) = casino_post(&app, "auth/token", None, &ask).await;
    let token = answer["Value"]["AccessToken"]
        .as_str()
        .expect("a token")
        .to_string();
    let verdicts = [
        json!({"BetId": 17, "TransactionType": -1, "ErrorCode": 200, "PartnerTransactionId": "p\u{0}1"}),
        json!({"BetId": 17, "TransactionType": -1, "ErrorCode": 200, "Message": "\u{0}"}),
        json!({"BetId": 17, "TransactionType": -1, "ErrorCode": 200, "extra\u{0}": [1]}),
    ];
    for verdict in verdicts {
        let (status, answer) = casino_post(&app, "payments/accept", Some(&token), &verdict).await;
        assert_eq!(
            (status, answer["ErrorCode"].as_i64()),
            (400, Some(400)),
            "{verdict}"
        );
    }
    assert_eq!(discrepancies(&app).await, 0);
    // The same verdict without the NUL is recorded (as a discrepancy: croupier sent no such
    // movement).
    let verdict =
        json!({"BetId": 17, "TransactionType": -1, "ErrorCode": 200, "PartnerTransactionId": "p1"});
    let (status, _) = casino_post(&app, "payments/accept", Some(&token), &verdict).await;
    assert_eq!(status, 200);
    assert_eq!(discrepancies(&app).await, 1);
}
