//! Seamless mode: a casino that keeps its players' money in its own wallet. Every provider
//! call on a seamless operator's session becomes money movements (legs) croupier sends to the
//! casino as RS256-signed JWTs; the casino calls back with its verdicts (`payments/accept`).
//!
//! - `keys`: the signing keys and the JWKS;
//! - `settings`: each seamless operator's wallet URL, timeouts and ErrorCode meanings;
//! - `tokens`: the bearer tokens the casino gets from `auth/token`;
//! - `admin`: the operator's mode and settings, key rotation;
//! - `casino`: one signed call to a casino and what its answer means;
//! - `engine`: provider calls forwarded as legs;
//! - `jobs`: retries, compensations, stuck legs and `payments/info`.
//!
//! Seamless work runs on a pool of its own and never holds a connection across a call to a
//! casino.

pub mod admin;
pub mod casino;
pub mod engine;
pub mod jobs;
pub mod keys;
pub mod settings;
pub mod tokens;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::Error;
pub use keys::{KeyRing, SigningConfig};
pub use settings::{ErrorCodes, Meaning, SeamlessSettings};

/// How long a seamless operator's settings are kept before they are read again (a change is
/// also announced by the database, which drops them at once).
const SETTINGS_TTL: Duration = Duration::from_secs(30);
/// `auth/verify` calls allowed per client address and second, and in a burst.
const VERIFY_PER_SECOND: u32 = 20;
const VERIFY_BURST: u32 = 40;

/// What the seamless part of a server shares.
pub struct Seamless {
    pool: Pool,
    /// The bet path's pool, for the one read a transfer bet makes here (the operator's mode,
    /// cached): its connections are warm.
    lookups: Pool,
    pub keys: KeyRing,
    /// Settings by operator id; `None`: a transfer operator.
    settings: moka::sync::Cache<String, Option<Arc<SeamlessSettings>>>,
    verify_limit: DefaultKeyedRateLimiter<IpAddr>,
    /// The client of every casino call.
    http: reqwest::Client,
    /// This process's name on the legs it leases.
    owner: uuid::Uuid,
    breakers: engine::Breakers,
    /// Casino balances by (operator, player), served while the casino is slow.
    balances: moka::sync::Cache<(String, String), (rust_decimal::Decimal, std::time::Instant)>,
}

impl Seamless {
    /// `pool` is the seamless pool, never the one bets run on; `lookups` the bets' pool, for
    /// the operators' settings.
    pub fn new(pool: Pool, lookups: Pool, signing: SigningConfig) -> anyhow::Result<Self> {
        Ok(Self {
            lookups,
            keys: KeyRing::new(pool.clone(), signing),
            settings: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(SETTINGS_TTL)
                .build(),
            verify_limit: RateLimiter::keyed(
                Quota::per_second(NonZeroU32::new(VERIFY_PER_SECOND).unwrap_or(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(VERIFY_BURST).unwrap_or(NonZeroU32::MIN)),
            ),
            http: casino::http_client()?,
            owner: uuid::Uuid::new_v4(),
            breakers: engine::Breakers::default(),
            balances: engine::balance_cache(),
            pool,
        })
    }

    /// Whether `peer` may call `auth/verify` now.
    pub fn verify_allowed(&self, peer: IpAddr) -> bool {
        if self.verify_limit.len() > 10_000 {
            self.verify_limit.retain_recent();
        }
        self.verify_limit.check_key(&peer).is_ok()
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The operator's seamless settings, or `None` for a transfer operator.
    pub async fn settings(&self, operator: &str) -> Result<Option<Arc<SeamlessSettings>>, Error> {
        if let Some(known) = self.settings.get(operator) {
            return Ok(known);
        }
        let row = self
            .lookups
            .get()
            .await?
            .query_opt(
                &format!(
                    "SELECT {} FROM seamless_operators WHERE operator_id = $1",
                    SeamlessSettings::COLUMNS
                ),
                &[&operator],
            )
            .await?;
        let settings = match row {
            Some(row) => Some(Arc::new(SeamlessSettings::from_row(&row)?)),
            None => None,
        };
        self.settings.insert(operator.to_string(), settings.clone());
        Ok(settings)
    }

    /// Refuses an operation that moves money held at croupier for a seamless operator.
    pub async fn refuse_if_seamless(&self, operator: &str) -> Result<(), Error> {
        match self.settings(operator).await? {
            Some(_) => Err(Error::SeamlessOperator),
            None => Ok(()),
        }
    }

    /// Drops the cached settings of `operator` (its row changed).
    pub fn forget(&self, operator: &str) {
        self.settings.invalidate(operator);
    }

    /// Drops every cached setting (changes may have been missed).
    pub fn forget_all(&self) {
        self.settings.invalidate_all();
    }
}

text_enum! {
    /// What became of a casino's `payments/accept`.
    AcceptOutcome {
        Recorded = "recorded",
        Duplicate = "duplicate",
        Discrepancy = "discrepancy",
        Pending = "pending",
    }
}

impl AcceptOutcome {
    /// The `Message` the casino is answered with (always `ErrorCode` 200: the verdict is kept
    /// and sending it again changes nothing).
    pub fn message(self) -> &'static str {
        match self {
            AcceptOutcome::Recorded => "Success",
            AcceptOutcome::Duplicate => "Success: already recorded",
            AcceptOutcome::Discrepancy => {
                "Recorded as a discrepancy: it contradicts the recorded verdict or names no movement croupier sent"
            }
            AcceptOutcome::Pending => "Success: still pending",
        }
    }
}

impl Seamless {
    /// A casino's final verdict on one of its movements (`payments/accept`). The first final
    /// verdict wins; a contradiction is recorded and changes nothing.
    #[allow(clippy::too_many_arguments)]
    pub async fn accept(
        &self,
        operator: &str,
        bet_no: i64,
        transaction_type: i16,
        code: i64,
        meaning: Meaning,
        partner_tx: Option<&str>,
        amount: Option<rust_decimal::Decimal>,
        balance: Option<rust_decimal::Decimal>,
        message: Option<&str>,
        reported: &serde_json::Value,
    ) -> Result<AcceptOutcome, Error> {
        let meaning = match meaning {
            Meaning::Accepted | Meaning::Unknown => None,
            other => Some(other.as_str()),
        };
        let row = self
            .pool
            .get()
            .await?
            .query_one(
                "SELECT seamless_accept($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &operator,
                    &bet_no,
                    &transaction_type,
                    &meaning,
                    &code,
                    &partner_tx,
                    &amount,
                    &balance,
                    &message,
                    reported,
                ],
            )
            .await?;
        let outcome = AcceptOutcome::parse(row.try_get(0)?)?;
        if outcome == AcceptOutcome::Discrepancy {
            tracing::warn!(
                operator,
                bet_no,
                transaction_type,
                code,
                "casino verdict contradicts the record"
            );
        }
        Ok(outcome)
    }
}
