//! History: `GET /v1/player/history?playerExternalId=…&type=ALL|END|ING&from=…&to=…&limit=…&cursor=…`
//! → the player's bets grouped by game round, newest round first, cursor-paginated
//! (`limit` 1 to 100, default 20; `nextCursor` is null on the last page). `from`/`to` bound
//! the round's start, as epoch milliseconds or RFC 3339 (`to` exclusive).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{query, query_id, respond, Call};
use crate::error::Error;
use crate::players::{HistoryQuery, RoundFilter};
use crate::startup::AppState;

const DEFAULT_PAGE: i64 = 20;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Query {
    player_external_id: Option<String>,
    r#type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    player_external_id: String,
    rounds: Vec<Box<RawValue>>,
    next_cursor: Option<String>,
}

/// A History query string, decoded and checked.
#[derive(Debug)]
pub struct HistoryRequest {
    pub external_id: String,
    pub filter: RoundFilter,
    pub limit: i64,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
}

impl HistoryRequest {
    /// What to read, as the players' history takes it.
    pub fn query(&self) -> HistoryQuery<'_> {
        HistoryQuery {
            filter: self.filter,
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            limit: self.limit,
            cursor: self.cursor.as_deref(),
        }
    }
}

/// Decodes a History query string.
pub fn decode(query_string: &str) -> Result<HistoryRequest, Error> {
    let query: Query = query(query_string)?;
    let external_id = query_id(query.player_external_id.as_deref(), "playerExternalId")?;
    let filter = match query.r#type.as_deref().unwrap_or("ALL") {
        "ALL" => RoundFilter::All,
        "END" => RoundFilter::Ended,
        "ING" => RoundFilter::Ongoing,
        _ => return Err(Error::bad_value("type must be ALL, END or ING")),
    };
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=crate::players::MAX_PAGE).contains(n))
            .ok_or_else(|| Error::bad_value("limit must be 1 to 100"))?,
    };
    let request = HistoryRequest {
        external_id,
        filter,
        limit,
        from: query.from,
        to: query.to,
        cursor: query.cursor,
    };
    request.query().check()?;
    Ok(request)
}

#[utoipa::path(
    get,
    path = "/v1/player/history",
    tag = "operator",
    operation_id = "history",
    summary = "History (rounds, newest first)",
    params(("playerExternalId" = String, Query, description = "The casino's player id"), ("type" = Option<String>, Query, description = "ALL (default), END or ING"), ("from" = Option<String>, Query, description = "Inclusive bound on the round's start: epoch milliseconds or RFC 3339"), ("to" = Option<String>, Query, description = "Exclusive bound"), ("limit" = Option<String>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "The previous page's nextCursor")),
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::HistoryData>),
        (status = 202, description = "100 data value error (unknown player, bad type, limit, cursor, from or to); 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
    )
)]
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, history(&req, payload, &state).await)
}

async fn history(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, Error> {
    let call = Call::accept(req, payload, state).await?;
    let request = decode(req.query_string())?;
    let page = state
        .players
        .history(&call.operator.id, &request.external_id, &request.query())
        .await?;
    let rounds = page
        .rounds
        .into_iter()
        .map(RawValue::from_string)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Internal(e.into()))?;
    Ok(Answer {
        player_external_id: request.external_id,
        rounds,
        next_cursor: page.next_cursor,
    })
}
