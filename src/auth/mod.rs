//! Request signing: every inbound call carries `X-Counterparty-Id`, `X-Timestamp` (ms),
//! `X-Request-Id` (32 hex digits, a nonce) and `X-Sign`:
//!
//! ```text
//! X-Sign = hex(HMAC-SHA256(secret, body "." counterpartyId "." timestamp "." requestId))   (POST)
//! X-Sign = hex(HMAC-SHA256(secret, counterpartyId "." timestamp "." requestId))            (GET)
//! ```
//!
//! Checked over the raw body bytes before any parsing, compared in constant time. A timestamp
//! more than 30 s from now is refused; a request id already used by the same counterparty is
//! refused, by any croupier on the database, before or after a restart (`nonces`: method and
//! path are not signed, so a replayed body could otherwise be pointed at another session or
//! endpoint). Nonces are recorded only after the signature is verified, so nobody without the
//! secret can fill the nonce store.

mod nonces;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::HeaderMap;
use deadpool_postgres::Pool;
use hmac::{Hmac, Mac};
use moka::sync::Cache;
use sha2::Sha256;
use uuid::Uuid;

use crate::error::{AuthFailure, Error};

type HmacSha256 = Hmac<Sha256>;

pub const HEADER_COUNTERPARTY: &str = "X-Counterparty-Id";
pub const HEADER_TIMESTAMP: &str = "X-Timestamp";
pub const HEADER_REQUEST_ID: &str = "X-Request-Id";
pub const HEADER_SIGN: &str = "X-Sign";

/// Largest accepted distance between `X-Timestamp` and our clock.
pub const TIMESTAMP_WINDOW_MS: u64 = 30_000;

pub use nonces::NONCE_MEMORY;

/// Computes `X-Sign` for a request. `body` is `None` for a GET.
pub fn sign(
    secret: &[u8],
    body: Option<&[u8]>,
    counterparty_id: &str,
    timestamp: &str,
    request_id: &str,
) -> String {
    let mut mac = keyed(secret);
    feed(&mut mac, body, counterparty_id, timestamp, request_id);
    hex::encode(mac.finalize().into_bytes())
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

fn feed(
    mac: &mut HmacSha256,
    body: Option<&[u8]>,
    counterparty_id: &str,
    timestamp: &str,
    request_id: &str,
) {
    if let Some(body) = body {
        mac.update(body);
        mac.update(b".");
    }
    mac.update(counterparty_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(request_id.as_bytes());
}

text_enum! {
    /// Who a counterparty is (`counterparties.role`).
    Role {
        Provider = "provider",
        Operator = "operator",
    }
}

text_enum! {
    /// Whether a counterparty may call (`counterparties.status`).
    CounterpartyStatus {
        Active = "active",
        Disabled = "disabled",
    }
}

/// Whether `text` has the shape of a counterparty id (`counterparties_id_shape`: 1 to 64
/// letters, digits, `.`, `_` or `-`). Any other text names nobody, and is answered so without
/// asking the database (which could not even compare a NUL byte).
pub fn is_counterparty_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Someone who calls us. The secret is held only as a keyed HMAC state: it is never printed.
#[derive(Clone)]
pub struct Counterparty {
    pub id: String,
    pub role: Role,
    pub active: bool,
    /// Providers: a PayOut for an unknown betId is a standalone win (else "bet not found").
    pub standalone_wins: bool,
    mac: HmacSha256,
}

impl fmt::Debug for Counterparty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counterparty")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Counterparty {
    pub fn new(id: String, role: Role, active: bool, standalone_wins: bool, secret: &str) -> Self {
        Self {
            id,
            role,
            active,
            standalone_wins,
            mac: keyed(secret.as_bytes()),
        }
    }

    /// Constant-time check of `sign` (raw hex from the header) over the request.
    pub fn verify(
        &self,
        body: Option<&[u8]>,
        timestamp: &str,
        request_id: &str,
        sign: &str,
    ) -> bool {
        let mut expected = [0u8; 32];
        if hex::decode_to_slice(sign, &mut expected).is_err() {
            return false;
        }
        let mut mac = self.mac.clone();
        feed(&mut mac, body, &self.id, timestamp, request_id);
        mac.verify_slice(&expected).is_ok()
    }
}

/// The four signing headers of a request, checked for shape and for the timestamp window;
/// the counterparty, the signature and the request id's first use are checked after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningHeaders<'a> {
    pub counterparty_id: &'a str,
    /// The header's text, as signed.
    pub timestamp: &'a str,
    pub stamped_ms: u64,
    /// The header's text, as signed.
    pub request_id: &'a str,
    pub nonce: u128,
    /// 64 characters (hex digits, checked with the signature).
    pub sign: &'a str,
}

