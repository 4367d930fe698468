//! What a seamless casino calls (contract section 2), under `/mis-api/api/v2/`:
//!
//! - `GET auth/jwks` (also `/.well-known/jwks.json`): the keys croupier signs with;
//! - `POST auth/verify`: checks a JWT croupier issued (rate-limited);
//! - `POST auth/token`: a bearer token for the operator's credentials;
//! - `POST payments/accept`: the casino's final verdict on a movement (see `seamless::accept`).
//!
//! Every answer is the Betcore envelope `{"ErrorCode", "Message", "Value"}`; the HTTP status
//! is 200 on success and follows the code otherwise (README, "Seamless mode").

use std::net::IpAddr;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Endpoint;
use crate::error::{AuthFailure, Error};
use crate::startup::AppState;

/// The casino-side paths, under Betcore's prefix.
pub const PREFIX: &str = "/mis-api/api/v2";

/// This part of the spec (`api::docs`). `/.well-known/jwks.json` is added there, as the
/// JWKS's second path.
#[derive(utoipa::OpenApi)]
#[openapi(paths(jwks, verify, token, accept))]
pub struct Spec;

pub fn routes() -> Vec<Endpoint> {
    let at = |suffix: &str| format!("{PREFIX}{suffix}");
    vec![
        Endpoint::new(Method::GET, at("/auth/jwks"), |r| r.to(jwks)),
        Endpoint::new(Method::GET, "/.well-known/jwks.json", |r| r.to(jwks)),
        Endpoint::new(Method::POST, at("/auth/verify"), |r| r.to(verify)),
        Endpoint::new(Method::POST, at("/auth/token"), |r| r.to(token)),
        Endpoint::new(Method::POST, at("/payments/accept"), |r| r.to(accept)),
    ]
}

/// Codes of these endpoints (besides the success 200).
pub mod code {
    pub const SUCCESS: i64 = 200;
    /// Not JSON, not a JWT, a field missing or of the wrong type.
    pub const BAD_REQUEST: i64 = 400;
    /// Wrong credentials, a bad or expired bearer token, a signature that does not verify.
    pub const UNAUTHORIZED: i64 = 401;
    /// An operator that is disabled or not in seamless mode.
    pub const FORBIDDEN: i64 = 403;
    /// A `kid` croupier does not publish.
    pub const UNKNOWN_KEY: i64 = 404;
    /// A JWT outside its `nbf`..`exp` window.
    pub const EXPIRED: i64 = 410;
    pub const TOO_MANY_REQUESTS: i64 = 429;
    /// croupier could not serve the call now; try again.
    pub const UNAVAILABLE: i64 = 503;
}

/// The envelope, with the HTTP status that goes with `code`.
fn envelope(code: i64, message: &str, value: Option<Value>) -> HttpResponse {
    let status = match code {
        code::SUCCESS => StatusCode::OK,
        other => u16::try_from(other)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::BAD_REQUEST),
    };
    let mut body = json!({ "ErrorCode": code, "Message": message });
    if let Some(value) = value {
        body["Value"] = value;
    }
    let response = HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string());
    crate::telemetry::observe::coded(response, code)
}

fn success(value: Value) -> HttpResponse {
    envelope(code::SUCCESS, "Success", Some(value))
}

/// An error as this API answers it.
fn failure(req: &HttpRequest, e: &Error) -> HttpResponse {
    let (code, message) = match e {
        Error::BadFormat(_) | Error::MissingField(_) | Error::BadValue(_) => {
            (code::BAD_REQUEST, e.to_string())
        }
        Error::Auth(AuthFailure::WrongRole) => (
            code::FORBIDDEN,
            "the operator is not in seamless mode".to_string(),
        ),
        Error::CounterpartyDisabled => (code::FORBIDDEN, e.to_string()),
        Error::Auth(_) => (code::UNAUTHORIZED, "unauthorized".to_string()),
        _ => {
            crate::api::log_failure(req, e);
            (code::UNAVAILABLE, "try again".to_string())
        }
    };
    envelope(code, &message, None)
}

#[utoipa::path(
    get,
    path = "/mis-api/api/v2/auth/jwks",
    tag = "seamless",
    operation_id = "jwks",
    summary = "The keys croupier signs casino calls with (Cache-Control: public, max-age=3600)",
    responses(
        (status = 200, description = "The JWKS; fetch again on an unknown kid", body = crate::api::docs::casino_crypto::Jwks),
        (status = 503, description = "503 try again", body = crate::api::docs::casino_crypto::CasinoEnvelope),
    )
)]
async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match state.seamless.keys.jwks().await {
        Ok(document) => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header(("Cache-Control", "public, max-age=3600"))
            .body(document.to_string()),
        Err(e) => failure(&req, &e),
    }
}

