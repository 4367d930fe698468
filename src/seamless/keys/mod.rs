//! croupier's RS256 signing keys: the key ring that signs every JWT sent to a casino, and the
//! JWKS the casino checks them against.
//!
//! The private keys live in the data folder (`<dir>/keys/<kid>.pem`, PKCS#8, mode 0600), or in
//! one PEM file the operator names; their public halves, with the time each starts signing, in
//! `signing_keys`. A key signs from its `signs_from` until the next key's; it is published
//! from its creation until a day after its last use. `kid` is the upper-case hex SHA-1 of the
//! public key (DER SubjectPublicKeyInfo) and `x5t` the base64url of the same bytes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use crate::error::Error;

mod files;
mod signer;

use signer::unix_now;
pub use signer::{Claims, PublicJwk, Signer};

/// Modulus size of the keys croupier generates.
const KEY_BITS: usize = 2048;
/// How long a JWT croupier signs is valid: `exp` = `nbf` + this.
pub const TOKEN_LIFETIME_S: u64 = 10;
/// How often a running server looks for a key another process added or rotated.
const RELOAD_EVERY: Duration = Duration::from_secs(60);
/// Advisory lock taken while the first key of an installation is made.
const FIRST_KEY_LOCK: i64 = 0x6b65_7973; // "keys"

/// Where the private keys come from.
#[derive(Debug, Clone)]
pub struct SigningConfig {
    /// The folder of generated keys (created on first use, mode 0700).
    pub keys_dir: PathBuf,
    /// One key given as a PEM file (PKCS#1 or PKCS#8) instead of generated ones.
    pub pem: Option<PathBuf>,
    /// The `iss` claim: croupier's public URL as the casino knows it.
    pub issuer: String,
}

impl SigningConfig {
    /// Generated keys under `data_dir/keys`.
    pub fn in_data_dir(data_dir: &Path, issuer: &str) -> Self {
        Self {
            keys_dir: data_dir.join("keys"),
            pem: None,
            issuer: issuer.to_string(),
        }
    }
}

/// A published key and when it signs.
#[derive(Debug, Clone)]
pub struct PublishedKey {
    pub jwk: PublicJwk,
    /// Seconds since the epoch.
    pub signs_from: i64,
    /// When the next key takes over (seconds since the epoch), if one is planned.
    pub signs_until: Option<i64>,
}

impl PublishedKey {
    /// `next`, `current` or `retired`, at `now` (seconds since the epoch).
    pub fn status(&self, now: i64) -> &'static str {
        if self.signs_from > now {
            "next"
        } else if self.signs_until.is_some_and(|until| until <= now) {
            "retired"
        } else {
            "current"
        }
    }
}

/// What the ring knows at one moment.
#[derive(Default)]
struct Loaded {
    /// The keys the JWKS publishes, oldest first.
    published: Vec<PublishedKey>,
    /// The key that signs now.
    signer: Option<Arc<Signer>>,
    /// When to look at the database again (a reload interval, or the next key's start).
    reload_at: Option<Instant>,
    /// The JWKS document, as served.
    jwks: Arc<str>,
}

/// The installation's keys: signs with the current one, publishes the JWKS.
pub struct KeyRing {
    pool: Pool,
    config: SigningConfig,
    loaded: RwLock<Arc<Loaded>>,
    reloading: tokio::sync::Mutex<()>,
}