impl<'a> SigningHeaders<'a> {
    /// Reads the headers, refusing them in this order: a missing one, a timestamp that is
    /// not a number, one more than `TIMESTAMP_WINDOW_MS` from `now_ms`, a request id that is
    /// not 32 hex digits, a sign of another length.
    pub fn parse(headers: &'a HeaderMap, now_ms: u64) -> Result<Self, AuthFailure> {
        let counterparty_id = header(headers, HEADER_COUNTERPARTY)?;
        let timestamp = header(headers, HEADER_TIMESTAMP)?;
        let request_id = header(headers, HEADER_REQUEST_ID)?;
        let sign = header(headers, HEADER_SIGN)?;
        let stamped_ms: u64 = timestamp.parse().map_err(|_| AuthFailure::BadTimestamp)?;
        if now_ms.abs_diff(stamped_ms) > TIMESTAMP_WINDOW_MS {
            return Err(AuthFailure::Expired);
        }
        let nonce = parse_request_id(request_id)?;
        if sign.len() != 64 {
            return Err(AuthFailure::BadSignFormat);
        }
        Ok(Self {
            counterparty_id,
            timestamp,
            stamped_ms,
            request_id,
            nonce,
            sign,
        })
    }
}

/// Authenticates requests: counterparty lookup (cached), timestamp, signature, nonce.
pub struct Authenticator {
    pool: Pool,
    counterparties: Cache<String, Arc<Counterparty>>,
    /// Ids looked up and not found (bounded; dropped on any change notified by the database).
    unknown: Cache<String, ()>,
    /// Lookups of ids in neither cache: a flood of made-up ids costs at most this much
    /// database work, and what goes beyond is answered "busy, retry".
    lookups: governor::DefaultDirectRateLimiter,
    nonces: nonces::Nonces,
}

/// Database lookups of counterparty ids not cached, at most: a burst (a restart with many
/// counterparties calling at once), then a steady rate.
const LOOKUP_BURST: u32 = 200;
const LOOKUPS_PER_SECOND: u32 = 50;

impl Authenticator {
    /// Counterparties are read on `pool`; request ids are claimed on `nonces` (a pool whose
    /// connections commit without waiting for the WAL flush, see `nonces`).
    pub fn new(pool: Pool, nonces: Pool) -> Self {
        Self {
            pool,
            // Bounded; entries also expire so that a change made where no notification
            // reaches us (another cluster, a lost LISTEN connection) still takes effect.
            counterparties: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            unknown: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            lookups: governor::RateLimiter::direct(
                governor::Quota::per_second(nonzero(LOOKUPS_PER_SECOND))
                    .allow_burst(nonzero(LOOKUP_BURST)),
            ),
            nonces: nonces::Nonces::new(nonces),
        }
    }

