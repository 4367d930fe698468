//! Block / unblock: `POST /v1/player/status` `{playerExternalId, blocked}`. A blocked player
//! gets 9 on deposits and launches here and 7 on the bet API; withdrawals, balance and
//! history stay open so the operator can settle the account.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{id, json, required, respond, Call};
use crate::error::Error;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(borrow, default)]
    player_external_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    blocked: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    player_external_id: String,
    blocked: bool,
}

/// Decodes a block / unblock body: the player's id and whether it is blocked.
pub fn decode(body: &[u8]) -> Result<(String, bool), Error> {
    let body: Body = json(body)?;
    let external_id = id(body.player_external_id, "playerExternalId")?;
    let blocked = match required(body.blocked, "blocked")?.get() {
        "true" => true,
        "false" => false,
        _ => return Err(Error::bad_format("blocked must be true or false")),
    };
    Ok((external_id, blocked))
}

#[utoipa::path(
    post,
    path = "/v1/player/status",
    tag = "operator",
    operation_id = "playerStatus",
    summary = "Block / unblock",
    request_body = crate::api::docs::schemas::PlayerStatusRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::PlayerStatusData>),
        (status = 202, description = "100 data value error (unknown player); 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
    )
)]
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, set_status(&req, payload, &state).await)
}

async fn set_status(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Error> {
    let call = Call::accept(req, payload, state).await?;
    let (external_id, blocked) = decode(&call.body)?;
    state
        .players
        .set_blocked(&call.operator.id, &external_id, blocked)
        .await?;
    Ok(Answer {
        player_external_id: external_id,
        blocked,
    })
}
