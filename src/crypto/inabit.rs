//! inabit client: the Platform GraphQL API (withdrawals, transaction status, tokens) and the
//! Terminal REST API (per-customer deposit addresses, deposits).
//!
//! Tokens: the login token (30 days) lives in the database, so a restart or a second server
//! uses the current one; `refresh_login_token` replaces it well before it expires. The access
//! token (minutes) lives in memory; one renewal runs at a time (the others wait for it), it is
//! renewed after two thirds of its lifetime, and fetched again once when inabit refuses it.

use std::time::Duration;

use deadpool_postgres::Pool;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::http::{excerpt, exchange, failure, text_field, ProviderError, TokenCache};
use crate::ledger::crypto::DepositReport;

/// What is escaped in an id put in a URL path: everything but the unreserved characters.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The row of `integration_tokens` holding the login token.
const LOGIN_TOKEN: &str = "inabit_login";

/// inabit's settings (every URL, key and id is configuration). Its `Debug` hides the key and
/// the token.
#[derive(Clone)]
pub struct InabitConfig {
    pub graphql_url: String,
    pub terminal_url: String,
    /// Terminal API key (server side only). None: deposit addresses are not offered.
    pub terminal_key: Option<String>,
    /// A login token to start from when the database has none.
    pub login_token: Option<String>,
    /// The wallet payouts are sent from.
    pub wallet_id: Option<String>,
    /// Path of the Terminal deposit resource: `GET {path}/{id}` reads one deposit,
    /// `GET {path}?updatedAfter=…&limit=…` lists them in update order.
    pub deposits_path: String,
    pub access_token_ttl: Duration,
    /// Refresh the login token once it is this old (it lives 30 days).
    pub login_refresh_after: Duration,
    pub priority: String,
}

impl std::fmt::Debug for InabitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<hidden>");
        f.debug_struct("InabitConfig")
            .field("graphql_url", &self.graphql_url)
            .field("terminal_url", &self.terminal_url)
            .field("terminal_key", &hidden(&self.terminal_key))
            .field("login_token", &hidden(&self.login_token))
            .field("wallet_id", &self.wallet_id)
            .field("deposits_path", &self.deposits_path)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("login_refresh_after", &self.login_refresh_after)
            .field("priority", &self.priority)
            .finish()
    }
}

pub struct Inabit {
    config: InabitConfig,
    http: reqwest::Client,
    pool: Pool,
    access: TokenCache,
}

/// A withdrawal or deposit as `transaction(where: {id})` reports it.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: String,
    pub status: String,
    pub note: Option<String>,
}

#[derive(Serialize)]
struct Data<T: Serialize> {
    data: T,
}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

/// `WithdrawalCreateInput`, with the amount as raw JSON so that it is sent exactly.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WithdrawalInput<'a> {
    wallet: Id<'a>,
    financial_asset: Id<'a>,
    address: &'a str,
    amount: &'a RawValue,
    blockchain: Id<'a>,
    note: &'a str,
    priority: &'a str,
}

#[derive(Serialize)]
struct GraphQlRequest<'a, V: Serialize> {
    query: &'a str,
    variables: V,
}

/// One deposit of a Terminal list.
#[derive(Debug)]
pub struct Listed {
    pub report: Result<DepositReport, ProviderError>,
    pub transaction_id: Option<String>,
    pub updated_at: Option<String>,
}

/// A Terminal deposit, in the webhook's field names.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TerminalDeposit {
    transaction_id: Option<String>,
    status: Option<String>,
    amount: Option<Box<RawValue>>,
    destination_address: Option<String>,
    asset: Option<String>,
    blockchain: Option<String>,
    transaction_hash: Option<String>,
}

impl TerminalDeposit {
    fn report(self) -> Result<DepositReport, ProviderError> {
        let missing = |what: &str| ProviderError::Decode(format!("deposit without {what}"));
        let amount = self.amount.ok_or_else(|| missing("amount"))?;
        Ok(DepositReport {
            provider_tx_id: self
                .transaction_id
                .ok_or_else(|| missing("transactionId"))?,
            status: self.status.ok_or_else(|| missing("status"))?,
            coin_amount: super::http::decimal(&amount)
                .ok_or_else(|| missing("a decimal amount"))?,
            asset: self.asset.ok_or_else(|| missing("asset"))?,
            blockchain: self.blockchain.ok_or_else(|| missing("blockchain"))?,
            address: self
                .destination_address
                .ok_or_else(|| missing("destinationAddress"))?,
            tx_hash: self.transaction_hash,
        })
    }
}