    /// Checks the four signing headers over `body` (`None` for a GET) and returns the caller
    /// and its request id. The role is checked by the caller; a disabled counterparty is
    /// returned too (the API decides how to refuse it). The request id is not claimed in the
    /// database yet: the caller claims it, with `claim` or in the transaction of the call it
    /// makes (a bet: `bet_batch`, `bet_one`). A replay to this process is refused here already.
    pub async fn authenticate_unclaimed(
        &self,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<(Arc<Counterparty>, Uuid), Error> {
        let signing = SigningHeaders::parse(headers, now_ms())?;
        let counterparty = self
            .counterparty(signing.counterparty_id)
            .await?
            .ok_or(AuthFailure::UnknownCounterparty)?;
        if !counterparty.verify(body, signing.timestamp, signing.request_id, signing.sign) {
            return Err(AuthFailure::BadSignature.into());
        }
        if !self
            .nonces
            .first_here(signing.counterparty_id, signing.nonce)
        {
            return Err(AuthFailure::Replayed.into());
        }
        Ok((counterparty, Uuid::from_u128(signing.nonce)))
    }

    /// Claims a request id of `counterparty` in the database: refused as a replay if any
    /// croupier on it has claimed it before.
    pub async fn claim(&self, counterparty: &str, request_id: Uuid) -> Result<(), Error> {
        if self.nonces.claim(counterparty, request_id).await? {
            Ok(())
        } else {
            Err(AuthFailure::Replayed.into())
        }
    }

    async fn counterparty(&self, id: &str) -> Result<Option<Arc<Counterparty>>, Error> {
        if let Some(found) = self.counterparties.get(id) {
            return Ok(Some(found));
        }
        if !is_counterparty_id(id) || self.unknown.contains_key(id) {
            return Ok(None);
        }
        if self.lookups.check().is_err() {
            return Err(Error::Unavailable(anyhow::anyhow!(
                "too many lookups of unknown counterparties; retry"
            )));
        }
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT role, status, standalone_wins, secret FROM counterparties WHERE id = $1",
            )
            .await?;
        let Some(row) = client.query_opt(&stmt, &[&id]).await? else {
            self.unknown.insert(id.to_string(), ());
            return Ok(None);
        };
        let role = Role::parse(row.try_get(0)?)?;
        let active = CounterpartyStatus::parse(row.try_get(1)?)? == CounterpartyStatus::Active;
        let found = Arc::new(Counterparty::new(
            id.to_string(),
            role,
            active,
            row.try_get(2)?,
            row.try_get(3)?,
        ));
        self.counterparties.insert(id.to_string(), found.clone());
        Ok(Some(found))
    }

    /// Deletes the request ids too old to matter (the timestamp window refuses them).
    pub async fn prune_nonces(&self) -> Result<u64, Error> {
        self.nonces.prune().await
    }

    /// Drops a counterparty from the cache (it changed in the database).
    pub fn forget(&self, id: &str) {
        self.counterparties.invalidate(id);
        self.unknown.invalidate(id);
    }

    /// Drops every cached counterparty.
    pub fn forget_all(&self) {
        self.counterparties.invalidate_all();
        self.unknown.invalidate_all();
    }
}

fn nonzero(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN)
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, AuthFailure> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(AuthFailure::MissingHeader(name))
}

fn parse_request_id(text: &str) -> Result<u128, AuthFailure> {
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthFailure::BadRequestId);
    }
    u128::from_str_radix(text, 16).map_err(|_| AuthFailure::BadRequestId)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod vectors;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_secret() {
        let cp = Counterparty::new("cp".into(), Role::Provider, true, true, "very-secret-key");
        assert!(!format!("{cp:?}").contains("very-secret"));
    }

    #[test]
    fn request_ids_must_be_32_hex_digits() {
        assert!(parse_request_id("5a0679b6e5fa48f6892c777b0fa92392").is_ok());
        assert!(parse_request_id("5a0679b6e5fa48f6892c777b0fa9239").is_err());
        assert!(parse_request_id("5a0679b6e5fa48f6892c777b0fa9239g").is_err());
        assert!(parse_request_id("+a0679b6e5fa48f6892c777b0fa92392").is_err());
    }
}
