//! Sending to a casino. A leg goes as its own `payments/make` (or `close`), or, for an
//! operator with make-list on, together with the makes other calls are sending to the same
//! casino at that moment: one `payments/make-list`, one JWT for all of them, one result per
//! item (contract section 1). Each item of the list is a leg's `data` byte for byte, so a leg
//! sent again alone carries exactly what the list carried; the casino's key (`BetId`,
//! `TransactionType`) makes either way of sending it the same movement.
//!
//! A list that gets no usable answer (a timeout, a 5xx, no envelope, a result missing or
//! naming another movement) leaves each of its legs' outcome unknown, exactly as a single make
//! without an answer: debits are settled by `accept` or `payments/info`, credits sent again.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::breaker::Breakers;
use super::casino::{self, Exchange, Reply};
use super::keys::KeyRing;
use super::settings::{Meaning, SeamlessSettings};
use crate::error::Error;

/// Makes combined into one list at most.
pub const MAX_LIST: usize = 100;

/// What a casino call needs, shareable with the tasks that send lists.
#[derive(Clone)]
pub struct Outbound {
    pub http: reqwest::Client,
    pub keys: Arc<KeyRing>,
    pub breakers: Arc<Breakers>,
}

/// A make waiting to go in a list.
pub struct ListItem {
    pub settings: Arc<SeamlessSettings>,
    pub data: String,
    pub timeout: Duration,
}

impl Outbound {
    /// One signed call, counted by the operator's breaker.
    pub async fn post(
        &self,
        settings: &SeamlessSettings,
        path: &str,
        data: &str,
        timeout: Duration,
    ) -> Result<Exchange, Error> {
        let exchange = casino::post(&self.http, &self.keys, settings, path, data, timeout).await?;
        self.breakers.count(&settings.operator_id, &exchange);
        Ok(exchange)
    }

    /// The makes of one operator's casino that queued together: alone as a make, or as one
    /// list; one exchange per make, in order.
    pub async fn send_list(&self, items: Vec<ListItem>) -> Vec<Result<Exchange, Error>> {
        let Some(settings) = items.last().map(|i| i.settings.clone()) else {
            return Vec::new();
        };
        if let [one] = items.as_slice() {
            return vec![
                self.post(&one.settings, casino::path::MAKE, &one.data, one.timeout)
                    .await,
            ];
        }
        let timeout = items
            .iter()
            .map(|i| i.timeout)
            .min()
            .unwrap_or(settings.attempt_timeout);
        let mut data =
            String::with_capacity(items.iter().map(|i| i.data.len() + 1).sum::<usize>() + 20);
        data.push_str(r#"{"Transactions":["#);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                data.push(',');
            }
            data.push_str(&item.data);
        }
        data.push_str("]}");
        match self
            .post(&settings, casino::path::MAKE_LIST, &data, timeout)
            .await
        {
            Ok(list) => split(&list, &items, &settings)
                .into_iter()
                .map(Ok)
                .collect(),
            Err(e) => items
                .iter()
                .map(|_| Err(Error::Internal(anyhow::anyhow!("{e}"))))
                .collect(),
        }
    }
}

/// Each item's exchange out of the list's: its result when the list was answered and the
/// result names the item's movement, an unknown outcome otherwise.
fn split(list: &Exchange, items: &[ListItem], settings: &SeamlessSettings) -> Vec<Exchange> {
    let results = match &list.reply {
        Reply::Envelope {
            meaning: Meaning::Applied,
            value,
            ..
        } => value["Results"].as_array(),
        _ => None,
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let result = results
                .and_then(|r| r.get(i))
                .and_then(Value::as_object)
                .filter(|r| names_the_same_movement(r, &item.data));
            // Built field by field: the list's own answer (every result) is not copied into
            // each of its items.
            let (body, error, reply) = match result {
                Some(result) => (
                    Some(kept(&Value::Object(result.clone()).to_string())),
                    None,
                    casino::reply_of(result, Value::Object(result.clone()), settings),
                ),
                None => (
                    list.body.clone(),
                    list.error.clone().or_else(|| {
                        Some("no result for this movement in the list's answer".into())
                    }),
                    Reply::Unknown,
                ),
            };
            Exchange {
                started: list.started,
                elapsed: list.elapsed,
                http_status: list.http_status,
                body,
                error,
                reply,
            }
        })
        .collect()
}

/// At most `casino::BODY_KEPT` characters of an answer, as kept for audit.
fn kept(text: &str) -> String {
    match text.char_indices().nth(casino::BODY_KEPT) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

/// Whether a list result is about the movement of a make's `data` (same `BetId` and
/// `TransactionType`, as numbers or as strings).
fn names_the_same_movement(result: &serde_json::Map<String, Value>, data: &str) -> bool {
    let Ok(sent) = serde_json::from_str::<Value>(data) else {
        return false;
    };
    let number = |v: Option<&Value>| match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    ["BetId", "TransactionType"].iter().all(|field| {
        let ours = number(sent.get(*field));
        ours.is_some() && ours == number(result.get(*field))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_matched_to_its_movement_by_bet_and_type() {
        let data = r#"{"BetId":17,"TransactionType":-1,"Amount":"1","PartnerUserId":"a"}"#;
        let same: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"BetId":"17","TransactionType":-1,"ErrorCode":200}"#)
                .expect("an object");
        let other: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"BetId":17,"TransactionType":1,"ErrorCode":200}"#)
                .expect("an object");
        let none: serde_json::Map<String, Value> =
            serde_json::from_str(r#"{"ErrorCode":200}"#).expect("an object");
        assert!(names_the_same_movement(&same, data));
        assert!(!names_the_same_movement(&other, data));
        assert!(!names_the_same_movement(&none, data));
    }
}
