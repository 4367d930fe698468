//! What the provider clients share: their typed errors and JSON helpers.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::{Error, IntegrationCause};

/// Why a provider call failed. Never carries a token, key or secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    #[error("no answer in time")]
    Timeout,
    #[error("transport error: {0}")]
    Transport(String),
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("authentication refused")]
    Unauthenticated,
    /// `{"errors":[{"code","message",…}],"data":null}`
    #[error("GraphQL error {code} (HTTP {status}): {message}")]
    GraphQl {
        status: u16,
        code: String,
        message: String,
    },
    /// `{"error":"Invalid request"}`
    #[error("invalid request (HTTP {status}): {message}")]
    InvalidRequest { status: u16, message: String },
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl ProviderError {
    /// Whether the provider certainly did not act on the call (it refused it). A timeout, a
    /// transport error or a 5xx leaves the outcome unknown.
    pub fn is_refusal(&self) -> bool {
        // An answer that refuses the request itself: 200 (a GraphQL error) or a 4xx other than
        // authentication, timeout, conflict and rate limit.
        let refused = |status: &u16| {
            *status == 200
                || ((400..500).contains(status) && !matches!(status, 401 | 403 | 408 | 409 | 429))
        };
        match self {
            // Only codes that say the request itself was refused; an unknown code or an
            // internal error leaves the outcome unknown.
            ProviderError::GraphQl { status, code, .. } => {
                refused(status)
                    && matches!(
                        code.as_str(),
                        "OPERATION_FAILED"
                            | "BAD_USER_INPUT"
                            | "BAD_REQUEST"
                            | "GRAPHQL_VALIDATION_FAILED"
                    )
            }
            ProviderError::InvalidRequest { status, .. } => refused(status),
            ProviderError::Http { status, .. } => *status != 200 && refused(status),
            _ => false,
        }
    }

    /// What the failure means for the caller of our API: whether asking again may help.
    pub fn cause(&self) -> IntegrationCause {
        let busy = |status: &u16| *status >= 500 || matches!(status, 408 | 429);
        match self {
            ProviderError::NotConfigured(_) => IntegrationCause::NotConfigured,
            ProviderError::Timeout => IntegrationCause::Timeout,
            ProviderError::Transport(_) => IntegrationCause::Transport,
            ProviderError::Http { status, .. }
            | ProviderError::GraphQl { status, .. }
            | ProviderError::InvalidRequest { status, .. }
                if busy(status) =>
            {
                IntegrationCause::Unavailable
            }
            ProviderError::Http { .. }
            | ProviderError::GraphQl { .. }
            | ProviderError::InvalidRequest { .. }
            | ProviderError::Unauthenticated
            | ProviderError::Decode(_) => IntegrationCause::Refused,
        }
    }

    pub fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            ProviderError::Timeout
        } else {
            // Without the URL: it is configuration, and the error is logged.
            ProviderError::Transport(e.without_url().to_string())
        }
    }
}

impl From<ProviderError> for Error {
    fn from(e: ProviderError) -> Self {
        Error::Integration {
            cause: e.cause(),
            message: e.to_string(),
        }
    }
}

/// At most 300 characters of a provider's answer, for logs and error records.
pub fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}

/// A field of `value` or of `value.data`, whichever has it.
pub fn field<'a>(value: &'a Value, names: &[&str]) -> Option<&'a Value> {
    for scope in [Some(value), value.get("data")].into_iter().flatten() {
        for name in names {
            if let Some(v) = scope.get(*name) {
                if !v.is_null() {
                    return Some(v);
                }
            }
        }
    }
    None
}

pub fn text_field(value: &Value, names: &[&str]) -> Option<String> {
    match field(value, names)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An exact decimal from the raw JSON text of a string or a number (`"0.1"` or `0.1`): read
/// from the text, never through a float.
pub fn decimal(raw: &serde_json::value::RawValue) -> Option<Decimal> {
    let text = raw.get().trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .ok()
}

/// Sends a request and reads the whole answer: (HTTP status, body).
pub async fn exchange(request: reqwest::RequestBuilder) -> Result<(u16, String), ProviderError> {
    let response = request.send().await.map_err(ProviderError::from_reqwest)?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(ProviderError::from_reqwest)?;
    Ok((status, body))
}

/// The error of a non-2xx answer; `body` is quoted (shortened) unless it may hold a secret.
pub fn failure(status: u16, body: Option<&str>) -> ProviderError {
    match status {
        401 | 403 => ProviderError::Unauthenticated,
        _ => ProviderError::Http {
            status,
            body: body.map(excerpt).unwrap_or_default(),
        },
    }
}

/// A bearer token kept in memory: renewed when due, one renewal in flight at a time (the
/// others wait for it and use its result), and replaced when the provider has just refused
/// it (`stale`) unless another caller replaced it already.
#[derive(Default)]
pub struct TokenCache {
    slot: tokio::sync::Mutex<Option<(String, std::time::Instant)>>,
}

impl TokenCache {
    /// The token; `fetch` gets a new one and says how long to use it.
    pub async fn get<F, Fut>(&self, stale: Option<&str>, fetch: F) -> Result<String, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(String, std::time::Duration), ProviderError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((token, renew_at)) = slot.as_ref() {
            if std::time::Instant::now() < *renew_at && stale != Some(token.as_str()) {
                return Ok(token.clone());
            }
        }
        let (token, use_for) = fetch().await?;
        *slot = Some((token.clone(), std::time::Instant::now() + use_for));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_that_may_answer_later_is_retryable_and_a_refusal_is_not() {
        let http = |status| ProviderError::Http {
            status,
            body: String::new(),
        };
        let retryable = |e: ProviderError| Error::from(e).retryable();
        assert!(retryable(ProviderError::Timeout));
        assert!(retryable(ProviderError::Transport("reset".into())));
        assert!(retryable(http(503)));
        assert!(retryable(http(429)));
        assert!(!retryable(http(400)));
        assert!(!retryable(ProviderError::InvalidRequest {
            status: 400,
            message: "Invalid request".into()
        }));
        assert!(!retryable(ProviderError::Unauthenticated));
        assert!(!retryable(ProviderError::NotConfigured("the key")));
        assert_eq!(http(502).cause(), IntegrationCause::Unavailable);
        assert_eq!(http(404).cause(), IntegrationCause::Refused);
    }
}
