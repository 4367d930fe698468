//! Balance: `GET /v1/sessions/{sessionId}/balance` → `currency`, `balance`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{code, respond, Answer, Call};
use crate::error::Error;
use crate::startup::AppState;

pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, balance(&req, payload, &state).await)
}

async fn balance(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Error> {
    let call = Call::accept(req, payload, state).await?;
    call.claim(state).await?;
    let session = call.resolve(state).await?;
    if let Some(settings) = state.seamless.settings(&session.operator_id).await? {
        let balance = state
            .seamless
            .balance_of(&settings, &session.external_id)
            .await?;
        return Ok(Answer {
            currency: Some(session.currency.code()),
            balance: Some(balance),
            code: code::SUCCESS,
            ..Answer::default()
        });
    }
    let balance = state
        .ledger
        .session_balance(&call.provider.id, call.session)
        .await?;
    Ok(Answer {
        currency: Some(session.currency.code()),
        balance: Some(balance),
        code: code::SUCCESS,
        ..Answer::default()
    })
}
