//! The operator (casino) transfer-wallet API: players, deposits, withdrawals, balance,
//! transaction check, history, game launch, block/unblock. Contract:
//! `reference/transfer-api.md`. Envelope `{"code", "message", "data"}`; HTTP 200 for code 0,
//! 202 for a refusal, 500 for an internal error.

pub mod balance;
pub mod create_player;
pub mod crypto;
pub mod history;
pub mod launch;
pub mod player_status;
mod transaction;
pub mod transfer;

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::api::Endpoint;
use crate::auth::{Counterparty, Role};
use crate::error::{AuthFailure, Error};
use crate::money::{Amount, Currency, MoneyError};
use crate::startup::AppState;

/// This part of the spec (`api::docs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_player::handle,
    transfer::deposit,
    transfer::withdraw,
    balance::handle,
    history::handle,
    player_status::handle,
    transaction::handle,
    launch::handle,
    crypto::deposit_address,
    crypto::withdraw,
    crypto::withdrawal
))]
pub struct Spec;

pub fn routes() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::POST, "/v1/player/create", |r| {
            r.to(create_player::handle)
        }),
        Endpoint::new(Method::POST, "/v1/player/wallet/deposit", |r| {
            r.to(transfer::deposit)
        }),
        Endpoint::new(Method::POST, "/v1/player/wallet/withdraw", |r| {
            r.to(transfer::withdraw)
        }),
        Endpoint::new(Method::GET, "/v1/player/wallet/balance", |r| {
            r.to(balance::handle)
        }),
        Endpoint::new(Method::GET, "/v1/player/history", |r| r.to(history::handle)),
        Endpoint::new(Method::POST, "/v1/player/status", |r| {
            r.to(player_status::handle)
        }),
        Endpoint::new(Method::GET, "/v1/transactions/{transaction_id}", |r| {
            r.to(transaction::handle)
        }),
        Endpoint::new(Method::POST, "/v1/game/launch", |r| r.to(launch::handle)),
        Endpoint::new(Method::POST, "/v1/player/crypto/deposit-address", |r| {
            r.to(crypto::deposit_address)
        }),
        Endpoint::new(Method::POST, "/v1/player/crypto/withdraw", |r| {
            r.to(crypto::withdraw)
        }),
        Endpoint::new(
            Method::GET,
            "/v1/player/crypto/withdrawals/{transaction_id}",
            |r| r.to(crypto::withdrawal),
        ),
    ]
}

/// The seed 002 code table.
pub mod code {
    pub const SUCCESS: u16 = 0;
    pub const ERROR: u16 = 1;
    pub const MISSING_DATA: u16 = 2;
    pub const INVALID_KEY: u16 = 3;
    pub const DATA_FORMAT: u16 = 4;
    pub const EXPIRED: u16 = 5;
    pub const INVALID_AGENT: u16 = 6;
    pub const BLOCKED_USER: u16 = 9;
    pub const DATA_VALUE: u16 = 100;
    pub const PERMISSION_DENIED: u16 = 101;
    pub const INSUFFICIENT_BALANCE: u16 = 102;
    pub const INTEGRATION_FAILURE: u16 = 103;
}

