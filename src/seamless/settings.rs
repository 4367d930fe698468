//! A seamless operator's settings: where its wallet is, how long croupier waits for it, and
//! what its ErrorCodes mean.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::error::Error;

text_enum! {
    /// What a casino's `ErrorCode` means to croupier (contract section 1).
    Meaning {
        /// Final: the movement is applied.
        Applied = "applied",
        /// Final refusals, each with its own provider code.
        InsufficientFunds = "insufficient_funds",
        UserNotFound = "user_not_found",
        IncorrectAmount = "incorrect_amount",
        Blocked = "blocked",
        /// Final refusal for any other reason: nothing applied.
        Refused = "refused",
        /// The transaction is not known to the casino: for a return, nothing to return.
        NotFound = "not_found",
        /// The same (BetId, TransactionType) with another amount: a final refusal, and an alarm.
        Conflict = "conflict",
        /// Accepted, the verdict follows by `payments/accept`.
        Accepted = "accepted",
        /// Anything else: the outcome is unknown.
        Unknown = "unknown",
    }
}

/// The contract's default mapping.
pub const DEFAULT_CODES: &[(i64, Meaning)] = &[
    (200, Meaning::Applied),
    (102145, Meaning::UserNotFound),
    (103801, Meaning::IncorrectAmount),
    (102823, Meaning::Refused),
    (402, Meaning::InsufficientFunds),
    (403, Meaning::Blocked),
    (404, Meaning::NotFound),
    (409, Meaning::Conflict),
    (202, Meaning::Accepted),
];

/// The casino ErrorCodes of one operator: the defaults with the operator's overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCodes {
    /// Only what differs from the defaults (as stored).
    overrides: BTreeMap<i64, Meaning>,
}

impl ErrorCodes {
    pub fn defaults() -> Self {
        Self {
            overrides: BTreeMap::new(),
        }
    }

    /// What `code` means: an override, a default, or unknown.
    pub fn meaning(&self, code: i64) -> Meaning {
        if let Some(meaning) = self.overrides.get(&code) {
            return *meaning;
        }
        DEFAULT_CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(Meaning::Unknown, |(_, m)| *m)
    }

