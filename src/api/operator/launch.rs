//! Launch: `POST /v1/game/launch`
//! `{playerExternalId, currency, providerId, gameId, language?, returnUrl?, mode?}` → opens a
//! game session for the player on the provider's game and answers `sessionId` and the game
//! URL, built from the provider's launch URL template. A blocked player gets 9, a player with
//! a zero balance 102, a provider with no launch URL set up 103.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{currency, id, json, respond, string, Call};
use crate::error::Error;
use crate::money::Currency;
use crate::players::{launch_url, LaunchFields};
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(borrow, default)]
    player_external_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    currency: Option<&'a RawValue>,
    #[serde(borrow, default)]
    provider_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    game_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    language: Option<&'a RawValue>,
    #[serde(borrow, default)]
    return_url: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mode: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    session_id: Uuid,
    url: String,
    expires_at: String,
}

#[utoipa::path(
    post,
    path = "/v1/game/launch",
    tag = "operator",
    operation_id = "launch",
    summary = "Game launch",
    request_body = crate::api::docs::schemas::LaunchRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::LaunchData>),
        (status = 202, description = "9 blocked user; 100 data value error (unknown player, unknown or disabled provider, bad returnUrl); 102 zero balance; 103 integration failure (the provider has no launch URL); 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
    )
)]
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, launch(&req, payload, &state).await)
}

/// An optional short string field.
fn optional(value: Option<&RawValue>, field: &str, default: &str) -> Result<String, Error> {
    match value {
        Some(raw) if raw.get() != "null" => {
            let text = string(raw, field)?;
            if text.len() > 1024 || text.chars().any(char::is_control) {
                return Err(Error::bad_value(format!(
                    "{field} is too long or not printable"
                )));
            }
            Ok(text)
        }
        _ => Ok(default.to_string()),
    }
}

/// A Launch body, decoded and checked.
#[derive(Debug)]
pub struct LaunchRequest {
    pub external_id: String,
    pub currency: Currency,
    pub provider: String,
    pub game: String,
    pub language: String,
    pub mode: String,
    /// Empty, or an http(s) URL.
    pub return_url: String,
}

/// Decodes a Launch body.
pub fn decode(body: &[u8]) -> Result<LaunchRequest, Error> {
    let body: Body = json(body)?;
    let request = LaunchRequest {
        external_id: id(body.player_external_id, "playerExternalId")?,
        currency: currency(body.currency)?,
        provider: id(body.provider_id, "providerId")?,
        game: id(body.game_id, "gameId")?,
        language: optional(body.language, "language", "en")?,
        mode: optional(body.mode, "mode", "real")?,
        return_url: optional(body.return_url, "returnUrl", "")?,
    };
    let return_url_ok = request.return_url.is_empty()
        || request.return_url.starts_with("https://")
        || request.return_url.starts_with("http://");
    if !return_url_ok {
        return Err(Error::bad_value("returnUrl must be an http(s) URL"));
    }
    Ok(request)
}

async fn launch(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Error> {
    let call = Call::accept(req, payload, state).await?;
    let LaunchRequest {
        external_id,
        currency,
        provider,
        game,
        language,
        mode,
        return_url,
    } = decode(&call.body)?;
    // A player with nothing to bet cannot enter a game.
    let wallet = state
        .players
        .wallet(&call.operator.id, &external_id, Some(currency))
        .await?;
    // A seamless player's money is in the casino's wallet: the casino says.
    let balance = match state.seamless.settings(&call.operator.id).await? {
        Some(settings) => state.seamless.balance_of(&settings, &external_id).await?,
        None => wallet.balance,
    };
    if balance.is_zero() {
        return Err(Error::InsufficientFunds);
    }
    let session = state
        .players
        .open_session(
            &provider,
            &call.operator.id,
            &external_id,
            currency,
            &game,
            state.session_ttl_minutes,
        )
        .await?;
    let template = session
        .launch_url_template
        .as_deref()
        .ok_or_else(|| Error::not_configured("the provider has no launch URL set up"))?;
    let url = launch_url(
        template,
        &LaunchFields {
            session: session.id,
            player_id: session.player_id,
            game: &game,
            language: &language,
            currency,
            mode: &mode,
            return_url: &return_url,
        },
    );
    Ok(Answer {
        session_id: session.id.0,
        url,
        expires_at: session.expires_at,
    })
}
