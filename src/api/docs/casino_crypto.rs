//! Schemas of what crypto providers and seamless casinos call, for the spec only (see
//! `schemas`): described, never built.
#![allow(dead_code)]

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::ToSchema;
use uuid::Uuid;

use super::schemas::{amount_in, integer_enum};

// What the crypto providers call.

/// A refusal or "try again" of a crypto endpoint.
#[derive(Serialize, ToSchema)]
pub struct Message {
    message: String,
}

/// An inabit Terminal event, stored exactly as received (other fields included). Only what
/// inabit's API then says about the transaction it names is applied.
#[derive(Serialize, ToSchema)]
pub struct InabitEvent {
    /// `IncomingTransactionReceived`, `IncomingTransactionStatusUpdated`, …; any name is taken.
    event: Option<String>,
    data: Option<InabitEventData>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InabitEventData {
    /// The transaction to read back from inabit (also `purchaseId` or `id`).
    transaction_id: Option<String>,
    status: Option<String>,
}

/// The webhook is recorded; the worker confirms it with inabit's API.
#[derive(Serialize, ToSchema)]
pub struct WebhookReceived {
    /// Our id of the stored event.
    received: Uuid,
}

/// The Remote Approver's verdict.
#[derive(Serialize, ToSchema)]
pub struct Approval {
    approved: bool,
}

// What a seamless casino calls.

fn casino_codes() -> ObjectBuilder {
    integer_enum(
        &[200, 400, 401, 403, 404, 410, 429, 503],
        "200 success, 400 bad request, 401 unauthorized, 403 not a seamless operator or \
         disabled, 404 unknown kid, 410 expired or not yet valid, 429 too many requests, 503 \
         try again",
    )
}

/// The Betcore envelope; the HTTP status follows `ErrorCode` (200 on success).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CasinoEnvelope {
    #[schema(schema_with = casino_codes)]
    error_code: u16,
    message: String,
    /// The call's result, on success (verify: the JWT's claims; token: the bearer token).
    value: Option<serde_json::Map<String, Value>>,
}

/// The keys croupier signs casino calls with.
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Serialize, ToSchema)]
pub struct Jwk {
    kty: String,
    kid: String,
    /// Base64url modulus and exponent of the RSA key.
    n: String,
    e: String,
    #[serde(rename = "use")]
    r#use: Option<String>,
    alg: Option<String>,
    x5t: Option<String>,
}

/// The operator's credentials (its id and secret).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct TokenRequest {
    partner_client_id: String,
    secret: String,
}

/// The casino's final verdict on a movement it answered 202 (or whose answer was lost).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AcceptRequest {
    bet_id: i64,
    /// -1 bet, 1 win, 2 stake back, -2 win back, 4 standalone win.
    transaction_type: i64,
    error_code: i64,
    partner_transaction_id: Option<String>,
    #[schema(schema_with = amount_in, required = false)]
    amount: Value,
    #[schema(schema_with = amount_in, required = false)]
    balance: Value,
    message: Option<String>,
}
