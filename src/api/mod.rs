//! The HTTP edge: wire types and handlers, one module per audience.

pub mod casino;
pub mod crypto;
pub mod docs;
pub mod operator;
pub mod ops;
pub mod provider;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{web, HttpMessage, HttpRequest, Route};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::auth::{Counterparty, Role};
use crate::error::{AuthFailure, Error};
use crate::startup::AppState;

/// Largest request body accepted, in bytes. Every call we take fits in well under 1 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// One route: its method, its full path (an actix pattern) and the handler it goes to. Each
/// audience lists its routes as these, and `configure` registers exactly that list, so the
/// published spec can be checked against what is served (`docs`).
pub struct Endpoint {
    pub method: Method,
    pub path: String,
    handler: fn(Route) -> Route,
}

impl Endpoint {
    pub fn new(method: Method, path: impl Into<String>, handler: fn(Route) -> Route) -> Self {
        Self {
            method,
            path: path.into(),
            handler,
        }
    }

    /// The route to register: the method guard, then the handler.
    pub fn route(&self) -> Route {
        (self.handler)(web::route().method(self.method.clone()))
    }
}

/// Every route of the public listener.
pub fn routes() -> Vec<Endpoint> {
    let mut all = provider::routes();
    all.extend(operator::routes());
    all.extend(crypto::routes());
    all.extend(casino::routes());
    all.extend(docs::routes());
    all.extend(ops::routes());
    all
}

/// Every route of the private listener (`CROUPIER_APPROVER_LISTEN`).
pub fn private_routes() -> Vec<Endpoint> {
    let mut all = crypto::private_routes();
    all.extend(ops::private_routes());
    all
}

/// Registers every route of the public listener.
pub fn configure(cfg: &mut web::ServiceConfig) {
    provider::configure(cfg);
    register(cfg, operator::routes());
    register(cfg, crypto::routes());
    register(cfg, casino::routes());
    register(cfg, docs::routes());
    register(cfg, ops::routes());
}

/// Registers every route of the private listener.
pub fn configure_private(cfg: &mut web::ServiceConfig) {
    register(cfg, private_routes());
}

fn register(cfg: &mut web::ServiceConfig, endpoints: Vec<Endpoint>) {
    for endpoint in endpoints {
        cfg.route(&endpoint.path, endpoint.route());
    }
}

/// Any other path or method: 404 with a JSON body naming the problem.
pub async fn no_such_endpoint(req: HttpRequest) -> actix_web::HttpResponse {
    actix_web::HttpResponse::NotFound()
        .content_type("application/json")
        .body(
            serde_json::json!({
                "message": format!("no such endpoint: {} {}", req.method(), req.path())
            })
            .to_string(),
        )
}

/// Logs a refused or failed call with its request id, and says whether the error's text may
/// be shown to the caller: which authentication check failed, and what broke inside, are for
/// our log only.
pub fn log_failure(req: &HttpRequest, e: &Error) -> bool {
    let request_id = req
        .headers()
        .get(crate::auth::HEADER_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let path = req.path();
    match e {
        Error::Internal(source) | Error::Unavailable(source) => {
            tracing::error!(request_id, path, error = %e, source = %format!("{source:#}"), "call failed");
            false
        }
        Error::Auth(
            AuthFailure::UnknownCounterparty | AuthFailure::BadSignature | AuthFailure::WrongRole,
        ) => {
            tracing::warn!(request_id, path, error = %e, "call refused");
            false
        }
        _ => {
            tracing::debug!(request_id, path, error = %e, "call refused");
            true
        }
    }
}

/// Reads the body and authenticates the caller as `role` over its raw bytes. Nothing is
/// parsed before the signature is verified.
pub async fn authenticated(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    role: Role,
) -> Result<(Arc<Counterparty>, Bytes), Error> {
    let (caller, body, request_id) = authenticated_unclaimed(req, payload, state, role).await?;
    state.auth.claim(&caller.id, request_id).await?;
    Ok((caller, body))
}

/// `authenticated`, with the request id left for the caller to claim (see
/// `Authenticator::authenticate_unclaimed`).
pub async fn authenticated_unclaimed(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    role: Role,
) -> Result<(Arc<Counterparty>, Bytes, uuid::Uuid), Error> {
    let body = read_body(req, payload).await?;
    let signed = (req.method() != Method::GET).then_some(&body[..]);
    let started = std::time::Instant::now();
    let (caller, request_id) = state
        .auth
        .authenticate_unclaimed(req.headers(), signed)
        .await?;
    if role == Role::Provider {
        crate::telemetry::bet_stage("signature", started.elapsed());
    }
    // For the request's span and access-log line (`telemetry::observe`).
    req.extensions_mut()
        .insert(crate::telemetry::observe::Caller(caller.clone()));
    if caller.role != role {
        return Err(AuthFailure::WrongRole.into());
    }
    if !caller.active {
        return Err(Error::CounterpartyDisabled);
    }
    Ok((caller, body, request_id))
}

/// An id sent as a JSON string or a non-negative integer (`"4178696881"` or `4178696881`).
pub fn id_text(raw: &RawValue, field: &str) -> Result<String, Error> {
    let text = raw.get();
    if text.starts_with('"') {
        return serde_json::from_str(text)
            .map_err(|_| Error::bad_format(format!("{field} is not a string")));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(text.to_string());
    }
    Err(Error::bad_format(format!("{field} must be a string")))
}

/// Serializes a decimal as a JSON number, exactly (serde_json alone would go through f64).
pub fn decimal<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    let raw = RawValue::from_string(crate::money::json_number(*value))
        .map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

/// `decimal` for an optional field.
pub fn decimal_or_none<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(d) => decimal(d, s),
        None => s.serialize_none(),
    }
}

/// Reads the raw body (the signature covers its exact bytes), refusing more than
/// `MAX_BODY_BYTES` without reading further.
pub async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Bytes, Error> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(Error::bad_format("body larger than 16 KiB"));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| Error::bad_format(format!("unreadable body: {e}")))?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(Error::bad_format("body larger than 16 KiB"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    // A client that sends its body slowly, or not at all, does not hold a connection and a
    // worker's attention for longer than this.
    tokio::time::timeout(BODY_DEADLINE, read)
        .await
        .map_err(|_| Error::bad_format("body not received within 5 s"))??;
    Ok(body.freeze())
}

/// How long a request body may take to arrive, whole.
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);
