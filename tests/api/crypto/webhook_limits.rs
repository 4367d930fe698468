//! The unsigned inabit webhook under a flood: a rate per source address, a bound on the
//! events waiting, and made-up transaction ids dropped without a review entry.

use std::net::IpAddr;
use std::time::Duration;

use croupier::crypto::webhooks::WebhookLimits;
use serde_json::{json, Value};

use super::{app_with, config};
use crate::fakes::FakeInabit;
use crate::helpers::TestApp;

impl TestApp {
    /// A webhook naming `tx`, sent from the loopback address `from`: (status, Retry-After).
    async fn webhook_from(&self, from: &str, tx: &str) -> (u16, Option<String>) {
        let client = reqwest::Client::builder()
            .local_address(from.parse::<IpAddr>().unwrap())
            .build()
            .unwrap();
        let answer = client
            .post(format!("{}/v1/crypto/inabit/webhook", self.base))
            .json(&json!({"event": "IncomingTransactionReceived",
                          "data": {"transactionId": tx, "status": "Pending"}}))
            .send()
            .await
            .unwrap();
        let retry = answer
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (answer.status().as_u16(), retry)
    }

    async fn stored_events(&self) -> i64 {
        let client = self.pool.get().await.unwrap();
        client
            .query_one("SELECT count(*) FROM crypto_events", &[])
            .await
            .unwrap()
            .get(0)
    }

    async fn webhook_counts(&self) -> Value {
        self.crypto.status().await.unwrap()["webhooks"].clone()
    }
}

#[tokio::test]
async fn one_source_gets_its_share_of_webhooks_and_no_more() {
    let inabit = FakeInabit::start().await;
    let mut c = config(&inabit, None);
    c.webhooks = WebhookLimits {
        per_second: 1,
        burst: 5,
        max_pending: 1000,
    };
    let app = app_with(c).await;
    let mut answers = Vec::new();
    for i in 0..8 {
        answers.push(app.webhook_from("127.0.0.1", &format!("flood-{i}")).await);
    }
    let taken = answers.iter().filter(|(s, _)| *s == 200).count();
    // The burst, and at most one more refilled while the flood was sent.
    assert!((5..=6).contains(&taken), "{answers:?}");
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(refused
        .iter()
        .all(|(s, retry)| *s == 429 && retry.as_deref() == Some("5")));
    assert_eq!(
        app.stored_events().await,
        taken as i64,
        "nothing stored when refused"
    );
    // Another source has a share of its own.
    assert_eq!(app.webhook_from("127.0.0.2", "other-0").await.0, 200);
    let counts = app.webhook_counts().await;
    assert_eq!(counts["rateLimited"], json!(8 - taken));
    assert_eq!(counts["accepted"], json!(taken + 1));
}

#[tokio::test]
async fn waiting_events_are_bounded_and_unknown_ids_leave_no_review() {
    let inabit = FakeInabit::start().await;
    let mut c = config(&inabit, None);
    c.webhooks = WebhookLimits {
        per_second: 1000,
        burst: 1000,
        max_pending: 3,
    };
    let app = app_with(c).await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(
            app.webhook_from("127.0.0.1", &format!("made-up-{i}"))
                .await
                .0,
        );
    }
    assert_eq!(statuses, vec![200, 200, 200, 503, 503]);
    assert_eq!(app.stored_events().await, 3);

    // inabit knows none of them: each is dropped after one read, with no review entry.
    app.crypto.process_events().await.unwrap();
    assert!(app.open_reviews().await.is_empty());
    let counts = app.webhook_counts().await;
    assert_eq!(counts["unknownDropped"], json!(3));
    assert_eq!(counts["queueFull"], json!(2));
    assert_eq!(
        app.crypto.status().await.unwrap()["pendingEvents"],
        json!(0)
    );
    // Room again once the count is read anew.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.webhook_from("127.0.0.1", "made-up-5").await.0, 200);
}