/// Reads a body that is one JSON string (a JWT, as the casino got it).
fn jwt_of(body: &[u8]) -> Result<String, Error> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::String(jwt)) => Ok(jwt),
        _ => Err(Error::bad_format("the body must be a JWT as a JSON string")),
    }
}

#[utoipa::path(
    post,
    path = "/mis-api/api/v2/auth/verify",
    tag = "seamless",
    operation_id = "verifyJwt",
    summary = "Checks a JWT croupier issued",
    request_body(content = String, description = "The JWT as a JSON string"),
    responses(
        (status = 200, description = "200: `Value` holds the claims", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 400, description = "400 not a JWT, not RS256, not a JSON string", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 401, description = "401 the signature does not verify, or another issuer", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 404, description = "404 unknown kid, or none", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 410, description = "410 expired or not valid yet", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 429, description = "429 more than 20 a second from one address", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 503, description = "503 try again", body = crate::api::docs::casino_crypto::CasinoEnvelope),
    )
)]
async fn verify(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    if !state.seamless.verify_allowed(peer) {
        return envelope(code::TOO_MANY_REQUESTS, "too many requests", None);
    }
    let jwt = match crate::api::read_body(&req, payload)
        .await
        .and_then(|b| jwt_of(&b))
    {
        Ok(jwt) => jwt,
        Err(e) => return failure(&req, &e),
    };
    let Ok(header) = jsonwebtoken::decode_header(&jwt) else {
        return envelope(code::BAD_REQUEST, "not a JWT", None);
    };
    if header.alg != Algorithm::RS256 {
        return envelope(code::BAD_REQUEST, "not an RS256 JWT", None);
    }
    let Some(kid) = header.kid else {
        return envelope(code::UNKNOWN_KEY, "the JWT names no kid", None);
    };
    let key = match state.seamless.keys.published_key(&kid).await {
        Ok(Some(key)) => key,
        Ok(None) => return envelope(code::UNKNOWN_KEY, "unknown kid", None),
        Err(e) => return failure(&req, &e),
    };
    let Ok(decoding) = DecodingKey::from_rsa_components(&key.jwk.n, &key.jwk.e) else {
        return failure(
            &req,
            &Error::Internal(anyhow::anyhow!("published key {kid} is unusable")),
        );
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "iss"]);
    validation.set_issuer(&[state.seamless.keys.issuer()]);
    match jsonwebtoken::decode::<Value>(&jwt, &decoding, &validation) {
        Ok(token) => success(token.claims),
        Err(e) => match e.kind() {
            ErrorKind::ExpiredSignature => envelope(code::EXPIRED, "expired", None),
            ErrorKind::ImmatureSignature => envelope(code::EXPIRED, "not valid yet", None),
            ErrorKind::InvalidSignature => {
                envelope(code::UNAUTHORIZED, "the signature does not verify", None)
            }
            ErrorKind::InvalidIssuer => envelope(code::UNAUTHORIZED, "another issuer", None),
            _ => envelope(code::BAD_REQUEST, "not a JWT croupier issued", None),
        },
    }
}

/// A token request: the operator's credentials.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TokenRequest {
    pub partner_client_id: String,
    pub secret: String,
}

/// Reads a token request. An id that cannot be a counterparty's is an unknown operator.
pub fn read_token_request(body: &[u8]) -> Result<TokenRequest, Error> {
    let asked = serde_json::from_slice::<TokenRequest>(body).map_err(|_| {
        Error::bad_format("the body must be {\"PartnerClientId\": …, \"Secret\": …}")
    })?;
    if !crate::auth::is_counterparty_id(&asked.partner_client_id) {
        return Err(Error::Auth(AuthFailure::UnknownCounterparty));
    }
    Ok(asked)
}

#[utoipa::path(
    post,
    path = "/mis-api/api/v2/auth/token",
    tag = "seamless",
    operation_id = "token",
    summary = "A bearer token for the operator's credentials",
    request_body = crate::api::docs::casino_crypto::TokenRequest,
    responses(
        (status = 200, description = "200: `Value` is `{AccessToken, ExpiresIn: 3600, TokenType: Bearer}`", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 400, description = "400 the body is not `{PartnerClientId, Secret}`", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 401, description = "401 wrong credentials (an id holding a NUL character included)", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 403, description = "403 not a seamless operator, or disabled", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 503, description = "503 try again", body = crate::api::docs::casino_crypto::CasinoEnvelope),
    )
)]
async fn token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let asked = crate::api::read_body(&req, payload)
        .await
        .and_then(|body| read_token_request(&body));
    let asked = match asked {
        Ok(asked) => asked,
        Err(e) => return failure(&req, &e),
    };
    match state
        .seamless
        .issue_token(&asked.partner_client_id, &asked.secret)
        .await
    {
        Ok(issued) => success(json!({
            "AccessToken": issued.token,
            "ExpiresIn": issued.expires_in.as_secs(),
            "TokenType": "Bearer",
        })),
        Err(e) => failure(&req, &e),
    }
}

