//! Refund: cancel a bet. `POST /v1/sessions/{sessionId}/bets/refund` `{betId}` →
//! `refundTransactionId`, `balance`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{bet_id, not_carried, respond, Answer, Call};
use crate::error::Error;
use crate::ledger::BetId;
use crate::seamless::engine::SeamlessOp;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(borrow)]
    bet_id: &'a RawValue,
    #[serde(borrow, default)]
    bet_amount: Option<&'a RawValue>,
    #[serde(borrow, default)]
    win_amount: Option<&'a RawValue>,
}

/// Decodes a Refund body: JSON, no amount of another call, the bet id.
pub fn decode(body: &[u8]) -> Result<BetId, Error> {
    let body: Body = super::json(body)?;
    not_carried(body.bet_amount, "betAmount", "Refund")?;
    not_carried(body.win_amount, "winAmount", "Refund")?;
    bet_id(body.bet_id)
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{sessionId}/bets/refund",
    tag = "provider",
    operation_id = "refund",
    summary = "Refund (cancel a bet)",
    params(("sessionId" = uuid::Uuid, Path, description = "The game session (`croupier admin session open` or a launch)")),
    request_body = crate::api::docs::schemas::RefundRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "1 success: `refundTransactionId`, `balance` (an unknown bet leaves a tombstone); 104 already refunded", body = crate::api::docs::schemas::ProviderAnswer),
        (status = 402, description = "2 the win was spent (nothing applied); 3 session not found; 5 malformed request (a `betAmount` or `winAmount` too); 6 bet already closed; 7 provider disabled; 9 the bet is another player's; 99 the casino refused (seamless)", body = crate::api::docs::schemas::ProviderAnswer),
        crate::api::docs::schemas::ProviderFailures,
    )
)]
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
    let bet = decode(&call.body)?;
    let session = call.resolve(state).await?;
    if let Some(settings) = state.seamless.settings(&session.operator_id).await? {
        call.claim(state).await?;
        let receipt = state
            .seamless
            .bet(
                &settings,
                &call.provider.id,
                &session,
                bet.as_str(),
                SeamlessOp::Refund,
            )
            .await?;
        return Ok(Answer {
            refund_tx: receipt.refund_tx,
            ..Answer::receipt(&receipt)
        });
    }
    let receipt = state.ledger.refund(call.caller(), &session, bet).await?;
    Ok(Answer {
        refund_tx: receipt.refund_tx,
        ..Answer::receipt(&receipt)
    })
}
