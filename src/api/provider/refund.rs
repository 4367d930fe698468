//! Refund: cancel a bet. `POST /v1/sessions/{sessionId}/bets/refund` `{betId}` →
//! `refundTransactionId`, `balance`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{bet_id, respond, Answer, Call};
use crate::error::Error;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(borrow)]
    bet_id: &'a RawValue,
}

pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, refund(&req, payload, &state).await)
}

async fn refund(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Error> {
    let call = Call::accept(req, payload, state).await?;
    let body: Body = call.json()?;
    let bet = bet_id(body.bet_id)?;
    let receipt = state
        .ledger
        .refund(&call.provider.id, &call.resolve(state).await?, bet)
        .await?;
    Ok(Answer {
        refund_tx: receipt.refund_tx,
        ..Answer::receipt(&receipt)
    })
}