/// Maps an error to its operator code. Every refusal is HTTP 202; what may succeed if sent
/// again (internal errors, a provider that timed out or is unavailable) is 500 with code 1.
pub fn wire_code(e: &Error) -> (u16, StatusCode) {
    let refused = StatusCode::ACCEPTED;
    match e {
        Error::Auth(
            AuthFailure::MissingHeader(_)
            | AuthFailure::BadTimestamp
            | AuthFailure::BadRequestId
            | AuthFailure::BadSignFormat
            | AuthFailure::BadSignature,
        ) => (code::INVALID_KEY, refused),
        Error::Auth(AuthFailure::Expired | AuthFailure::Replayed) => (code::EXPIRED, refused),
        Error::Auth(AuthFailure::UnknownCounterparty) | Error::CounterpartyDisabled => {
            (code::INVALID_AGENT, refused)
        }
        Error::Auth(AuthFailure::WrongRole) | Error::SeamlessOperator => {
            (code::PERMISSION_DENIED, refused)
        }
        Error::MissingField(_) => (code::MISSING_DATA, refused),
        Error::BadFormat(_) | Error::Amount(MoneyError::NotANumber) => (code::DATA_FORMAT, refused),
        Error::BadValue(_)
        | Error::Amount(_)
        | Error::PlayerNotFound
        | Error::TransactionNotFound
        | Error::Conflict
        | Error::SessionNotFound
        | Error::BetNotFound
        | Error::BetClosed => (code::DATA_VALUE, refused),
        Error::PlayerBlocked => (code::BLOCKED_USER, refused),
        Error::InsufficientFunds => (code::INSUFFICIENT_BALANCE, refused),
        Error::Integration { .. } if !e.retryable() => (code::INTEGRATION_FAILURE, refused),
        Error::Integration { .. }
        | Error::Unavailable(_)
        | Error::Internal(_)
        | Error::NotConfirmed
        | Error::CasinoRefused(_) => (code::ERROR, StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The seed 002 message of each code.
fn code_message(code: u16) -> &'static str {
    match code {
        code::SUCCESS => "successful request",
        code::MISSING_DATA => "missing data",
        code::INVALID_KEY => "invalid key",
        code::DATA_FORMAT => "data format error",
        code::EXPIRED => "expired request",
        code::INVALID_AGENT => "invalid agent",
        code::BLOCKED_USER => "blocked user",
        code::DATA_VALUE => "data value error",
        code::PERMISSION_DENIED => "permission denied",
        code::INSUFFICIENT_BALANCE => "insufficient balance",
        code::INTEGRATION_FAILURE => "integration failure",
        _ => "error occurred",
    }
}

/// The answer envelope.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    code: u16,
    message: &'a str,
    data: Option<T>,
}

/// Turns a handler's outcome into the HTTP answer, logging refusals with the request id.
fn respond<T: Serialize>(req: &HttpRequest, outcome: Result<T, Error>) -> HttpResponse {
    let mut answered = code::SUCCESS;
    let json = match outcome {
        Ok(data) => serde_json::to_vec(&Envelope {
            code: code::SUCCESS,
            message: "successful request",
            data: Some(data),
        })
        .map(|json| (json, StatusCode::OK)),
        Err(e) => {
            let (code, status) = wire_code(&e);
            answered = code;
            let shown = crate::api::log_failure(req, &e);
            // 102 and 9 say all there is in their code's own words.
            let detail = (shown && !matches!(e, Error::InsufficientFunds | Error::PlayerBlocked))
                .then(|| e.to_string());
            let message = match detail {
                Some(detail) => format!("{}: {detail}", code_message(code)),
                None => code_message(code).to_string(),
            };
            serde_json::to_vec(&Envelope::<()> {
                code,
                message: &message,
                data: None,
            })
            .map(|json| (json, status))
        }
    };
    let response = match json {
        Ok((json, status)) => HttpResponse::build(status)
            .content_type("application/json")
            .body(json),
        Err(e) => {
            tracing::error!(error = %e, "encoding an operator answer failed");
            answered = code::ERROR;
            HttpResponse::InternalServerError()
                .content_type("application/json")
                .body(r#"{"code":1,"message":"internal error","data":null}"#)
        }
    };
    crate::telemetry::observe::coded(response, answered.into())
}

/// An authenticated operator call.
struct Call {
    operator: Arc<Counterparty>,
    body: Bytes,
}

impl Call {
    async fn accept(
        req: &HttpRequest,
        payload: web::Payload,
        state: &AppState,
    ) -> Result<Self, Error> {
        let (operator, body) =
            crate::api::authenticated(req, payload, state, Role::Operator).await?;
        Ok(Self { operator, body })
    }
}

/// A JSON body as `T` (whose fields are `Option<&RawValue>`, checked one by one with the
/// helpers below so that missing, ill-typed and bad values get their own codes).
fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Error> {
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(Error::bad_format("the body must be a JSON object"));
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            Error::bad_format(format!("invalid body: {e}"))
        } else {
            Error::bad_format("body is not valid JSON")
        }
    })
}

/// A query string as `T`.
fn query<'a, T: Deserialize<'a>>(query_string: &'a str) -> Result<T, Error> {
    serde_urlencoded::from_str(query_string)
        .map_err(|e| Error::bad_format(format!("invalid query: {e}")))
}

/// A field that must be present and not null.
fn required<'a>(value: Option<&'a RawValue>, field: &str) -> Result<&'a RawValue, Error> {
    match value {
        Some(raw) if raw.get() != "null" => Ok(raw),
        _ => Err(Error::MissingField(field.to_string())),
    }
}

/// An id given in a query string or a path: the same rules as in a body (`id`).
fn query_id(value: Option<&str>, field: &str) -> Result<String, Error> {
    match value {
        Some(v) if !v.is_empty() => checked_id(v.to_string(), field),
        _ => Err(Error::MissingField(field.to_string())),
    }
}

/// An id: a JSON string of 1 to 128 printable characters.
fn id(value: Option<&RawValue>, field: &str) -> Result<String, Error> {
    checked_id(string(required(value, field)?, field)?, field)
}

/// 1 to 128 printable characters: no control character (a NUL byte, which PostgreSQL
/// cannot store in text, included).
fn checked_id(text: String, field: &str) -> Result<String, Error> {
    if text.is_empty() || text.len() > 128 || text.chars().any(char::is_control) {
        return Err(Error::bad_value(format!(
            "{field} must be 1 to 128 printable characters"
        )));
    }
    Ok(text)
}

fn string(raw: &RawValue, field: &str) -> Result<String, Error> {
    serde_json::from_str(raw.get())
        .map_err(|_| Error::bad_format(format!("{field} must be a string")))
}

fn currency(value: Option<&RawValue>) -> Result<Currency, Error> {
    let code = string(required(value, "currency")?, "currency")?;
    Ok(Currency::parse(&code)?)
}

fn currency_text(code: &str) -> Result<Currency, Error> {
    Ok(Currency::parse(code)?)
}

fn amount(value: Option<&RawValue>, currency: Currency) -> Result<Amount, Error> {
    Ok(Amount::parse_json(
        required(value, "amount")?.get(),
        currency,
    )?)
}
