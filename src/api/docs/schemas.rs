//! Schemas of the wire types, for the spec only. The handlers read their bodies as raw JSON
//! (`&RawValue`, so that amounts stay exact and every bad field gets its own code) and write
//! their answers with exact decimals; these types describe the same JSON and are never built.
#![allow(dead_code)]

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;
use uuid::Uuid;

/// An amount in major units, exact: a JSON number or a numeric string (`10.5`, `"10.50"`);
/// digits with an optional fraction, no sign, no exponent.
pub fn amount_in() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[0-9]+(\.[0-9]+)?$")),
        )
        .description(Some(
            "Major units, exact: a JSON number or a numeric string (`10.5`, `\"10.50\"`); \
             no sign, no exponent, at most the currency's decimals",
        ))
        .into()
}

/// An amount as answered: a JSON number, exact.
fn amount_out() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .description(Some("Major units, exact"))
}

/// A provider's id: a string or a non-negative integer (`"4178696881"` = `4178696881`).
pub fn provider_id() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(
            "1 to 128 printable characters, as a string or an integer",
        ))
        .into()
}

pub(super) fn integer_enum(values: &[u16], description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
}

fn provider_codes() -> ObjectBuilder {
    integer_enum(
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 99, 104],
        "1 success, 2 insufficient funds, 3 session not found, 4 bet not found, 5 malformed \
         request, 6 bet already closed, 7 player blocked or provider disabled, 8 \
         authentication failed, 9 same betId with other data, 99 internal error, 104 already \
         processed",
    )
}

fn null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Null)
}

// The provider bet API.

/// PayIn: a bet.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayInRequest {
    #[schema(schema_with = provider_id)]
    bet_id: Value,
    #[schema(schema_with = provider_id, required = false)]
    game_round_id: Value,
    #[schema(schema_with = amount_in)]
    bet_amount: Value,
}

/// PayOut: the result of a bet (`winAmount` 0 settles a lost bet).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayOutRequest {
    #[schema(schema_with = provider_id)]
    bet_id: Value,
    #[schema(schema_with = provider_id, required = false)]
    game_round_id: Value,
    #[schema(schema_with = amount_in)]
    win_amount: Value,
    /// Accepted and ignored.
    win_odd: Option<f64>,
}

/// PayInOut: a bet and its result at once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayInOutRequest {
    #[schema(schema_with = provider_id)]
    bet_id: Value,
    #[schema(schema_with = provider_id, required = false)]
    game_round_id: Value,
    #[schema(schema_with = amount_in)]
    bet_amount: Value,
    #[schema(schema_with = amount_in)]
    win_amount: Value,
    /// Accepted and ignored.
    win_odd: Option<f64>,
}

/// Refund: cancel a bet. A body carrying `betAmount` or `winAmount` is refused (5).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    #[schema(schema_with = provider_id)]
    bet_id: Value,
}

/// Every provider answer: `_responseCode`, then the fields of the call (on success) or a
/// short `message` (on a refusal).
#[derive(Serialize, ToSchema)]
pub struct ProviderAnswer {
    #[serde(rename = "betTransactionId")]
    bet_transaction_id: Option<Uuid>,
    #[serde(rename = "winTransactionId")]
    win_transaction_id: Option<Uuid>,
    #[serde(rename = "refundTransactionId")]
    refund_transaction_id: Option<Uuid>,
    /// Balance only.
    currency: Option<String>,
    #[schema(schema_with = amount_out, required = false)]
    balance: Value,
    #[serde(rename = "_responseCode")]
    #[schema(schema_with = provider_codes)]
    response_code: u16,
    message: Option<String>,
}

// The operator transfer API.

fn success_code() -> ObjectBuilder {
    integer_enum(&[0], "0: successful request")
}

fn refusal_codes() -> ObjectBuilder {
    integer_enum(
        &[1, 2, 3, 4, 5, 6, 9, 100, 101, 102, 103],
        "1 error occurred (HTTP 500), 2 missing data, 3 invalid key, 4 data format error, 5 \
         expired request, 6 invalid agent, 9 blocked user, 100 data value error, 101 \
         permission denied, 102 insufficient balance, 103 integration failure",
    )
}

/// A successful operator answer: code 0 and the call's `data`.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T> {
    #[schema(schema_with = success_code)]
    code: u16,
    message: String,
    data: T,
}

/// A refused (HTTP 202) or failed (HTTP 500, code 1) operator call: the code, its message,
/// no data.
#[derive(Serialize, ToSchema)]
pub struct OperatorRefusal {
    #[schema(schema_with = refusal_codes)]
    code: u16,
    message: String,
    #[schema(schema_with = null)]
    data: Value,
}

/// Account Init.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatePlayerRequest {
    player_external_id: String,
    /// Upper case, e.g. `USD`.
    currency: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerData {
    player_external_id: String,
    player_id: Uuid,
    currency: String,
    #[schema(schema_with = amount_out)]
    balance: Value,
    #[schema(schema_with = amount_out)]
    withdrawable: Value,
    blocked: bool,
    /// False when the player (and this wallet) already existed.
    created: bool,
}