    /// Overrides from their stored form, `{"<code>": "<meaning>"}`.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, Error> {
        let object = value
            .as_object()
            .ok_or_else(|| Error::bad_value("error codes must be a JSON object"))?;
        let mut overrides = BTreeMap::new();
        for (code, meaning) in object {
            let code: i64 = code
                .parse()
                .map_err(|_| Error::bad_value(format!("{code:?} is not a numeric ErrorCode")))?;
            let meaning = meaning
                .as_str()
                .and_then(|m| Meaning::parse(m).ok())
                .ok_or_else(|| {
                    Error::bad_value(format!(
                        "ErrorCode {code}: the meaning must be one of {}",
                        Meaning::ALL
                            .iter()
                            .map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            overrides.insert(code, meaning);
        }
        Ok(Self { overrides })
    }

    pub fn to_json(&self) -> serde_json::Value {
        self.overrides
            .iter()
            .map(|(code, meaning)| (code.to_string(), meaning.as_str().into()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// The whole table in effect, for display.
    pub fn table(&self) -> BTreeMap<i64, Meaning> {
        let mut table: BTreeMap<i64, Meaning> = DEFAULT_CODES.iter().copied().collect();
        table.extend(self.overrides.iter().map(|(c, m)| (*c, *m)));
        table
    }
}

impl Meaning {
    pub const ALL: &'static [Meaning] = &[
        Meaning::Applied,
        Meaning::InsufficientFunds,
        Meaning::UserNotFound,
        Meaning::IncorrectAmount,
        Meaning::Blocked,
        Meaning::Refused,
        Meaning::NotFound,
        Meaning::Conflict,
        Meaning::Accepted,
        Meaning::Unknown,
    ];
}

/// Everything croupier needs to forward an operator's movements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeamlessSettings {
    pub operator_id: String,
    /// The casino's base URL; calls go to `{wallet_url}/users/data` and so on.
    pub wallet_url: String,
    /// How long one HTTP attempt may take.
    pub attempt_timeout: Duration,
    /// How long a provider waits for its answer, whatever happens at the casino.
    pub provider_deadline: Duration,
    /// How long a credit is retried before it is marked stuck.
    pub retry_horizon: Duration,
    /// How long an unconfirmed debit waits for the provider's repeat or Refund before
    /// croupier compensates it.
    pub abandon_after: Duration,
    /// Whether a settled bet is followed by `payments/close`.
    pub send_close: bool,
    /// Whether concurrent movements are combined into one `payments/make-list` call.
    pub make_list: bool,
    pub error_codes: ErrorCodes,
}

impl SeamlessSettings {
    /// The contract's defaults for a wallet at `wallet_url`.
    pub fn defaults(operator_id: &str, wallet_url: &str) -> Self {
        Self {
            operator_id: operator_id.to_string(),
            wallet_url: wallet_url.to_string(),
            attempt_timeout: Duration::from_secs(3),
            provider_deadline: Duration::from_secs(8),
            retry_horizon: Duration::from_secs(24 * 3600),
            abandon_after: Duration::from_secs(60),
            send_close: true,
            make_list: false,
            error_codes: ErrorCodes::defaults(),
        }
    }

    /// The columns of `seamless_operators` every query of settings selects, in this order.
    pub const COLUMNS: &'static str = "operator_id, wallet_url, attempt_timeout_ms, \
        provider_deadline_ms, retry_horizon_s, abandon_after_s, send_close, make_list, error_codes";

    pub fn from_row(row: &tokio_postgres::Row) -> Result<Self, Error> {
        let ms = |i: usize| -> Result<Duration, Error> {
            Ok(Duration::from_millis(
                u64::try_from(row.try_get::<_, i32>(i)?).unwrap_or(0),
            ))
        };
        let s = |i: usize| -> Result<Duration, Error> {
            Ok(Duration::from_secs(
                u64::try_from(row.try_get::<_, i32>(i)?).unwrap_or(0),
            ))
        };
        Ok(Self {
            operator_id: row.try_get(0)?,
            wallet_url: row.try_get(1)?,
            attempt_timeout: ms(2)?,
            provider_deadline: ms(3)?,
            retry_horizon: s(4)?,
            abandon_after: s(5)?,
            send_close: row.try_get(6)?,
            make_list: row.try_get(7)?,
            error_codes: ErrorCodes::from_json(&row.try_get::<_, serde_json::Value>(8)?)?,
        })
    }

    /// As `admin operator show` prints it.
    pub fn view(&self) -> SettingsView<'_> {
        SettingsView {
            id: &self.operator_id,
            mode: "seamless",
            wallet_url: &self.wallet_url,
            attempt_timeout_ms: self.attempt_timeout.as_millis() as u64,
            provider_deadline_ms: self.provider_deadline.as_millis() as u64,
            retry_horizon_s: self.retry_horizon.as_secs(),
            abandon_after_s: self.abandon_after.as_secs(),
            send_close: self.send_close,
            make_list: self.make_list,
            error_codes: self
                .error_codes
                .table()
                .into_iter()
                .map(|(c, m)| (c.to_string(), m.as_str()))
                .collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView<'a> {
    pub id: &'a str,
    pub mode: &'static str,
    pub wallet_url: &'a str,
    pub attempt_timeout_ms: u64,
    pub provider_deadline_ms: u64,
    pub retry_horizon_s: u64,
    pub abandon_after_s: u64,
    pub send_close: bool,
    pub make_list: bool,
    pub error_codes: BTreeMap<String, &'static str>,
}

/// Checks a wallet URL: http(s), no credentials in it, not too long.
pub fn check_wallet_url(url: &str) -> Result<(), Error> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| Error::bad_value("the wallet URL is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::bad_value("the wallet URL must be http(s)://host/…"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::bad_value(
            "the wallet URL must not carry credentials",
        ));
    }
    if url.len() > 2000 || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::bad_value(
            "the wallet URL must be a base URL of at most 2000 characters, without query",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract_and_overrides_win() {
        let codes = ErrorCodes::defaults();
        assert_eq!(codes.meaning(200), Meaning::Applied);
        assert_eq!(codes.meaning(402), Meaning::InsufficientFunds);
        assert_eq!(codes.meaning(102823), Meaning::Refused);
        assert_eq!(codes.meaning(500), Meaning::Unknown);
        let custom = ErrorCodes::from_json(
            &serde_json::json!({"7": "insufficient_funds", "402": "unknown"}),
        )
        .expect("valid overrides");
        assert_eq!(custom.meaning(7), Meaning::InsufficientFunds);
        assert_eq!(custom.meaning(402), Meaning::Unknown);
        assert_eq!(custom.meaning(403), Meaning::Blocked);
        assert_eq!(
            ErrorCodes::from_json(&custom.to_json()).expect("round trip"),
            custom
        );
        assert!(ErrorCodes::from_json(&serde_json::json!({"x": "applied"})).is_err());
        assert!(ErrorCodes::from_json(&serde_json::json!({"1": "paid"})).is_err());
    }

    #[test]
    fn wallet_urls_are_plain_http_base_urls() {
        assert!(check_wallet_url("https://casino.example/wallet").is_ok());
        assert!(check_wallet_url("http://127.0.0.1:9000").is_ok());
        for bad in [
            "ftp://casino.example",
            "casino.example",
            "https://user:pw@casino.example",
            "https://casino.example/?a=1",
            "",
        ] {
            assert!(check_wallet_url(bad).is_err(), "{bad}");
        }
    }
}
