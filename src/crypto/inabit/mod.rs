//! inabit client: the Platform GraphQL API (`graphql`: withdrawals, transaction status,
//! tokens) and the Terminal REST API (`terminal`: per-customer deposit addresses, deposits).
//!
//! Tokens: the login token (30 days) lives in the database, so a restart or a second server
//! uses the current one; `refresh_login_token` replaces it well before it expires. The access
//! token (minutes) lives in memory; one renewal runs at a time (the others wait for it), it is
//! renewed after two thirds of its lifetime, and fetched again once when inabit refuses it.

mod graphql;
mod terminal;

use std::time::Duration;

use deadpool_postgres::Pool;
use serde_json::Value;

use super::http::{text_field, ProviderError, TokenCache};
use super::sql;
pub use graphql::{graphql_answer, Transaction};
pub use terminal::Listed;

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

/// A database failure met while getting a token, as a provider error (the call cannot go
/// out).
fn database(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Transport(format!("database: {e}"))
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
                .execute(sql::SEED_LOGIN_TOKEN, &[&LOGIN_TOKEN, token])
                .await?;
        }
        Ok(())
    }

    async fn login_token(&self) -> Result<String, ProviderError> {
        let client = self.pool.get().await.map_err(database)?;
        let row = client
            .query_opt(sql::LOGIN_TOKEN, &[&LOGIN_TOKEN])
            .await
            .map_err(database)?;
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

    /// Replaces the stored login token with a fresh one from `refreshApiUserLoginToken`.
    pub async fn refresh_login_token(&self) -> Result<(), ProviderError> {
        let login = self.login_token().await?;
        let data = self
            .post_graphql(&login, "query { refreshApiUserLoginToken }", Value::Null)
            .await
            .map_err(unquoted)?;
        let token = token_text(&data, "refreshApiUserLoginToken")?;
        let client = self.pool.get().await.map_err(database)?;
        client
            .execute(sql::REPLACE_LOGIN_TOKEN, &[&LOGIN_TOKEN, &token])
            .await
            .map_err(database)?;
        Ok(())
    }

    /// Whether the login token is old enough to refresh.
    pub async fn login_refresh_due(&self) -> anyhow::Result<bool> {
        let client = self.pool.get().await?;
        let after_s = i64::try_from(self.config.login_refresh_after.as_secs()).unwrap_or(i64::MAX);
        let row = client
            .query_opt(sql::LOGIN_REFRESH_DUE, &[&LOGIN_TOKEN, &after_s])
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
            .execute(sql::LOGIN_REFRESH_FAILED, &[&LOGIN_TOKEN, &error])
            .await?;
        Ok(())
    }

    /// Checks that a withdrawal can be sent now (an access token at hand), so that a failure
    /// here is known not to have reached inabit.
    pub async fn ready_to_withdraw(&self) -> Result<(), ProviderError> {
        self.access_token(None).await.map(|_| ())
    }
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

/// A token returned as a string, or as an object holding one.
fn token_text(data: &Value, operation: &str) -> Result<String, ProviderError> {
    let value = data.get(operation).unwrap_or(&Value::Null);
    match value {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        other => text_field(other, &["accessToken", "loginToken", "token"])
            .ok_or_else(|| ProviderError::Decode(format!("{operation} returned no token"))),
    }
}
