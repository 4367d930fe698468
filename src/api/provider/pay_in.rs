//! PayIn: a bet. `POST /v1/sessions/{sessionId}/bets/pay-in`
//! `{betId, gameRoundId?, betAmount}` → `betTransactionId`, `balance`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{bet_id, not_carried, respond, round_id, Answer, Call};
use crate::error::Error;
use crate::ledger::{BetId, RoundId};
use crate::seamless::engine::SeamlessOp;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(borrow)]
    bet_id: &'a RawValue,
    #[serde(borrow, default)]
    game_round_id: Option<&'a RawValue>,
    #[serde(borrow)]
    bet_amount: &'a RawValue,
    #[serde(borrow, default)]
    win_amount: Option<&'a RawValue>,
}

/// A PayIn body, checked but for the stake, which is read in the session's currency.
#[derive(Debug)]
pub struct PayIn<'a> {
    pub bet: BetId,
    pub round: Option<RoundId>,
    pub bet_amount: &'a RawValue,
}

/// Decodes a PayIn body: JSON, no `winAmount`, the ids.
pub fn decode(body: &[u8]) -> Result<PayIn<'_>, Error> {
    let body: Body = super::json(body)?;
    not_carried(body.win_amount, "winAmount", "PayIn")?;
    Ok(PayIn {
        bet: bet_id(body.bet_id)?,
        round: round_id(body.game_round_id)?,
        bet_amount: body.bet_amount,
    })
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{sessionId}/bets/pay-in",
    tag = "provider",
    operation_id = "payIn",
    summary = "PayIn (a bet)",
    params(("sessionId" = uuid::Uuid, Path, description = "The game session (`croupier admin session open` or a launch)")),
    request_body = crate::api::docs::schemas::PayInRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "1 success: `betTransactionId`, `balance`; 104 already processed", body = crate::api::docs::schemas::ProviderAnswer),
        (status = 402, description = "2 insufficient funds; 3 session not found; 5 malformed request (bad JSON, missing field, bad amount, a `winAmount`); 6 bet already closed; 7 player blocked or provider disabled; 9 same betId with other data; 99 the casino refused (seamless)", body = crate::api::docs::schemas::ProviderAnswer),
        crate::api::docs::schemas::ProviderFailures,
    )
)]
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, pay_in(&req, payload, &state).await)
}

async fn pay_in(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Error> {
    let call = Call::accept(req, payload, state).await?;
    let PayIn {
        bet,
        round,
        bet_amount,
    } = decode(&call.body)?;
    let session = call.resolve(state).await?;
    let stake = call.amount(bet_amount, session.currency)?;
    if let Some(settings) = state.seamless.settings(&session.operator_id).await? {
        call.claim(state).await?;
        let op = SeamlessOp::PayIn {
            round: round.map(RoundId::into_string),
            stake: stake.value(),
        };
        let receipt = state
            .seamless
            .bet(&settings, &call.provider.id, &session, bet.as_str(), op)
            .await?;
        return Ok(Answer {
            bet_tx: receipt.bet_tx,
            ..Answer::receipt(&receipt)
        });
    }
    let receipt = state
        .ledger
        .pay_in(call.caller(), &session, bet, round, stake)
        .await?;
    Ok(Answer {
        bet_tx: receipt.bet_tx,
        ..Answer::receipt(&receipt)
    })
}
