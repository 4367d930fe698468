//! The casino's HTTP endpoints: the casino API croupier calls, and the unsigned control
//! endpoints of the test bench.

use std::str::FromStr;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{envelope, lock, Fault, FaultRule, Player, State};

pub(super) async fn users_data(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    if let Some(answer) = pre_fault(&state, "users/data", &data).await {
        return answer;
    }
    let user = data["PartnerUserId"].as_str().unwrap_or_default();
    let mut books = lock(&state.books);
    match state.player(&mut books, user) {
        Some(p) if p.blocked => envelope(403, "player blocked", None),
        Some(p) => envelope(
            200,
            "Success",
            Some(
                json!({"Balance": p.balance.normalize().to_string(), "CurrencyCode": p.currency_code}),
            ),
        ),
        None => envelope(102145, "user not found", None),
    }
}

pub(super) async fn users_auth(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    // The demo's launch tokens are the player ids themselves.
    let user = data["RefreshToken"].as_str().unwrap_or_default();
    let mut books = lock(&state.books);
    match state.player(&mut books, user) {
        Some(p) => envelope(
            200,
            "Success",
            Some(
                json!({"PartnerUserId": user, "CurrencyCode": p.currency_code,
                        "Balance": p.balance.normalize().to_string(), "RefreshToken": user}),
            ),
        ),
        None => envelope(102145, "user not found", None),
    }
}

/// The fault a call meets, acted on where nothing is applied first: Some(answer) ends the
/// call; a latency is waited out; a fault of a make is left to `make`.
async fn pre_fault(state: &State, path: &str, data: &Value) -> Option<HttpResponse> {
    let fault = state.fault(path, data)?;
    before_apply(fault).await.err()
}

/// Acts on a fault before applying: Err(answer) ends the call, Ok(fault) is for after.
async fn before_apply(fault: Fault) -> Result<Fault, HttpResponse> {
    match fault {
        Fault::Down => Err(HttpResponse::ServiceUnavailable().finish()),
        Fault::Refuse { code } => Err(envelope(code, "refused", None)),
        Fault::Hang { ms, apply: false } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Err(HttpResponse::ServiceUnavailable().finish())
        }
        Fault::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Fault::Latency { ms: 0 })
        }
        other => Ok(other),
    }
}

pub(super) async fn make(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    state.count("payments/make");
    let after = match state.fault("payments/make", &data) {
        Some(fault) => match before_apply(fault).await {
            Ok(after) => Some(after),
            Err(answer) => return answer,
        },
        None => None,
    };
    if let Some(Fault::AcceptLater { delay_ms }) = after {
        let state = state.into_inner();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let (code, value) = state.apply(&data);
            state.send_accept(&data, code, &value).await;
        });
        return envelope(202, "accepted", None);
    }
    let (code, value) = state.apply(&data);
    match after {
        Some(Fault::Hang { ms, .. }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return HttpResponse::ServiceUnavailable().finish();
        }
        Some(Fault::ErrorAfterApply { status }) => {
            return HttpResponse::build(
                actix_web::http::StatusCode::from_u16(status)
                    .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
            )
            .finish();
        }
        _ => {}
    }
    let message = if code == 200 { "Success" } else { "refused" };
    envelope(code, message, (code == 200 || code == 409).then_some(value))
}

