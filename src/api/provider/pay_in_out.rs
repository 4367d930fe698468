//! PayInOut: a bet and its result at once. `POST /v1/sessions/{sessionId}/bets/pay-in-out`
//! `{betId, gameRoundId?, betAmount, winAmount, winOdd?}` → `betTransactionId`,
//! `winTransactionId`, `balance`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{bet_id, respond, round_id, Answer, Call};
use crate::error::Error;
use crate::ledger::{BetId, RoundId};
use crate::money::{Amount, Currency};
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
    #[serde(borrow)]
    win_amount: &'a RawValue,
}

/// A PayInOut request, decoded and checked.
#[derive(Debug)]
pub struct PayInOut {
    pub bet: BetId,
    pub round: Option<RoundId>,
    pub stake: Amount,
    pub win: Amount,
}

/// Decodes a PayInOut body for a session in `currency` (amounts exact, in its scale).
pub fn decode(body: &[u8], currency: Currency) -> Result<PayInOut, Error> {
    let body: Body = super::json(body)?;
    Ok(PayInOut {
        bet: bet_id(body.bet_id)?,
        round: round_id(body.game_round_id)?,
        stake: Amount::parse_json(body.bet_amount.get(), currency)?,
        win: Amount::parse_json(body.win_amount.get(), currency)?,
    })
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{sessionId}/bets/pay-in-out",
    tag = "provider",
    operation_id = "payInOut",
    summary = "PayInOut (a bet and its result)",
    params(("sessionId" = uuid::Uuid, Path, description = "The game session (`croupier admin session open` or a launch)")),
    request_body = crate::api::docs::schemas::PayInOutRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "1 success: `betTransactionId`, `winTransactionId`, `balance`; 104 already processed", body = crate::api::docs::schemas::ProviderAnswer),
        (status = 402, description = "2 insufficient funds; 3 session not found; 5 malformed request; 6 bet already closed; 7 player blocked or provider disabled; 9 same betId with other data; 99 the casino refused (seamless)", body = crate::api::docs::schemas::ProviderAnswer),
        crate::api::docs::schemas::ProviderFailures,
    )
)]
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, pay_in_out(&req, payload, &state).await)
}

async fn pay_in_out(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Error> {
    let call = Call::accept(req, payload, state).await?;
    let session = call.resolve(state).await?;
    let bet = decode(&call.body, session.currency)?;
    if let Some(settings) = state.seamless.settings(&session.operator_id).await? {
        call.claim(state).await?;
        let op = SeamlessOp::PayInOut {
            round: bet.round.map(RoundId::into_string),
            stake: bet.stake.value(),
            win: bet.win.value(),
        };
        let receipt = state
            .seamless
            .bet(&settings, &call.provider.id, &session, bet.bet.as_str(), op)
            .await?;
        return Ok(Answer::pay_in_out(&receipt));
    }
    let receipt = state
        .ledger
        .pay_in_out(
            call.caller(),
            &session,
            bet.bet,
            bet.round,
            bet.stake,
            bet.win,
        )
        .await?;
    Ok(Answer::pay_in_out(&receipt))
}