impl Inabit {
    pub fn new(config: InabitConfig, http: reqwest::Client, pool: Pool) -> Self {
        Self {
            config,
            http,
            pool,
            access: TokenCache::default(),
        }
    }

    pub fn config(&self) -> &InabitConfig {
        &self.config
    }

    /// Stores the configured login token if the database has none yet.
    pub async fn seed_login_token(&self) -> anyhow::Result<()> {
        if let Some(token) = &self.config.login_token {
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO integration_tokens (name, token, expires_at)
                     VALUES ($1, $2, now() + interval '30 days')
                     ON CONFLICT (name) DO NOTHING",
                    &[&LOGIN_TOKEN, token],
                )
                .await?;
        }
        Ok(())
    }

    async fn login_token(&self) -> Result<String, ProviderError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| ProviderError::Transport(format!("database: {e}")))?;
        let row = client
            .query_opt(
                "SELECT token FROM integration_tokens WHERE name = $1",
                &[&LOGIN_TOKEN],
            )
            .await
            .map_err(|e| ProviderError::Transport(format!("database: {e}")))?;
        match row {
            Some(row) => row
                .try_get(0)
                .map_err(|e| ProviderError::Decode(e.to_string())),
            None => Err(ProviderError::NotConfigured("the inabit login token")),
        }
    }

    /// The access token; `stale` is one inabit just refused, to be replaced unless another
    /// caller already did.
    async fn access_token(&self, stale: Option<&str>) -> Result<String, ProviderError> {
        self.access
            .get(stale, || async {
                let login = self.login_token().await?;
                let data = self
                    .post_graphql(&login, "query { getApiUserAccessToken }", Value::Null)
                    .await
                    .map_err(unquoted)?;
                let token = token_text(&data, "getApiUserAccessToken")?;
                Ok((token, self.config.access_token_ttl * 2 / 3))
            })
            .await
    }

    /// Runs a GraphQL operation as the API Admin user. On an authentication refusal the access
    /// token is fetched again once.
    pub async fn graphql<V: Serialize>(
        &self,
        query: &str,
        variables: V,
    ) -> Result<Value, ProviderError> {
        let token = self.access_token(None).await?;
        match self.post_graphql(&token, query, &variables).await {
            Err(ProviderError::Unauthenticated) => {
                let token = self.access_token(Some(&token)).await?;
                self.post_graphql(&token, query, &variables).await
            }
            other => other,
        }
    }

    async fn post_graphql<V: Serialize>(
        &self,
        bearer: &str,
        query: &str,
        variables: V,
    ) -> Result<Value, ProviderError> {
        let (status, body) = exchange(
            self.http
                .post(&self.config.graphql_url)
                .bearer_auth(bearer)
                .json(&GraphQlRequest { query, variables }),
        )
        .await?;
        graphql_answer(status, &body)
    }

    /// Replaces the stored login token with a fresh one from `refreshApiUserLoginToken`.
    pub async fn refresh_login_token(&self) -> Result<(), ProviderError> {
        let login = self.login_token().await?;
        let data = self
            .post_graphql(&login, "query { refreshApiUserLoginToken }", Value::Null)
            .await
            .map_err(unquoted)?;
        let token = token_text(&data, "refreshApiUserLoginToken")?;
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| ProviderError::Transport(format!("database: {e}")))?;
        client
            .execute(
                "UPDATE integration_tokens SET token = $2, refreshed_at = now(),
                        expires_at = now() + interval '30 days', last_error = NULL,
                        last_error_at = NULL
                  WHERE name = $1",
                &[&LOGIN_TOKEN, &token],
            )
            .await
            .map_err(|e| ProviderError::Transport(format!("database: {e}")))?;
        Ok(())
    }

    /// Whether the login token is old enough to refresh.
    pub async fn login_refresh_due(&self) -> anyhow::Result<bool> {
        let client = self.pool.get().await?;
        let after_s = i64::try_from(self.config.login_refresh_after.as_secs()).unwrap_or(i64::MAX);
        let row = client
            .query_opt(
                "SELECT refreshed_at <= now() - $2::bigint * interval '1 second'
                   FROM integration_tokens WHERE name = $1",
                &[&LOGIN_TOKEN, &after_s],
            )
            .await?;
        Ok(match row {
            Some(row) => row.try_get(0)?,
            None => false,
        })
    }

    /// Records a failed refresh for the status endpoint.
    pub async fn login_refresh_failed(&self, error: &str) -> anyhow::Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE integration_tokens SET last_error = left($2, 500), last_error_at = now()
                  WHERE name = $1",
                &[&LOGIN_TOKEN, &error],
            )
            .await?;
        Ok(())
    }

    /// Checks that a withdrawal can be sent now (payout wallet configured, an access token at
    /// hand), so that a failure here is known not to have reached inabit.
    pub async fn ready_to_withdraw(&self) -> Result<(), ProviderError> {
        if self.config.wallet_id.is_none() {
            return Err(ProviderError::NotConfigured("the inabit payout wallet"));
        }
        self.access_token(None).await.map(|_| ())
    }

    /// Creates a withdrawal from the payout wallet; `note` carries our payout id. Returns
    /// inabit's id of it.
    pub async fn create_withdrawal(
        &self,
        ids: &super::AssetIds,
        address: &str,
        amount: Decimal,
        note: &str,
    ) -> Result<String, ProviderError> {
        let wallet = self
            .config
            .wallet_id
            .as_deref()
            .ok_or(ProviderError::NotConfigured("the inabit payout wallet"))?;
        let (Some(asset_id), Some(blockchain_id)) = (
            ids.inabit_asset_id.as_deref(),
            ids.inabit_blockchain_id.as_deref(),
        ) else {
            return Err(ProviderError::NotConfigured("inabit ids of this asset"));
        };
        // The amount goes out as an exact JSON number (its decimal text), never a float.
        let amount = RawValue::from_string(amount.normalize().to_string())
            .map_err(|e| ProviderError::Decode(e.to_string()))?;
        let variables = Data {
            data: WithdrawalInput {
                wallet: Id { id: wallet },
                financial_asset: Id { id: asset_id },
                address,
                amount: &amount,
                blockchain: Id { id: blockchain_id },
                note,
                priority: &self.config.priority,
            },
        };
        let data = self
            .graphql(
                "mutation CreateWithdrawal($data: WithdrawalCreateInput!) {
                   createWithdrawal(data: $data) { id } }",
                variables,
            )
            .await?;
        text_field(
            data.get("createWithdrawal").unwrap_or(&Value::Null),
            &["id"],
        )
        .ok_or_else(|| ProviderError::Decode("createWithdrawal without id".into()))
    }

    /// A transaction by inabit's id; None when inabit does not know it.
    pub async fn transaction(&self, id: &str) -> Result<Option<Transaction>, ProviderError> {
        let data = self
            .graphql(
                "query Transaction($where: TransactionWhereUniqueInput!) {
                   transaction(where: $where) { id note status { status } } }",
                serde_json::json!({"where": {"id": id}}),
            )
            .await?;
        Ok(data
            .get("transaction")
            .filter(|t| !t.is_null())
            .map(transaction_of))
    }

    /// Transactions whose note is exactly `note` (our payout id): how a payout whose creation
    /// answer was lost is found again before anything is resubmitted.
    pub async fn transactions_with_note(
        &self,
        note: &str,
    ) -> Result<Vec<Transaction>, ProviderError> {
        let data = self
            .graphql(
                "query Transactions($where: TransactionWhereInput) {
                   transactions(where: $where) { id note status { status } } }",
                serde_json::json!({"where": {"note": {"equals": note}}}),
            )
            .await?;
        match data.get("transactions") {
            Some(Value::Array(items)) => Ok(items
                .iter()
                .map(transaction_of)
                .filter(|t| t.note.as_deref() == Some(note))
                .collect()),
            _ => Err(ProviderError::Decode("transactions is not a list".into())),
        }
    }

    fn terminal_key(&self) -> Result<&str, ProviderError> {
        self.config
            .terminal_key
            .as_deref()
            .ok_or(ProviderError::NotConfigured("the inabit Terminal API key"))
    }

    async fn terminal(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        query: &[(&str, String)],
    ) -> Result<Option<Value>, ProviderError> {
        match self.terminal_raw(method, path, body, query).await? {
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| ProviderError::Decode(excerpt(&text))),
            None => Ok(None),
        }
    }

    /// The first step of the customer-address flow: inabit's customer for our player id.
    /// Returns the customer uuid.
    pub async fn create_customer(
        &self,
        customer_identifier: &str,
    ) -> Result<String, ProviderError> {
        let created = self
            .terminal(
                reqwest::Method::POST,
                "/v1/customer",
                Some(serde_json::json!({"customerIdentifier": customer_identifier})),
                &[],
            )
            .await?
            .unwrap_or(Value::Null);
        text_field(&created, &["uuid", "customerUuid", "id"])
            .ok_or_else(|| ProviderError::Decode("customer without uuid".into()))
    }

    /// The rest of the flow: an address token for the customer, then the address for the
    /// asset and blockchain.
    pub async fn customer_address(
        &self,
        customer: &str,
        asset: &str,
        blockchain: &str,
    ) -> Result<String, ProviderError> {
        let token = self
            .terminal(
                reqwest::Method::POST,
                "/v1/customer/address-token",
                Some(serde_json::json!({"customerUuid": customer})),
                &[],
            )
            .await?
            .unwrap_or(Value::Null);
        let token = text_field(&token, &["token", "addressToken"])
            .ok_or_else(|| ProviderError::Decode("address token missing".into()))?;
        let address = self
            .terminal(
                reqwest::Method::POST,
                "/v1/customer/address",
                Some(serde_json::json!({
                    "customerUuid": customer,
                    "addressToken": token,
                    "asset": asset,
                    "blockchain": blockchain,
                })),
                &[],
            )
            .await?
            .unwrap_or(Value::Null);
        text_field(&address, &["address"])
            .ok_or_else(|| ProviderError::Decode("address missing".into()))
    }

    /// A deposit read from inabit by its transaction id; None when inabit does not know it.
    pub async fn deposit(&self, id: &str) -> Result<Option<DepositReport>, ProviderError> {
        let path = format!(
            "{}/{}",
            self.config.deposits_path,
            percent_encoding::utf8_percent_encode(id, PATH_SEGMENT)
        );
        let Some(body) = self
            .terminal_raw(reqwest::Method::GET, &path, None, &[])
            .await?
        else {
            return Ok(None);
        };
        let deposit: TerminalDeposit = unwrap_data(&body)?;
        deposit.report().map(Some)
    }

    /// Deposits updated at or after `since` (inabit's own timestamp text), oldest first:
    /// every listed item, read or not (one unreadable item must not hide the others, nor
    /// its place in the list).
    pub async fn deposits_since(
        &self,
        since: &str,
        limit: usize,
    ) -> Result<Vec<Listed>, ProviderError> {
        let body = self
            .terminal_raw(
                reqwest::Method::GET,
                &self.config.deposits_path,
                None,
                &[
                    ("updatedAfter", since.to_string()),
                    ("limit", limit.to_string()),
                ],
            )
            .await?
            .unwrap_or_else(|| "[]".into());
        let items: Vec<Box<RawValue>> = unwrap_data(&body)?;
        Ok(items
            .into_iter()
            .map(|raw| {
                let loose: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                let report = serde_json::from_str::<TerminalDeposit>(raw.get())
                    .map_err(|e| ProviderError::Decode(e.to_string()))
                    .and_then(TerminalDeposit::report);
                Listed {
                    report,
                    transaction_id: text_field(&loose, &["transactionId"]),
                    updated_at: text_field(&loose, &["updatedAt"]),
                }
            })
            .collect())
    }

    /// A Terminal call whose body is parsed by the caller (amounts are read from its text);
    /// None for 404.
    async fn terminal_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        query: &[(&str, String)],
    ) -> Result<Option<String>, ProviderError> {
        let key = self.terminal_key()?;
        let url = format!("{}{}", self.config.terminal_url.trim_end_matches('/'), path);
        let mut request = self.http.request(method, url).bearer_auth(key).query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, text) = exchange(request).await?;
        match status {
            200..=299 => Ok(Some(text)),
            404 => Ok(None),
            _ => Err(failure(status, Some(&text))),
        }
    }
}

