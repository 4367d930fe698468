//! Balance: `GET /v1/player/wallet/balance?playerExternalId=…&currency=…` → balance, the
//! withdrawable part, currency. `currency` may be left out when the player has one wallet.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use super::{currency_text, query, query_id, respond, Call};
use crate::error::Error;
use crate::money::Currency;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Query {
    player_external_id: Option<String>,
    currency: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    player_external_id: String,
    player_id: Uuid,
    currency: &'static str,
    #[serde(serialize_with = "crate::api::decimal")]
    balance: Decimal,
    /// The part of the balance that may be withdrawn.
    #[serde(serialize_with = "crate::api::decimal")]
    withdrawable: Decimal,
    blocked: bool,
}

/// Decodes a Balance query string: the player's id and the currency, if given.
pub fn decode(query_string: &str) -> Result<(String, Option<Currency>), Error> {
    let query: Query = query(query_string)?;
    let external_id = query_id(query.player_external_id.as_deref(), "playerExternalId")?;
    let currency = query.currency.as_deref().map(currency_text).transpose()?;
    Ok((external_id, currency))
}

#[utoipa::path(
    get,
    path = "/v1/player/wallet/balance",
    tag = "operator",
    operation_id = "playerBalance",
    summary = "Balance",
    params(("playerExternalId" = String, Query, description = "The casino's player id"), ("currency" = Option<String>, Query, description = "Optional when the player has one wallet")),
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::BalanceData>),
        (status = 202, description = "100 data value error (unknown player or currency); 2 also when `currency` is left out for a player with several wallets; 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
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
    let (external_id, currency) = decode(req.query_string())?;
    let wallet = state
        .players
        .wallet(&call.operator.id, &external_id, currency)
        .await?;
    if let Some(settings) = state.seamless.settings(&call.operator.id).await? {
        // Seamless: the casino's own balance, all of it its to pay out.
        let balance = state.seamless.balance_of(&settings, &external_id).await?;
        return Ok(Answer {
            player_external_id: external_id,
            player_id: wallet.player_id,
            currency: wallet.currency.code(),
            balance,
            withdrawable: balance,
            blocked: wallet.blocked,
        });
    }
    Ok(Answer {
        player_external_id: external_id,
        player_id: wallet.player_id,
        currency: wallet.currency.code(),
        balance: wallet.balance,
        withdrawable: wallet.withdrawable(),
        blocked: wallet.blocked,
    })
}
