//! Balance: `GET /v1/sessions/{sessionId}/balance` → `currency`, `balance`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{code, respond, Answer, Call};
use crate::error::Error;
use crate::startup::AppState;

#[utoipa::path(
    get,
    path = "/v1/sessions/{sessionId}/balance",
    tag = "provider",
    operation_id = "providerBalance",
    summary = "Balance",
    params(("sessionId" = uuid::Uuid, Path, description = "The game session (`croupier admin session open` or a launch)")),
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "1 success: `currency`, `balance`", body = crate::api::docs::schemas::ProviderAnswer),
        (status = 402, description = "3 session not found, expired or closed, or another provider's; 7 player blocked or provider disabled; 99 the casino refused (seamless)", body = crate::api::docs::schemas::ProviderAnswer),
        crate::api::docs::schemas::ProviderFailures,
    )
)]
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