/// A list of makes. A rule for `payments/make-list` acts on the whole list as on one make; a
/// rule for `payments/make` acts on each item it matches: a refusal or a late verdict (202)
/// for that item alone, a latency, a hang, an outage or an error after applying for the
/// whole list (whose other items then share its fate: applied or not, unanswered).
pub(super) async fn make_list(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    state.count("payments/make-list");
    let Some(items) = data["Transactions"].as_array().cloned() else {
        return envelope(102823, "no Transactions", None);
    };
    let mut whole = state.fault("payments/make-list", &data);
    let mut per_item = Vec::with_capacity(items.len());
    for item in &items {
        match state.fault("payments/make", item) {
            Some(fault @ (Fault::Refuse { .. } | Fault::AcceptLater { .. })) => {
                per_item.push(Some(fault))
            }
            Some(fault) => {
                whole = whole.or(Some(fault));
                per_item.push(None);
            }
            None => per_item.push(None),
        }
    }
    let after = match whole {
        Some(fault) => match before_apply(fault).await {
            Ok(after) => Some(after),
            Err(answer) => return answer,
        },
        None => None,
    };
    let mut results = Vec::with_capacity(items.len());
    for (item, fault) in items.iter().zip(per_item) {
        let (code, value) = match fault {
            Some(Fault::Refuse { code }) => (code, Value::Null),
            Some(Fault::AcceptLater { delay_ms }) => {
                let (state, item) = (state.clone().into_inner(), item.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    let (code, value) = state.apply(&item);
                    state.send_accept(&item, code, &value).await;
                });
                (202, Value::Null)
            }
            _ => state.apply(item),
        };
        results.push(json!({"BetId": item["BetId"], "TransactionType": item["TransactionType"],
                            "ErrorCode": code, "PartnerTransactionId": value["PartnerTransactionId"],
                            "Balance": value["Balance"]}));
    }
    match after {
        Some(Fault::Hang { ms, .. }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            HttpResponse::ServiceUnavailable().finish()
        }
        Some(Fault::ErrorAfterApply { status }) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
        )
        .finish(),
        _ => envelope(200, "Success", Some(json!({ "Results": results }))),
    }
}

pub(super) async fn info(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    if let Some(answer) = pre_fault(&state, "payments/info", &data).await {
        return answer;
    }
    let bet = data["BetId"].as_i64().unwrap_or(-1);
    let books = lock(&state.books);
    let listed: Vec<Value> = books
        .movements
        .range((bet, i64::MIN)..=(bet, i64::MAX))
        .filter(|(_, m)| m.error_code == 200)
        .map(|(_, m)| {
            json!({"BetId": m.bet_id, "TransactionType": m.transaction_type,
                   "Amount": m.amount.normalize().to_string(),
                   "PartnerTransactionId": m.partner_transaction_id, "CreatedAt": m.created_at})
        })
        .collect();
    if listed.is_empty() {
        return envelope(404, "transaction not found", None);
    }
    envelope(200, "Success", Some(json!({ "Transactions": listed })))
}

pub(super) async fn close(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    if let Some(answer) = pre_fault(&state, "payments/close", &data).await {
        return answer;
    }
    let bet = data["BetId"].as_i64().unwrap_or(-1);
    let closed = data["Closed"].as_bool().unwrap_or(true);
    lock(&state.books).closed.insert(bet, closed);
    envelope(200, "Success", None)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct NewPlayer {
    partner_user_id: String,
    balance: String,
    #[serde(default)]
    currency_code: Option<String>,
    #[serde(default)]
    blocked: bool,
}

pub(super) async fn add_player(
    body: web::Json<NewPlayer>,
    state: web::Data<State>,
) -> HttpResponse {
    let Ok(balance) = Decimal::from_str(&body.balance) else {
        return HttpResponse::BadRequest().body("Balance must be a decimal string");
    };
    lock(&state.books).players.insert(
        body.partner_user_id.clone(),
        Player {
            balance,
            currency_code: body
                .currency_code
                .clone()
                .unwrap_or_else(|| state.config.currency.clone()),
            blocked: body.blocked,
        },
    );
    HttpResponse::Ok().json(json!({"ok": true}))
}

pub(super) async fn set_faults(
    body: web::Json<Vec<FaultRule>>,
    state: web::Data<State>,
) -> HttpResponse {
    *lock(&state.faults) = body.into_inner();
    HttpResponse::Ok().json(json!({"ok": true}))
}

pub(super) async fn ledger(state: web::Data<State>) -> HttpResponse {
    let books = lock(&state.books);
    HttpResponse::Ok().json(json!({
        "players": books.players,
        "movements": books.movements.values().collect::<Vec<_>>(),
        "closed": books.closed.keys().collect::<Vec<_>>(),
        "badJwts": *lock(&state.bad_jwts),
    }))
}
