//! The HTTP side of talking to a casino wallet: one signed POST, and what its answer means.
//!
//! Every call is `POST {walletUrl}/{path}` with a JWT as a JSON string literal for body; the
//! client reuses connections, follows no redirect and bounds each attempt by the operator's
//! timeout. No database connection is held here.

use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use rust_decimal::Decimal;
use serde_json::Value;

use super::keys::{Claims, KeyRing};
use super::settings::{Meaning, SeamlessSettings};
use crate::error::Error;

/// Paths of the casino API (contract section 1).
pub mod path {
    pub const USERS_DATA: &str = "users/data";
    pub const MAKE: &str = "payments/make";
    pub const MAKE_LIST: &str = "payments/make-list";
    pub const INFO: &str = "payments/info";
    pub const CLOSE: &str = "payments/close";
}

/// One HTTP exchange with a casino, as kept for audit, and what it meant.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub started: SystemTime,
    pub elapsed: Duration,
    pub http_status: Option<u16>,
    /// The answer's body (bounded), when one came.
    pub body: Option<String>,
    /// Why no usable answer came (timeout, transport), when none did.
    pub error: Option<String>,
    pub reply: Reply,
}

/// What an answer says.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An envelope with an `ErrorCode` croupier reads as `meaning`.
    Envelope {
        code: i64,
        meaning: Meaning,
        message: Option<String>,
        value: Value,
    },
    /// No envelope, a 5xx or 429, a timeout, a transport error: the outcome is unknown.
    Unknown,
}

impl Reply {
    pub fn meaning(&self) -> Meaning {
        match self {
            Reply::Envelope { meaning, .. } => *meaning,
            Reply::Unknown => Meaning::Unknown,
        }
    }

    /// A field of `Value` as text (a string, or a number written as one).
    pub fn value_text(&self, field: &str) -> Option<String> {
        match self {
            Reply::Envelope { value, .. } => match &value[field] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            },
            Reply::Unknown => None,
        }
    }

    /// A decimal field of `Value` (amounts and balances are decimal strings).
    pub fn value_decimal(&self, field: &str) -> Option<Decimal> {
        self.value_text(field)
            .and_then(|text| Decimal::from_str(&text).ok())
    }

    pub fn code(&self) -> Option<i64> {
        match self {
            Reply::Envelope { code, .. } => Some(*code),
            Reply::Unknown => None,
        }
    }

    pub fn message(&self) -> Option<String> {
        match self {
            Reply::Envelope { message, .. } => message.clone(),
            Reply::Unknown => None,
        }
    }

    pub fn value(&self) -> Option<&Value> {
        match self {
            Reply::Envelope { value, .. } => Some(value),
            Reply::Unknown => None,
        }
    }
}

/// Largest answer body kept.
pub const BODY_KEPT: usize = 4000;

/// The client every casino call goes through.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .user_agent(concat!("croupier/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Sends `data` to the operator's casino at `path`, signed now, within `timeout`.
pub async fn post(
    http: &reqwest::Client,
    keys: &KeyRing,
    settings: &SeamlessSettings,
    path: &str,
    data: &str,
    timeout: Duration,
) -> Result<Exchange, Error> {
    let signer = keys.signer().await?;
    // An RS256 signature takes about half a millisecond of CPU: made on a blocking thread,
    // so that the requests sharing this one (every provider call of an HTTP worker) go on
    // meanwhile.
    let (issuer, client_id, owned) = (
        keys.issuer().to_string(),
        settings.operator_id.clone(),
        data.to_string(),
    );
    let jwt =
        tokio::task::spawn_blocking(move || signer.sign(&Claims::now(&issuer, &client_id, &owned)))
            .await
            .map_err(|e| Error::Internal(e.into()))??;
    let body = serde_json::to_string(&jwt).map_err(|e| Error::Internal(e.into()))?;
    let url = format!("{}/{path}", settings.wallet_url.trim_end_matches('/'));
    let started = SystemTime::now();
    let clock = Instant::now();
    let sent = http
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(timeout)
        .body(body)
        .send()
        .await;
    let (http_status, text, error) = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(bytes) => (Some(status), Some(bytes), None),
                Err(e) => (Some(status), None, Some(describe(&e))),
            }
        }
        Err(e) => (None, None, Some(describe(&e))),
    };
    tracing::debug!(path, status = ?http_status, elapsed_ms = clock.elapsed().as_millis() as u64, error = ?error, "casino call");
    let reply = match (http_status, &text) {
        (Some(status), Some(bytes)) if status < 500 && status != 429 => {
            read_envelope(bytes, settings)
        }
        _ => Reply::Unknown,
    };
    Ok(Exchange {
        started,
        elapsed: clock.elapsed(),
        http_status,
        body: text.map(|b| {
            let text = String::from_utf8_lossy(&b);
            text.chars().take(BODY_KEPT).collect()
        }),
        error,
        reply,
    })
}

/// The envelope `{"ErrorCode", "Message", "Value"}`, if the body is one.
fn read_envelope(bytes: &[u8], settings: &SeamlessSettings) -> Reply {
    let Ok(Value::Object(mut envelope)) = serde_json::from_slice::<Value>(bytes) else {
        return Reply::Unknown;
    };
    let value = envelope.remove("Value").unwrap_or(Value::Null);
    reply_of(&envelope, value, settings)
}

/// What an object with an `ErrorCode` (and a `Message`) says, `value` being what it carries:
/// an envelope's `Value`, or a `make-list` result itself.
pub fn reply_of(
    object: &serde_json::Map<String, Value>,
    value: Value,
    settings: &SeamlessSettings,
) -> Reply {
    let Some(code) = object.get("ErrorCode").and_then(|c| match c {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }) else {
        return Reply::Unknown;
    };
    Reply::Envelope {
        code,
        meaning: settings.error_codes.meaning(code),
        message: object
            .get("Message")
            .and_then(Value::as_str)
            .map(|m| m.chars().take(500).collect()),
        value,
    }
}

/// A transport failure, without the URL (it may name internal hosts) or any secret.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_body() || e.is_decode() {
        "answer cut short".into()
    } else {
        "transport error".into()
    }
}

impl Exchange {
    /// Whether the casino could not be reached or did not answer (what the circuit breaker
    /// counts).
    pub fn transport_failed(&self) -> bool {
        self.http_status.is_none() || self.http_status.is_some_and(|s| s >= 500)
    }
}
