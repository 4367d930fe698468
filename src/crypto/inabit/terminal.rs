//! The Terminal REST API (server key): customers and their deposit addresses, and the
//! deposits themselves, read one by one or listed in update order.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::Inabit;
use crate::crypto::http::{self, excerpt, exchange, failure, text_field, ProviderError};
use crate::ledger::crypto::DepositReport;

/// What is escaped in an id put in a URL path: everything but the unreserved characters.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

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
            coin_amount: http::decimal(&amount).ok_or_else(|| missing("a decimal amount"))?,
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
            .filter(|uuid| !uuid.is_empty())
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