impl KeyRing {
    pub fn new(pool: Pool, config: SigningConfig) -> Self {
        Self {
            pool,
            config,
            loaded: RwLock::new(Arc::new(Loaded::default())),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The key that signs now, loading (or, on an installation's first start, making) the
    /// keys when due.
    pub async fn signer(&self) -> Result<Arc<Signer>, Error> {
        self.current().await?.signer.clone().ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "the private key of the current signing key is missing"
            ))
        })
    }

    /// The JWKS document (`{"keys": […]}`).
    pub async fn jwks(&self) -> Result<Arc<str>, Error> {
        Ok(self.current().await?.jwks.clone())
    }

    /// The published keys, oldest first.
    pub async fn published(&self) -> Result<Vec<PublishedKey>, Error> {
        Ok(self.current().await?.published.clone())
    }

    /// A published key by `kid`.
    pub async fn published_key(&self, kid: &str) -> Result<Option<PublishedKey>, Error> {
        Ok(self
            .current()
            .await?
            .published
            .iter()
            .find(|k| k.jwk.kid == kid)
            .cloned())
    }

    async fn current(&self) -> Result<Arc<Loaded>, Error> {
        let loaded = self.snapshot();
        if loaded.reload_at.is_some_and(|at| at > Instant::now()) {
            return Ok(loaded);
        }
        let _one = self.reloading.lock().await;
        let loaded = self.snapshot();
        if loaded.reload_at.is_some_and(|at| at > Instant::now()) {
            return Ok(loaded);
        }
        self.load().await
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads the keys again (now, whatever the schedule): at start, or after a rotation.
    pub async fn reload(&self) -> Result<(), Error> {
        let _one = self.reloading.lock().await;
        let loaded = self.load().await?;
        match &loaded.signer {
            Some(_) => Ok(()),
            None => Err(Error::Internal(anyhow::anyhow!(
                "the private key of the current signing key is missing (see the log)"
            ))),
        }
    }

    async fn load(&self) -> Result<Arc<Loaded>, Error> {
        self.ensure_first_key().await?;
        let published = self.read_published().await?;
        let now = unix_now() as i64;
        let current = published
            .iter()
            .rev()
            .find(|k| k.signs_from <= now)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no signing key is current")))?;
        let kid = current.jwk.kid.clone();
        let previous = self.snapshot();
        let signer = match previous.signer.as_ref().filter(|s| s.kid == kid) {
            Some(same) => Some(same.clone()),
            // The JWKS is served even so; signing fails until the key is there.
            None => match self.private_key(&kid).await {
                Ok(signer) => Some(Arc::new(signer)),
                Err(e) => {
                    tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "cannot sign");
                    None
                }
            },
        };
        let next_start = published
            .iter()
            .filter(|k| k.signs_from > now)
            .map(|k| k.signs_from)
            .min();
        let mut wait = RELOAD_EVERY;
        if let Some(start) = next_start {
            wait = wait.min(Duration::from_secs((start - now).max(0) as u64));
        }
        let jwks = serde_json::json!({
            "keys": published.iter().map(|k| &k.jwk).collect::<Vec<_>>()
        })
        .to_string();
        let loaded = Arc::new(Loaded {
            published,
            signer,
            reload_at: Some(Instant::now() + wait),
            jwks: jwks.into(),
        });
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded.clone();
        Ok(loaded)
    }

    /// The keys to publish, from the database (nothing is loaded or made): every key not
    /// yet retired for a day.
    pub async fn read_published(&self) -> Result<Vec<PublishedKey>, Error> {
        let rows = self
            .pool
            .get()
            .await?
            .query(
                "SELECT kid, n, e, x5t, floor(extract(epoch FROM signs_from))::bigint,
                        floor(extract(epoch FROM until))::bigint
                   FROM (SELECT *, lead(signs_from) OVER (ORDER BY signs_from) AS until
                           FROM signing_keys) k
                  WHERE until IS NULL OR until > now() - interval '1 day'
                  ORDER BY signs_from",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(PublishedKey {
                    jwk: PublicJwk {
                        kty: "RSA",
                        use_: "sig",
                        alg: "RS256",
                        kid: row.try_get(0)?,
                        n: row.try_get(1)?,
                        e: row.try_get(2)?,
                        x5t: row.try_get(3)?,
                    },
                    signs_from: row.try_get(4)?,
                    signs_until: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Makes the next key: published now, signing `after` from now. Returns it.
    pub async fn rotate(&self, after: Duration) -> Result<PublishedKey, Error> {
        // The installation's current key first, so that the new one is not taken for it.
        self.ensure_first_key().await?;
        let (kid, key) = self.generate().await?;
        let jwk = PublicJwk::of(&key).map_err(Error::Internal)?;
        let after_s = i64::try_from(after.as_secs())
            .map_err(|_| Error::bad_value("the delay is too long"))?;
        let row = self
            .pool
            .get()
            .await?
            .query_one(
                "INSERT INTO signing_keys (kid, n, e, x5t, signs_from)
                 VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
                 RETURNING floor(extract(epoch FROM signs_from))::bigint",
                &[&kid, &jwk.n, &jwk.e, &jwk.x5t, &(after_s as f64)],
            )
            .await?;
        Ok(PublishedKey {
            jwk,
            signs_from: row.try_get(0)?,
            signs_until: None,
        })
    }
}
