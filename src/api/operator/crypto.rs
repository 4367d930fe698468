//! Crypto for operators:
//! - `POST /v1/player/crypto/deposit-address` `{playerExternalId, asset, blockchain,
//!   currency?}` → the player's persistent address (created at inabit on the first request);
//! - `POST /v1/player/crypto/withdraw` `{playerExternalId, currency, amount, asset,
//!   blockchain, address, transactionId}` → the payout, idempotent by `transactionId`;
//! - `GET /v1/player/crypto/withdrawals/{transactionId}` → the payout's state.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{amount, currency, id, required, respond, string, Call};
use crate::crypto::{DepositAddress, PayoutView};
use crate::error::Error;
use crate::ledger::crypto::{PayoutOrder, Rail};
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
    let body: AddressBody = call.json()?;
    let external_id = id(body.player_external_id, "playerExternalId")?;
    let asset = code(body.asset, "asset")?;
    let blockchain = code(body.blockchain, "blockchain")?;
    let wallet_currency = match body.currency {
        Some(raw) if raw.get() != "null" => Some(currency(Some(raw))?),
        _ => None,
    };
    state
        .crypto
        .deposit_address(
            &call.operator.id,
            &external_id,
            &asset,
            &blockchain,
            wallet_currency,
        )
        .await
}

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
    let body: WithdrawBody = call.json()?;
    let external_id = id(body.player_external_id, "playerExternalId")?;
    let transaction_id = id(body.transaction_id, "transactionId")?;
    let currency = currency(body.currency)?;
    let amount = amount(body.amount, currency)?;
    if amount.value().is_zero() {
        return Err(Error::bad_value("amount must be more than zero"));
    }
    let order = PayoutOrder {
        operator_id: call.operator.id.clone(),
        external_id,
        amount,
        transaction_id,
        asset: code(body.asset, "asset")?,
        blockchain: code(body.blockchain, "blockchain")?,
        address: address(body.address)?,
        // Both set from configuration by `Crypto::withdraw`.
        asset_scale: 0,
        rail: Rail::Inabit,
    };
    Ok(state.crypto.withdraw(order).await?.into())
}

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
    state
        .crypto
        .ledger()
        .payout_by_transaction(&call.operator.id, transaction_id)
        .await?
        .map(PayoutView::from)
        .ok_or(Error::TransactionNotFound)
}
