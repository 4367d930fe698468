//! Crypto for operators:
//! - `POST /v1/player/crypto/deposit-address` `{playerExternalId, asset, blockchain,
//!   currency?}` → the player's persistent address (created at inabit on the first request);
//! - `POST /v1/player/crypto/withdraw` `{playerExternalId, currency, amount, asset,
//!   blockchain, address, transactionId}` → the payout, idempotent by `transactionId`;
//! - `GET /v1/player/crypto/withdrawals/{transactionId}` → the payout's state.

use actix_web::{web, HttpRequest, HttpResponse};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{amount, currency, id, json, query_id, required, respond, string, Call};
use crate::crypto::DepositAddress;
use crate::error::Error;
use crate::ledger::crypto::{Payout, PayoutOrder, PayoutState};
use crate::money::Currency;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddressBody<'a> {
    #[serde(borrow, default)]
    player_external_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    asset: Option<&'a RawValue>,
    #[serde(borrow, default)]
    blockchain: Option<&'a RawValue>,
    #[serde(borrow, default)]
    currency: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WithdrawBody<'a> {
    #[serde(borrow, default)]
    player_external_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    currency: Option<&'a RawValue>,
    #[serde(borrow, default)]
    amount: Option<&'a RawValue>,
    #[serde(borrow, default)]
    asset: Option<&'a RawValue>,
    #[serde(borrow, default)]
    blockchain: Option<&'a RawValue>,
    #[serde(borrow, default)]
    address: Option<&'a RawValue>,
    #[serde(borrow, default)]
    transaction_id: Option<&'a RawValue>,
}

/// A short code such as an asset or blockchain name: 1 to 32 letters, digits, `-` or `_`.
fn code(value: Option<&RawValue>, field: &str) -> Result<String, Error> {
    let text = string(required(value, field)?, field)?;
    if text.is_empty()
        || text.len() > 32
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::bad_value(format!(
            "{field} must be 1 to 32 letters, digits, - or _"
        )));
    }
    Ok(text)
}

/// A destination address: 1 to 128 printable ASCII characters without spaces.
fn address(value: Option<&RawValue>) -> Result<String, Error> {
    let text = string(required(value, "address")?, "address")?;
    if text.is_empty() || text.len() > 128 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::bad_value(
            "address must be 1 to 128 printable characters without spaces",
        ));
    }
    Ok(text)
}

/// A deposit-address body, decoded and checked.
#[derive(Debug)]
pub struct AddressRequest {
    pub external_id: String,
    pub asset: String,
    pub blockchain: String,
    pub currency: Option<Currency>,
}

/// Decodes a deposit-address body.
pub fn decode_address(body: &[u8]) -> Result<AddressRequest, Error> {
    let body: AddressBody = json(body)?;
    Ok(AddressRequest {
        external_id: id(body.player_external_id, "playerExternalId")?,
        asset: code(body.asset, "asset")?,
        blockchain: code(body.blockchain, "blockchain")?,
        currency: match body.currency {
            Some(raw) if raw.get() != "null" => Some(currency(Some(raw))?),
            _ => None,
        },
    })
}

/// Decodes a crypto withdraw body into the payout order of `operator_id`.
pub fn decode_withdraw(body: &[u8], operator_id: &str) -> Result<PayoutOrder, Error> {
    let body: WithdrawBody = json(body)?;
    let external_id = id(body.player_external_id, "playerExternalId")?;
    let transaction_id = id(body.transaction_id, "transactionId")?;
    let currency = currency(body.currency)?;
    let amount = amount(body.amount, currency)?;
    if amount.value().is_zero() {
        return Err(Error::bad_value("amount must be more than zero"));
    }
    Ok(PayoutOrder {
        operator_id: operator_id.to_string(),
        external_id,
        amount,
        transaction_id,
        asset: code(body.asset, "asset")?,
        blockchain: code(body.blockchain, "blockchain")?,
        address: address(body.address)?,
    })
}

#[utoipa::path(
    post,
    path = "/v1/player/crypto/deposit-address",
    tag = "operator",
    operation_id = "cryptoDepositAddress",
    summary = "Crypto deposit address",
    request_body = crate::api::docs::schemas::DepositAddressRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::DepositAddressData>),
        (status = 202, description = "100 data value error (unknown player, asset or blockchain); 101 seamless operator; 103 integration failure (crypto not configured or refused); 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
    )
)]
pub async fn deposit_address(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, address_of(&req, payload, &state).await)
}

