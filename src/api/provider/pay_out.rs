//! PayOut: the result of a bet. `POST /v1/sessions/{sessionId}/bets/pay-out`
//! `{betId, gameRoundId?, winAmount, winOdd?}` → `winTransactionId`, `balance`.
//! `winAmount` 0 settles a lost bet.

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
    win_amount: &'a RawValue,
    #[serde(borrow, default)]
    bet_amount: Option<&'a RawValue>,
}

/// A PayOut body, checked but for the win, which is read in the session's currency.
#[derive(Debug)]
pub struct PayOut<'a> {
    pub bet: BetId,
    pub round: Option<RoundId>,
    pub win_amount: &'a RawValue,
}

/// Decodes a PayOut body: JSON, no `betAmount`, the ids.
pub fn decode(body: &[u8]) -> Result<PayOut<'_>, Error> {
    let body: Body = super::json(body)?;
    not_carried(body.bet_amount, "betAmount", "PayOut")?;
    Ok(PayOut {
        bet: bet_id(body.bet_id)?,
        round: round_id(body.game_round_id)?,
        win_amount: body.win_amount,
    })
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{sessionId}/bets/pay-out",
    tag = "provider",
    operation_id = "payOut",
    summary = "PayOut (a win; 0 settles a lost bet)",
    params(("sessionId" = uuid::Uuid, Path, description = "The game session (`croupier admin session open` or a launch)")),
    request_body = crate::api::docs::schemas::PayOutRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "1 success: `winTransactionId`, `balance`; 104 already processed", body = crate::api::docs::schemas::ProviderAnswer),
        (status = 402, description = "2 insufficient funds (seamless); 3 session not found; 4 bet not found (providers that refuse standalone wins); 5 malformed request (a `betAmount` too); 6 bet already closed; 7 provider disabled; 9 same betId with another win; 99 the casino refused (seamless)", body = crate::api::docs::schemas::ProviderAnswer),
        crate::api::docs::schemas::ProviderFailures,
    )
)]
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, pay_out(&req, payload, &state).await)
}

async fn pay_out(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Error> {
    let call = Call::accept(req, payload, state).await?;
    let PayOut {
        bet,
        round,
        win_amount,
    } = decode(&call.body)?;
    let session = call.resolve(state).await?;
    let win = call.amount(win_amount, session.currency)?;
    if let Some(settings) = state.seamless.settings(&session.operator_id).await? {
        call.claim(state).await?;
        let op = SeamlessOp::PayOut {
            round: round.map(RoundId::into_string),
            win: win.value(),
            standalone_wins: call.provider.standalone_wins,
        };
        let receipt = state
            .seamless
            .bet(&settings, &call.provider.id, &session, bet.as_str(), op)
            .await?;
        return Ok(Answer {
            win_tx: receipt.win_tx,
            ..Answer::receipt(&receipt)
        });
    }
    let receipt = state
        .ledger
        .pay_out(
            call.caller(),
            call.provider.standalone_wins,
            &session,
            bet,
            round,
            win,
        )
        .await?;
    Ok(Answer {
        win_tx: receipt.win_tx,
        ..Answer::receipt(&receipt)
    })
}