/// `T` from a body that is either `T` or `{"data": T}`. Read straight from the text (not
/// through `Value`) so that amounts keep every digit.
fn unwrap_data<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ProviderError> {
    #[derive(Deserialize)]
    struct Wrapped<T> {
        data: T,
    }
    let wrapped = matches!(
        serde_json::from_str::<Value>(body),
        Ok(Value::Object(ref o)) if o.contains_key("data")
    );
    let parsed = if wrapped {
        serde_json::from_str::<Wrapped<T>>(body).map(|w| w.data)
    } else {
        serde_json::from_str::<T>(body)
    };
    parsed.map_err(|e| ProviderError::Decode(e.to_string()))
}

/// A token answer's error without any part of the answer, which may hold a token.
fn unquoted(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::Decode(_) => ProviderError::Decode("token answer unreadable".into()),
        ProviderError::Http { status, .. } => ProviderError::Http {
            status,
            body: String::new(),
        },
        other => other,
    }
}

fn transaction_of(value: &Value) -> Transaction {
    Transaction {
        id: text_field(value, &["id"]).unwrap_or_default(),
        status: value
            .get("status")
            .and_then(|s| s.get("status").or(Some(s)))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        note: text_field(value, &["note"]),
    }
}

/// A token returned as a string, or as an object holding one.
fn token_text(data: &Value, operation: &str) -> Result<String, ProviderError> {
    let value = data.get(operation).unwrap_or(&Value::Null);
    match value {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        other => text_field(other, &["accessToken", "loginToken", "token"])
            .ok_or_else(|| ProviderError::Decode(format!("{operation} returned no token"))),
    }
}

