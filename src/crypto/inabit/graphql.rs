//! The Platform GraphQL API: operations as the API Admin user, withdrawals, transactions,
//! and the reading of GraphQL answers (data, or an error in either documented shape).

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::Inabit;
use crate::crypto::http::{excerpt, exchange, text_field, ProviderError};
use crate::crypto::AssetIds;

/// A withdrawal or deposit as `transaction(where: {id})` reports it.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub id: String,
    pub status: String,
    pub note: Option<String>,
    /// The wallet it leaves from.
    pub wallet_id: Option<String>,
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

impl Inabit {
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

    pub(super) async fn post_graphql<V: Serialize>(
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

    /// Creates a withdrawal from the payout wallet; `note` carries our payout id. Returns
    /// inabit's id of it.
    pub async fn create_withdrawal(
        &self,
        wallet: &str,
        ids: &AssetIds,
        address: &str,
        amount: Decimal,
        note: &str,
    ) -> Result<String, ProviderError> {
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
                   transaction(where: $where) { id note status { status } wallet { id } } }",
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
                   transactions(where: $where) { id note status { status } wallet { id } } }",
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
        wallet_id: value.get("wallet").and_then(|w| text_field(w, &["id"])),
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