/// The operator behind the request's `Authorization: Bearer` token.
pub async fn bearer_operator(req: &HttpRequest, state: &AppState) -> Result<String, Error> {
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Error::Auth(AuthFailure::MissingHeader("Authorization")))?;
    state.seamless.token_operator(token.trim()).await
}

/// A decimal given as a string or a number.
fn decimal_field(value: &Value, field: &str) -> Result<Option<rust_decimal::Decimal>, Error> {
    let text = match &value[field] {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(Error::bad_format(format!("{field} must be a decimal"))),
    };
    text.parse()
        .map(Some)
        .map_err(|_| Error::bad_format(format!("{field} must be a decimal")))
}

fn integer_field(value: &Value, field: &str) -> Result<i64, Error> {
    match &value[field] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        Value::Null => return Err(Error::MissingField(field.to_string())),
        _ => None,
    }
    .ok_or_else(|| Error::bad_format(format!("{field} must be an integer")))
}

/// A casino's verdict on a movement (`payments/accept`), read and checked.
#[derive(Debug)]
pub struct Verdict {
    pub bet_no: i64,
    pub kind: i16,
    pub code: i64,
    pub amount: Option<rust_decimal::Decimal>,
    pub balance: Option<rust_decimal::Decimal>,
    /// The whole body as the casino sent it (recorded with a discrepancy).
    pub reported: Value,
}

impl Verdict {
    pub fn partner_tx(&self) -> Option<&str> {
        self.reported["PartnerTransactionId"].as_str()
    }

    pub fn message(&self) -> Option<&str> {
        self.reported["Message"].as_str()
    }
}

/// Reads a verdict: a JSON object with `BetId`, `TransactionType`, `ErrorCode`, and
/// optionally `PartnerTransactionId`, `Amount`, `Balance`, `Message`.
pub fn read_verdict(body: &[u8]) -> Result<Verdict, Error> {
    let verdict: Value = serde_json::from_slice(body)
        .map_err(|_| Error::bad_format("the body must be a JSON object"))?;
    if !verdict.is_object() {
        return Err(Error::bad_format("the body must be a JSON object"));
    }
    // The verdict is stored as it came (jsonb, texts): PostgreSQL holds no NUL character.
    if holds_nul(&verdict) {
        return Err(Error::bad_value("the body holds a NUL character"));
    }
    Ok(Verdict {
        bet_no: integer_field(&verdict, "BetId")?,
        kind: i16::try_from(integer_field(&verdict, "TransactionType")?)
            .map_err(|_| Error::bad_value("unknown TransactionType"))?,
        code: integer_field(&verdict, "ErrorCode")?,
        amount: decimal_field(&verdict, "Amount")?,
        balance: decimal_field(&verdict, "Balance")?,
        reported: verdict,
    })
}

/// Whether a NUL character is in any string or key of `value`.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

#[utoipa::path(
    post,
    path = "/mis-api/api/v2/payments/accept",
    tag = "seamless",
    operation_id = "acceptPayment",
    summary = "The casino's final verdict on a movement",
    request_body = crate::api::docs::casino_crypto::AcceptRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "200 recorded: Message says Success, already recorded, still pending, or Recorded as a discrepancy", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 400, description = "400 a field missing or of the wrong type, or a NUL character anywhere", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 401, description = "401 no valid bearer token", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 403, description = "403 not a seamless operator, or disabled", body = crate::api::docs::casino_crypto::CasinoEnvelope),
        (status = 503, description = "503 try again", body = crate::api::docs::casino_crypto::CasinoEnvelope),
    )
)]
async fn accept(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let operator = match bearer_operator(&req, &state).await {
        Ok(operator) => operator,
        Err(e) => return failure(&req, &e),
    };
    let outcome = async {
        let body = crate::api::read_body(&req, payload).await?;
        let verdict = read_verdict(&body)?;
        let settings = state
            .seamless
            .settings(&operator)
            .await?
            .ok_or(Error::Auth(AuthFailure::WrongRole))?;
        state
            .seamless
            .accept(
                &operator,
                verdict.bet_no,
                verdict.kind,
                verdict.code,
                settings.error_codes.meaning(verdict.code),
                verdict.partner_tx(),
                verdict.amount,
                verdict.balance,
                verdict.message(),
                &verdict.reported,
            )
            .await
    }
    .await;
    match outcome {
        Ok(recorded) => envelope(code::SUCCESS, recorded.message(), None),
        Err(e) => failure(&req, &e),
    }
}
