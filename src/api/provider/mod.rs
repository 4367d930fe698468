//! The Betcore-style provider bet API: Balance, PayIn, PayOut, PayInOut, Refund on a game
//! session. Wire names (camelCase, `_responseCode`) follow `reference/betcore.md` exactly.

mod balance;
pub mod pay_in;
pub mod pay_in_out;
pub mod pay_out;
pub mod refund;

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::api::Endpoint;
use crate::auth::{Counterparty, Role};
use crate::error::Error;
use crate::ledger::{BetId, BetReceipt, Caller, RoundId, Session, SessionId};
use crate::money::{Amount, Currency};
use crate::startup::AppState;

/// This part of the spec (`api::docs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    balance::handle,
    pay_in::handle,
    pay_out::handle,
    pay_in_out::handle,
    refund::handle
))]
pub struct Spec;

/// Every provider call is under its game session.
const SCOPE: &str = "/v1/sessions/{session_id}";

pub fn routes() -> Vec<Endpoint> {
    let at = |suffix: &str| format!("{SCOPE}{suffix}");
    vec![
        Endpoint::new(Method::GET, at("/balance"), |r| r.to(balance::handle)),
        Endpoint::new(Method::POST, at("/bets/pay-in"), |r| r.to(pay_in::handle)),
        Endpoint::new(Method::POST, at("/bets/pay-out"), |r| r.to(pay_out::handle)),
        Endpoint::new(Method::POST, at("/bets/pay-in-out"), |r| {
            r.to(pay_in_out::handle)
        }),
        Endpoint::new(Method::POST, at("/bets/refund"), |r| r.to(refund::handle)),
    ]
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // One scope, so that a call matches one dynamic pattern and then a static suffix.
    let mut scope = web::scope(SCOPE).default_service(web::to(crate::api::no_such_endpoint));
    for endpoint in routes() {
        let suffix = endpoint.path.strip_prefix(SCOPE).unwrap_or(&endpoint.path);
        scope = scope.route(suffix, endpoint.route());
    }
    cfg.service(scope);
}

/// The `_responseCode` table (`reference/betcore.md`).
pub mod code {
    pub const SUCCESS: u16 = 1;
    pub const INSUFFICIENT_FUNDS: u16 = 2;
    pub const SESSION_NOT_FOUND: u16 = 3;
    pub const BET_NOT_FOUND: u16 = 4;
    pub const MALFORMED: u16 = 5;
    pub const BET_CLOSED: u16 = 6;
    pub const BLOCKED: u16 = 7;
    pub const UNAUTHORIZED: u16 = 8;
    pub const CONFLICT: u16 = 9;
    pub const INTERNAL: u16 = 99;
    pub const ALREADY_PROCESSED: u16 = 104;
}

/// Maps an error to its `_responseCode` and HTTP status: every rejection is 402 as on
/// Betcore's pages, except authentication (401) and internal errors (99: 503 for what may
/// succeed if sent again, such as an unreachable database, 500 otherwise).
pub fn wire_code(e: &Error) -> (u16, StatusCode) {
    match e {
        Error::Auth(_) => (code::UNAUTHORIZED, StatusCode::UNAUTHORIZED),
        Error::InsufficientFunds => (code::INSUFFICIENT_FUNDS, StatusCode::PAYMENT_REQUIRED),
        Error::SessionNotFound | Error::PlayerNotFound | Error::TransactionNotFound => {
            (code::SESSION_NOT_FOUND, StatusCode::PAYMENT_REQUIRED)
        }
        Error::BetNotFound => (code::BET_NOT_FOUND, StatusCode::PAYMENT_REQUIRED),
        Error::MissingField(_) | Error::BadFormat(_) | Error::BadValue(_) | Error::Amount(_) => {
            (code::MALFORMED, StatusCode::PAYMENT_REQUIRED)
        }
        Error::BetClosed => (code::BET_CLOSED, StatusCode::PAYMENT_REQUIRED),
        Error::PlayerBlocked | Error::CounterpartyDisabled => {
            (code::BLOCKED, StatusCode::PAYMENT_REQUIRED)
        }
        Error::Conflict => (code::CONFLICT, StatusCode::PAYMENT_REQUIRED),
        // A bug (a bet call never reaches transfer-only code): 500, although a retry is safe.
        Error::Internal(_) | Error::SeamlessOperator => {
            (code::INTERNAL, StatusCode::INTERNAL_SERVER_ERROR)
        }
        Error::Unavailable(_) | Error::NotConfirmed => {
            (code::INTERNAL, StatusCode::SERVICE_UNAVAILABLE)
        }
        Error::CasinoRefused(_) => (code::INTERNAL, StatusCode::PAYMENT_REQUIRED),
        Error::Integration { .. } if e.retryable() => {
            (code::INTERNAL, StatusCode::SERVICE_UNAVAILABLE)
        }
        Error::Integration { .. } => (code::INTERNAL, StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// An authenticated provider call on a session.
///
/// Its request id is not claimed in the database yet: a bet in transfer mode claims it in its
/// own transaction (`Call::caller`), every other call with `Call::claim` before it acts.
struct Call {
    provider: Arc<Counterparty>,
    session: SessionId,
    body: Bytes,
    request_id: uuid::Uuid,
}

impl Call {
    async fn accept(
        req: &HttpRequest,
        payload: web::Payload,
        state: &AppState,
    ) -> Result<Self, Error> {
        let (provider, body, request_id) =
            crate::api::authenticated_unclaimed(req, payload, state, Role::Provider).await?;
        let session = SessionId::parse(req.match_info().get("session_id").unwrap_or_default())?;
        Ok(Self {
            provider,
            session,
            body,
            request_id,
        })
    }

    /// Claims the request id (refused as a replay if any server has claimed it).
    async fn claim(&self, state: &AppState) -> Result<(), Error> {
        state.auth.claim(&self.provider.id, self.request_id).await
    }

    /// Who makes a transfer-mode bet, with the request id its transaction claims.
    fn caller(&self) -> Caller<'_> {
        Caller {
            provider_id: &self.provider.id,
            request_id: Some(self.request_id),
        }
    }

    /// The session, cached: its currency and the player it routes by.
    async fn resolve(&self, state: &AppState) -> Result<Session, Error> {
        let started = std::time::Instant::now();
        let session = state.ledger.session(&self.provider.id, self.session).await;
        crate::telemetry::bet_stage("session", started.elapsed());
        session
    }

    fn amount(&self, raw: &RawValue, currency: Currency) -> Result<Amount, Error> {
        Ok(Amount::parse_json(raw.get(), currency)?)
    }
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::bad_format(json_problem(&e)))
}

/// A short description of a JSON problem, without echoing the body.
fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => format!("invalid field: {e}"),
        _ => "body is not valid JSON".to_string(),
    }
}