/// Deposit or Withdraw, idempotent by `transactionId`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferRequest {
    player_external_id: String,
    currency: String,
    #[schema(schema_with = amount_in)]
    amount: Value,
    transaction_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferData {
    transaction_id: String,
    /// Our id of the transfer.
    reference_id: Uuid,
    player_external_id: String,
    currency: String,
    #[schema(schema_with = amount_out)]
    amount: Value,
    /// The balance right after this transfer.
    #[schema(schema_with = amount_out)]
    balance: Value,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceData {
    player_external_id: String,
    player_id: Uuid,
    currency: String,
    #[schema(schema_with = amount_out)]
    balance: Value,
    /// The balance less funds locked (e.g. unconfirmed crypto).
    #[schema(schema_with = amount_out)]
    withdrawable: Value,
    blocked: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionData {
    transaction_id: String,
    reference_id: Uuid,
    /// `deposit` or `withdrawal`.
    r#type: String,
    /// `completed` or `refused`.
    status: String,
    /// The code a refused transfer got; null when completed.
    refusal_code: Option<u16>,
    player_external_id: String,
    currency: String,
    #[schema(schema_with = amount_out)]
    amount: Value,
    /// The balance right after the transfer (when it was refused, for a refused one).
    #[schema(schema_with = amount_out)]
    balance: Value,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryData {
    player_external_id: String,
    /// Newest round first.
    rounds: Vec<Round>,
    /// Null on the last page.
    next_cursor: Option<String>,
}

/// A game round: the bets of one `gameRoundId` (a bet without one is a round of its own).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Round {
    round_id: String,
    provider_id: String,
    game_id: Option<String>,
    currency: String,
    /// `END` when none of its bets is open, else `ING`.
    status: String,
    started_at: String,
    ended_at: Option<String>,
    #[schema(schema_with = amount_out)]
    total_bet: Value,
    #[schema(schema_with = amount_out)]
    total_win: Value,
    bets: Vec<RoundBet>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoundBet {
    bet_id: String,
    /// `open`, `settled` or `refunded`.
    state: String,
    #[schema(schema_with = amount_out)]
    bet_amount: Value,
    /// Null while the bet is open.
    win_amount: Option<f64>,
    bet_transaction_id: Option<Uuid>,
    win_transaction_id: Option<Uuid>,
    refund_transaction_id: Option<Uuid>,
    created_at: String,
}

/// Block / unblock.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerStatusRequest {
    player_external_id: String,
    blocked: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerStatusData {
    player_external_id: String,
    blocked: bool,
}

/// Launch: opens a game session and answers the game's URL.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaunchRequest {
    player_external_id: String,
    currency: String,
    provider_id: String,
    game_id: String,
    /// Default `en`.
    language: Option<String>,
    /// An http(s) URL.
    return_url: Option<String>,
    /// Default `real`.
    mode: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaunchData {
    session_id: Uuid,
    url: String,
    expires_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DepositAddressRequest {
    player_external_id: String,
    /// 1 to 32 letters, digits, `-` or `_`.
    asset: String,
    blockchain: String,
    /// The wallet to credit, when the player has several.
    currency: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DepositAddressData {
    player_external_id: String,
    asset: String,
    blockchain: String,
    address: String,
    /// The wallet currency deposits to this address are credited in.
    currency: String,
}

/// A crypto payout, idempotent by `transactionId`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CryptoWithdrawRequest {
    player_external_id: String,
    currency: String,
    #[schema(schema_with = amount_in)]
    amount: Value,
    asset: String,
    blockchain: String,
    address: String,
    transaction_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayoutData {
    transaction_id: String,
    payout_id: Uuid,
    player_external_id: String,
    currency: String,
    #[schema(schema_with = amount_out)]
    amount: Value,
    asset: String,
    blockchain: String,
    address: String,
    #[schema(schema_with = amount_out)]
    coin_amount: Value,
    #[schema(schema_with = amount_out)]
    rate: Value,
    /// `inabit` or `b2binpay`.
    rail: String,
    /// `pending`, `paid`, `failed` (released), `review` or `refused`.
    status: String,
    provider_status: Option<String>,
    /// Epoch milliseconds.
    created_at: i64,
    updated_at: i64,
}

/// The provider answers every call can get besides its own: 401 (8), 500 and 503 (99).
#[derive(utoipa::IntoResponses)]
pub enum ProviderFailures {
    /// 8 authentication failed: a missing or garbled signing header, an unknown counterparty,
    /// a bad signature, a timestamp outside ±30 s, a replayed request id, an operator's
    /// credentials.
    #[response(status = 401)]
    Unauthorized(ProviderAnswer),
    /// 99 internal error; nothing was applied (retrying with the same betId is safe).
    #[response(status = 500)]
    Internal(ProviderAnswer),
    /// 99 database unreachable, bet queue full, or (seamless sessions) not confirmed by the
    /// casino in time: repeat the same call or send Refund.
    #[response(status = 503)]
    Unavailable(ProviderAnswer),
}

/// What an operator call can get besides its success and refusals: 500 with code 1.
#[derive(utoipa::IntoResponses)]
pub enum OperatorFailures {
    /// 1 error occurred (internal, or a crypto provider that did not answer in time, could not
    /// be reached or is unavailable); nothing was applied, retry with the same transactionId.
    #[response(status = 500)]
    Internal(OperatorRefusal),
}
