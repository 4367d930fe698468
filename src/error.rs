//! The crate's one error type. Each audience maps it to its own wire codes in one place
//! (`api::provider::wire_code` for the Betcore `_responseCode`); each error knows whether the
//! caller may retry.

use crate::money::MoneyError;

/// Why a request's authentication failed. Never carries the secret or the expected signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("X-Timestamp is not a number of milliseconds")]
    BadTimestamp,
    #[error("X-Timestamp is more than 30 s from now")]
    Expired,
    #[error("X-Request-Id is not 32 hex digits")]
    BadRequestId,
    #[error("X-Sign is not 64 hex digits")]
    BadSignFormat,
    #[error("unknown counterparty")]
    UnknownCounterparty,
    #[error("counterparty may not use this API")]
    WrongRole,
    #[error("signature mismatch")]
    BadSignature,
    #[error("X-Request-Id already used")]
    Replayed,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthFailure),
    #[error("counterparty disabled")]
    CounterpartyDisabled,
    #[error("missing field {0}")]
    MissingField(String),
    /// Unreadable body, bad JSON, a field of the wrong type.
    #[error("malformed request: {0}")]
    BadFormat(String),
    /// Well-formed but not acceptable (out of range, unknown reference, wrong length).
    #[error("bad value: {0}")]
    BadValue(String),
    #[error("{0}")]
    Amount(#[from] MoneyError),
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("session not found, expired or closed")]
    SessionNotFound,
    #[error("bet not found")]
    BetNotFound,
    #[error("bet already closed")]
    BetClosed,
    #[error("player blocked")]
    PlayerBlocked,
    #[error("player not found")]
    PlayerNotFound,
    #[error("the same key was used with different data")]
    Conflict,
    #[error("transaction not found")]
    TransactionNotFound,
    /// A seamless casino refused a movement for a reason with no provider code of its own
    /// (its "error adding transaction", a conflicting repeat): nothing was applied, and a
    /// repeat gets the same answer.
    #[error("the casino refused: {0}")]
    CasinoRefused(String),
    /// A seamless casino's verdict did not arrive in time: the movement may or may not be
    /// applied. The provider repeats the same call (same betId) or sends Refund.
    #[error(
        "not confirmed by the casino yet: repeat the same call with the same betId, or send Refund"
    )]
    NotConfirmed,
    /// A transfer-mode operation (a deposit, a withdrawal, a crypto payment) for an operator
    /// in seamless mode, whose players' money stays in its own wallet.
    #[error("the operator is in seamless mode: its players' money stays in its own wallet")]
    SeamlessOperator,
    /// A counterparty's integration is not set up or failed (e.g. no launch URL, a crypto
    /// provider that timed out or refused); `cause` says whether asking again may help.
    #[error("integration failure: {message}")]
    Integration {
        cause: IntegrationCause,
        message: String,
    },
    /// The database could not be reached or gave up on the statement (connection lost, pool
    /// exhausted, shutdown, serialization failure). Nothing was applied; a retry may succeed.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or an unexpected database answer.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Why an integration failed, as far as the caller's next step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationCause {
    /// Not set up on our side (no key, no rate, no provider ids): fixed by configuration.
    NotConfigured,
    /// The provider gave no answer in time; it may or may not have acted.
    Timeout,
    /// The connection failed or broke.
    Transport,
    /// The provider answered that it cannot serve now (5xx, 408, 429).
    Unavailable,
    /// The provider answered and refused (or answered what cannot be read): the same
    /// request gets the same answer.
    Refused,
}

impl IntegrationCause {
    /// Whether the same request may succeed if sent again unchanged.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            IntegrationCause::Timeout | IntegrationCause::Transport | IntegrationCause::Unavailable
        )
    }
}

impl Error {
    /// Whether the same request may succeed if sent again unchanged.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Unavailable(_) | Error::Internal(_) | Error::NotConfirmed => true,
            Error::Integration { cause, .. } => cause.retryable(),
            _ => false,
        }
    }

    /// An integration that is not set up on our side.
    pub fn not_configured(what: impl Into<String>) -> Self {
        Error::Integration {
            cause: IntegrationCause::NotConfigured,
            message: what.into(),
        }
    }

    pub fn bad_format(what: impl Into<String>) -> Self {
        Error::BadFormat(what.into())
    }

    pub fn bad_value(what: impl Into<String>) -> Self {
        Error::BadValue(what.into())
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        let transient = match e.as_db_error() {
            // No server error: the connection broke or could not be made.
            None => true,
            Some(db) => {
                let code = db.code().code();
                // 08 connection, 53 resources, 57 operator intervention (shutdown),
                // 40001 serialization failure, 40P01 deadlock.
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57")
                    || code == "40001"
                    || code == "40P01"
            }
        };
        if transient {
            Error::Unavailable(e.into())
        } else {
            Error::Internal(e.into())
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Error::Unavailable(other.into()),
        }
    }
}