/// Reads a GraphQL answer: the data, or the error in either documented shape.
pub fn graphql_answer(status: u16, body: &str) -> Result<Value, ProviderError> {
    if status == 401 || status == 403 {
        return Err(ProviderError::Unauthenticated);
    }
    // A server error leaves the outcome unknown, whatever its body says.
    if status >= 500 {
        return Err(ProviderError::Http {
            status,
            body: excerpt(body),
        });
    }
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return Err(if status >= 400 {
            ProviderError::Http {
                status,
                body: excerpt(body),
            }
        } else {
            ProviderError::Decode(excerpt(body))
        });
    };
    if let Some(first) = value
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        let code = first
            .get("code")
            .or_else(|| first.get("extensions").and_then(|x| x.get("code")))
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN")
            .to_string();
        let message = first
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if matches!(
            code.as_str(),
            "UNAUTHENTICATED" | "UNAUTHORIZED" | "FORBIDDEN"
        ) {
            return Err(ProviderError::Unauthenticated);
        }
        return Err(ProviderError::GraphQl {
            status,
            code,
            message,
        });
    }
    if let Some(error) = value.get("error") {
        let message = error
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| error.to_string());
        return Err(ProviderError::InvalidRequest { status, message });
    }
    if status >= 400 {
        return Err(ProviderError::Http {
            status,
            body: excerpt(body),
        });
    }
    match value.get("data") {
        Some(data) if !data.is_null() => Ok(data.clone()),
        _ => Err(ProviderError::Decode("no data".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_errors_in_both_documented_shapes_are_typed() {
        let listed = r#"{"errors":[{"code":"OPERATION_FAILED","message":"No InabitWalletSupportedPair found","path":["createInabitWalletSwap"],"extensions":{"code":"OPERATION_FAILED","message":"No InabitWalletSupportedPair found"}}],"data":null}"#;
        match graphql_answer(200, listed) {
            Err(ProviderError::GraphQl { code, message, .. }) => {
                assert_eq!(code, "OPERATION_FAILED");
                assert_eq!(message, "No InabitWalletSupportedPair found");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            graphql_answer(400, r#"{"error":"Invalid request"}"#),
            Err(ProviderError::InvalidRequest { message: m, .. }) if m == "Invalid request"
        ));
        assert!(matches!(
            graphql_answer(
                200,
                r#"{"errors":[{"message":"x","extensions":{"code":"UNAUTHENTICATED"}}]}"#
            ),
            Err(ProviderError::Unauthenticated)
        ));
        assert!(matches!(
            graphql_answer(502, "<html>bad gateway</html>"),
            Err(ProviderError::Http { status: 502, .. })
        ));
        // A 5xx is an unknown outcome even with a GraphQL error body; so is an unknown code.
        let e = graphql_answer(
            503,
            r#"{"errors":[{"code":"OPERATION_FAILED","message":"x"}]}"#,
        )
        .err()
        .unwrap_or(ProviderError::Timeout);
        assert!(matches!(e, ProviderError::Http { status: 503, .. }) && !e.is_refusal());
        let e = graphql_answer(200, r#"{"errors":[{"message":"something"}]}"#)
            .err()
            .unwrap_or(ProviderError::Timeout);
        assert!(matches!(e, ProviderError::GraphQl { .. }) && !e.is_refusal());
        let e = graphql_answer(429, r#"{"error":"Too many requests"}"#)
            .err()
            .unwrap_or(ProviderError::Timeout);
        assert!(!e.is_refusal(), "a 429 is no refusal: {e:?}");
        let e = graphql_answer(
            429,
            r#"{"errors":[{"code":"BAD_REQUEST","message":"slow down"}]}"#,
        )
        .err()
        .unwrap_or(ProviderError::Timeout);
        assert!(
            !e.is_refusal(),
            "a 429 is no refusal, whatever its code: {e:?}"
        );
        let e = graphql_answer(200, listed)
            .err()
            .unwrap_or(ProviderError::Timeout);
        assert!(e.is_refusal());
        assert_eq!(
            graphql_answer(200, r#"{"data":{"createWithdrawal":{"id":"w1"}}}"#).ok(),
            Some(serde_json::json!({"createWithdrawal":{"id":"w1"}}))
        );
    }
}
