//! Deposit and Withdraw: `POST /v1/player/wallet/deposit` and `/withdraw`
//! `{playerExternalId, currency, amount, transactionId}`. Idempotent by `transactionId`
//! (unique per operator across both): the same id with the same body answers the original
//! outcome, refusals included; with another body, 100.

use actix_web::{web, HttpRequest, HttpResponse};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{amount, currency, id, json, respond, Call};
use crate::error::Error;
use crate::ledger::TransferKind;
use crate::money::Amount;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(borrow, default)]
    player_external_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    currency: Option<&'a RawValue>,
    #[serde(borrow, default)]
    amount: Option<&'a RawValue>,
    #[serde(borrow, default)]
    transaction_id: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    transaction_id: String,
    /// Our id of the transfer.
    reference_id: Uuid,
    player_external_id: String,
    currency: &'static str,
    #[serde(serialize_with = "crate::api::decimal")]
    amount: Decimal,
    /// The balance right after this transfer.
    #[serde(serialize_with = "crate::api::decimal")]
    balance: Decimal,
}

/// A Deposit or Withdraw body, decoded and checked.
#[derive(Debug)]
pub struct TransferRequest {
    pub external_id: String,
    pub transaction_id: String,
    pub amount: Amount,
}

/// Decodes a Deposit or Withdraw body (the same for both).
pub fn decode(body: &[u8]) -> Result<TransferRequest, Error> {
    let body: Body = json(body)?;
    let external_id = id(body.player_external_id, "playerExternalId")?;
    let transaction_id = id(body.transaction_id, "transactionId")?;
    let currency = currency(body.currency)?;
    Ok(TransferRequest {
        external_id,
        transaction_id,
        amount: amount(body.amount, currency)?,
    })
}

#[utoipa::path(
    post,
    path = "/v1/player/wallet/deposit",
    tag = "operator",
    operation_id = "deposit",
    summary = "Deposit",
    request_body = crate::api::docs::schemas::TransferRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::TransferData>),
        (status = 202, description = "9 blocked user; 100 data value error (amount, currency, unknown player, transactionId reused with another body); 101 seamless operator; 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
    )
)]
pub async fn deposit(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        transfer(TransferKind::Deposit, &req, payload, &state).await,
    )
}

#[utoipa::path(
    post,
    path = "/v1/player/wallet/withdraw",
    tag = "operator",
    operation_id = "withdraw",
    summary = "Withdraw",
    request_body = crate::api::docs::schemas::TransferRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::TransferData>),
        (status = 202, description = "100 data value error (amount, currency, unknown player, transactionId reused with another body); 101 seamless operator; 102 insufficient balance (withdrawable part); 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
    )
)]
pub async fn withdraw(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        transfer(TransferKind::Withdrawal, &req, payload, &state).await,
    )
}

async fn transfer(
    kind: TransferKind,
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Error> {
    let call = Call::accept(req, payload, state).await?;
    state.seamless.refuse_if_seamless(&call.operator.id).await?;
    let TransferRequest {
        external_id,
        transaction_id,
        amount,
    } = decode(&call.body)?;
    let currency = amount.currency();
    let receipt = state
        .ledger
        .transfer(
            kind,
            &call.operator.id,
            &external_id,
            amount,
            &transaction_id,
        )
        .await?;
    Ok(Answer {
        transaction_id,
        reference_id: receipt.transfer_id,
        player_external_id: external_id,
        currency: currency.code(),
        amount: amount.value(),
        balance: receipt.balance,
    })
}
