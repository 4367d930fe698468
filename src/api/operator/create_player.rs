//! Account Init: `POST /v1/player/create` `{playerExternalId, currency}`. Idempotent: a second
//! call for the same player answers the same player.

use actix_web::{web, HttpRequest, HttpResponse};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{currency, id, json, respond, Call};
use crate::error::Error;
use crate::money::Currency;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(borrow, default)]
    player_external_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    currency: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlayerAnswer {
    player_external_id: String,
    player_id: Uuid,
    currency: &'static str,
    #[serde(serialize_with = "crate::api::decimal")]
    balance: Decimal,
    #[serde(serialize_with = "crate::api::decimal")]
    withdrawable: Decimal,
    blocked: bool,
    created: bool,
}

/// Decodes an Account Init body: the player's id and the wallet's currency.
pub fn decode(body: &[u8]) -> Result<(String, Currency), Error> {
    let body: Body = json(body)?;
    Ok((
        id(body.player_external_id, "playerExternalId")?,
        currency(body.currency)?,
    ))
}

#[utoipa::path(
    post,
    path = "/v1/player/create",
    tag = "operator",
    operation_id = "createPlayer",
    summary = "Account Init (idempotent)",
    request_body = crate::api::docs::schemas::CreatePlayerRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::PlayerData>),
        (status = 202, description = "100 data value error (bad id, unknown currency); 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
    )
)]
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, create(&req, payload, &state).await)
}

async fn create(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<PlayerAnswer, Error> {
    let call = Call::accept(req, payload, state).await?;
    let (external_id, currency) = decode(&call.body)?;
    let wallet = state
        .players
        .create(&call.operator.id, &external_id, currency)
        .await?;
    Ok(PlayerAnswer {
        player_external_id: external_id,
        player_id: wallet.player_id,
        currency: wallet.currency.code(),
        balance: wallet.balance,
        withdrawable: wallet.withdrawable(),
        blocked: wallet.blocked,
        created: wallet.created,
    })
}