async fn address_of(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<DepositAddress, Error> {
    let call = Call::accept(req, payload, state).await?;
    state.seamless.refuse_if_seamless(&call.operator.id).await?;
    let AddressRequest {
        external_id,
        asset,
        blockchain,
        currency: wallet_currency,
    } = decode_address(&call.body)?;
    // Runs to its end even if the caller hangs up: a customer inabit has created must be
    // kept, and a claim on its creation given up, whatever the HTTP connection does.
    let crypto = state.crypto.clone();
    let operator = call.operator.id.clone();
    tokio::spawn(async move {
        crypto
            .deposit_address(
                &operator,
                &external_id,
                &asset,
                &blockchain,
                wallet_currency,
            )
            .await
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?
}

#[utoipa::path(
    post,
    path = "/v1/player/crypto/withdraw",
    tag = "operator",
    operation_id = "cryptoWithdraw",
    summary = "Crypto payout (idempotent by transactionId)",
    request_body = crate::api::docs::schemas::CryptoWithdrawRequest,
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::PayoutData>),
        (status = 202, description = "100 data value error (amount, unknown player, transactionId reused with other details); 101 seamless operator; 102 insufficient crypto-funded withdrawable balance; 103 integration failure (no treasury, no rate, rail not configured); 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
    )
)]
pub async fn withdraw(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, payout(&req, payload, &state).await)
}

async fn payout(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<PayoutView, Error> {
    let call = Call::accept(req, payload, state).await?;
    state.seamless.refuse_if_seamless(&call.operator.id).await?;
    let order = decode_withdraw(&call.body, &call.operator.id)?;
    Ok(state.crypto.withdraw(order).await?.into())
}

#[utoipa::path(
    get,
    path = "/v1/player/crypto/withdrawals/{transactionId}",
    tag = "operator",
    operation_id = "cryptoWithdrawal",
    summary = "Crypto payout state",
    params(("transactionId" = String, Path, description = "The operator's transactionId")),
    security(("X-Counterparty-Id" = [], "X-Timestamp" = [], "X-Request-Id" = [], "X-Sign" = [])),
    responses(
        (status = 200, description = "0 successful request", body = crate::api::docs::schemas::Envelope<crate::api::docs::schemas::PayoutData>),
        (status = 202, description = "100 data value error (unknown payout); 2 missing data; 3 invalid key (bad signature, missing or garbled signing header); 4 data format error; 5 expired request (timestamp outside ±30 s, request id already used); 6 invalid agent (unknown or disabled operator); 101 permission denied (a provider's credentials)", body = crate::api::docs::schemas::OperatorRefusal),
        crate::api::docs::schemas::OperatorFailures,
    )
)]
pub async fn withdrawal(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    respond(&req, withdrawal_of(&req, payload, &state, &path).await)
}

async fn withdrawal_of(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    transaction_id: &str,
) -> Result<PayoutView, Error> {
    let call = Call::accept(req, payload, state).await?;
    let transaction_id = query_id(Some(transaction_id), "transactionId")?;
    state
        .crypto
        .ledger()
        .payout_by_transaction(&call.operator.id, &transaction_id)
        .await?
        .map(PayoutView::from)
        .ok_or(Error::TransactionNotFound)
}

/// The payout as the operator API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayoutView {
    pub transaction_id: String,
    pub payout_id: Uuid,
    pub player_external_id: String,
    pub currency: String,
    #[serde(serialize_with = "crate::api::decimal")]
    pub amount: Decimal,
    pub asset: String,
    pub blockchain: String,
    pub address: String,
    #[serde(serialize_with = "crate::api::decimal")]
    pub coin_amount: Decimal,
    #[serde(serialize_with = "crate::api::decimal")]
    pub rate: Decimal,
    pub rail: &'static str,
    /// pending (held or sent, not final) | paid | failed (released) | review | refused
    /// (never held: insufficient withdrawable balance)
    pub status: &'static str,
    pub provider_status: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Payout> for PayoutView {
    fn from(p: Payout) -> Self {
        Self {
            status: match p.state {
                PayoutState::Paid => "paid",
                PayoutState::Released => "failed",
                PayoutState::Review => "review",
                PayoutState::Refused => "refused",
                PayoutState::Held | PayoutState::Submitted => "pending",
            },
            transaction_id: p.transaction_id,
            payout_id: p.id,
            player_external_id: p.external_id,
            currency: p.currency,
            amount: p.amount,
            asset: p.asset,
            blockchain: p.blockchain,
            address: p.address,
            coin_amount: p.coin_amount,
            rate: p.rate,
            rail: p.rail.as_str(),
            provider_status: p.provider_status,
            created_at: p.created_at_ms,
            updated_at: p.updated_at_ms,
        }
    }
}