use crate::api::id_text;

/// A body must not carry another call's amount: the signature covers the body and not the
/// path, so a captured PayIn (`betAmount`) sent to `/refund`, or a PayInOut sent to
/// `/pay-in` or `/pay-out`, is refused instead of being taken as the other call.
fn not_carried(field: Option<&RawValue>, name: &str, call: &str) -> Result<(), Error> {
    match field {
        Some(_) => Err(Error::bad_value(format!("a {call} carries no {name}"))),
        None => Ok(()),
    }
}

fn bet_id(raw: &RawValue) -> Result<BetId, Error> {
    BetId::parse(id_text(raw, "betId")?)
}

fn round_id(raw: Option<&RawValue>) -> Result<Option<RoundId>, Error> {
    raw.map(|r| RoundId::parse(id_text(r, "gameRoundId")?))
        .transpose()
}

/// The JSON answer. Transaction ids are strings, amounts JSON numbers.
#[derive(Debug, Default, Serialize)]
pub struct Answer {
    #[serde(rename = "betTransactionId", skip_serializing_if = "Option::is_none")]
    bet_tx: Option<Uuid>,
    #[serde(rename = "winTransactionId", skip_serializing_if = "Option::is_none")]
    win_tx: Option<Uuid>,
    #[serde(
        rename = "refundTransactionId",
        skip_serializing_if = "Option::is_none"
    )]
    refund_tx: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'static str>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::api::decimal_or_none"
    )]
    balance: Option<Decimal>,
    #[serde(rename = "_responseCode")]
    code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl Answer {
    /// PayInOut's answer: both transaction ids and the balance.
    pub fn pay_in_out(r: &BetReceipt) -> Self {
        Self {
            bet_tx: r.bet_tx,
            win_tx: r.win_tx,
            ..Self::receipt(r)
        }
    }

    /// Success (1) or already processed (104), with the balance after the call.
    fn receipt(r: &BetReceipt) -> Self {
        Self {
            code: if r.replayed {
                code::ALREADY_PROCESSED
            } else {
                code::SUCCESS
            },
            balance: Some(r.balance),
            ..Self::default()
        }
    }
}

/// Turns a handler's outcome into the HTTP answer, logging refusals with the request id.
fn respond(req: &HttpRequest, outcome: Result<Answer, Error>) -> HttpResponse {
    let (answer, status) = match outcome {
        Ok(answer) => (answer, StatusCode::OK),
        Err(e) => {
            let (code, status) = wire_code(&e);
            let message = if crate::api::log_failure(req, &e) {
                e.to_string()
            } else if matches!(e, Error::Auth(_)) {
                "authentication failed".to_string()
            } else {
                e.to_string() // "internal error" or "database unavailable": no details
            };
            let answer = Answer {
                code,
                message: Some(message),
                ..Answer::default()
            };
            (answer, status)
        }
    };
    let code = answer.code;
    let response = match serde_json::to_vec(&answer) {
        Ok(json) => HttpResponse::build(status)
            .content_type("application/json")
            .body(json),
        Err(e) => {
            tracing::error!(error = %e, "encoding a provider answer failed");
            HttpResponse::InternalServerError()
                .content_type("application/json")
                .body(r#"{"_responseCode":99,"message":"internal error"}"#)
        }
    };
    crate::telemetry::observe::coded(response, code.into())
}
