//! Check Transaction: `GET /v1/transactions/{transactionId}` → the status and amounts of an
//! earlier deposit or withdrawal; 100 when the operator has no such transaction.

use actix_web::{web, HttpRequest, HttpResponse};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use super::{query_id, respond, wire_code, Call};
use crate::error::Error;
use crate::startup::AppState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    transaction_id: String,
    reference_id: Uuid,
    /// `deposit` or `withdrawal`.
    r#type: &'static str,
    /// `completed` or `refused`.
    status: &'static str,
    /// For a refused transfer, the code it was refused with; null when completed.
    refusal_code: Option<u16>,
    player_external_id: String,
    currency: String,
    #[serde(serialize_with = "crate::api::decimal")]
    amount: Decimal,
    /// The balance right after the transfer (unchanged for a refused one).
    #[serde(serialize_with = "crate::api::decimal")]
    balance: Decimal,
    created_at: String,
}

#[utoipa::path(
    get,
    path = "/v1/transactions/{transactionId}",
    tag = "operator",
    operation_id = "checkTransaction",
    summary = "Check Transaction",
    params(("transactionId" = String, Path, description = "The operator's transactionId")),
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::TransactionData>),
        (status = 202, description = "100 data value error (unknown transaction); 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
    )
)]
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, check(&req, payload, &state).await)
}

async fn check(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Error> {
    let call = Call::accept(req, payload, state).await?;
    let transaction_id = query_id(req.match_info().get("transaction_id"), "transactionId")?;
    let record = state
        .ledger
        .transfer_record(&call.operator.id, &transaction_id)
        .await?;
    Ok(Answer {
        transaction_id,
        reference_id: record.transfer_id,
        r#type: record.kind.as_str(),
        status: if record.refusal.is_some() {
            "refused"
        } else {
            "completed"
        },
        refusal_code: record.refusal.as_ref().map(|e| wire_code(e).0),
        player_external_id: record.external_id,
        currency: record.currency,
        amount: record.amount,
        balance: record.balance_after,
        created_at: record.created_at,
    })
}
