//! croupier's RS256 signing keys: the key ring that signs every JWT sent to a casino, and the
//! JWKS the casino checks them against.
//!
//! The private keys live in the data folder (`<dir>/keys/<kid>.pem`, PKCS#8, mode 0600), or in
//! one PEM file the operator names; their public halves, with the time each starts signing, in
//! `signing_keys`. A key signs from its `signs_from` until the next key's; it is published
//! from its creation until a day after its last use. `kid` is the upper-case hex SHA-1 of the
//! public key (DER SubjectPublicKeyInfo) and `x5t` the base64url of the same bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use deadpool_postgres::Pool;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::PrivateKey;
use serde::Serialize;

use crate::error::Error;

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

/// A private key ready to sign, with its JWT header already encoded.
pub struct Signer {
    pub kid: String,
    header_b64: String,
    pair: RsaKeyPair,
}

impl Signer {
    /// A signer for an RSA private key in PEM (PKCS#8 or PKCS#1).
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let key = PrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| PrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| anyhow::anyhow!("not an RSA private key in PEM"))?;
        Self::new(&key)
    }

    fn new(key: &PrivateKey) -> anyhow::Result<Self> {
        let public = PublicJwk::of(key)?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("cannot encode the key: {e}"))?;
        let pair = RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| anyhow::anyhow!("the signing key is not usable for RS256: {e}"))?;
        let header = serde_json::json!({
            "alg": "RS256", "typ": "JWT", "kid": public.kid, "x5t": public.x5t,
        });
        Ok(Self {
            header_b64: B64.encode(header.to_string()),
            kid: public.kid,
            pair,
        })
    }

    /// A compact JWT of `claims` under this key.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, Error> {
        let claims = serde_json::to_vec(claims).map_err(|e| Error::Internal(e.into()))?;
        let mut jwt = String::with_capacity(self.header_b64.len() + claims.len() * 4 / 3 + 400);
        jwt.push_str(&self.header_b64);
        jwt.push('.');
        B64.encode_string(&claims, &mut jwt);
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                jwt.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::Internal(anyhow::anyhow!("RS256 signing failed")))?;
        jwt.push('.');
        B64.encode_string(&signature, &mut jwt);
        Ok(jwt)
    }
}

/// The claims of a JWT croupier sends a casino (contract section 1). `data` is the call's
/// fields as a JSON string, kept byte for byte across retries.
#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    pub nbf: u64,
    pub exp: u64,
    pub iss: &'a str,
    pub client_id: &'a str,
    pub data: &'a str,
}

impl<'a> Claims<'a> {
    /// Claims valid from now for `TOKEN_LIFETIME_S`.
    pub fn now(iss: &'a str, client_id: &'a str, data: &'a str) -> Self {
        let nbf = unix_now();
        Self {
            nbf,
            exp: nbf + TOKEN_LIFETIME_S,
            iss,
            client_id,
            data,
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The public half of a key as the JWKS shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicJwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    pub x5t: String,
    pub n: String,
    pub e: String,
}

impl PublicJwk {
    fn of(key: &PrivateKey) -> anyhow::Result<Self> {
        let public = key.to_public_key();
        let spki = public
            .to_public_key_der()
            .map_err(|e| anyhow::anyhow!("cannot encode the public key: {e}"))?;
        let thumbprint =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, spki.as_bytes());
        Ok(Self {
            kty: "RSA",
            use_: "sig",
            alg: "RS256",
            kid: hex::encode_upper(thumbprint.as_ref()),
            x5t: B64.encode(thumbprint.as_ref()),
            n: B64.encode(public.n_bytes()),
            e: B64.encode(public.e_bytes()),
        })
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

    /// On an installation's first start: registers the configured PEM key, or the data
    /// folder's key, generating one if there is none. Several processes starting at once
    /// make one key between them.
    async fn ensure_first_key(&self) -> Result<(), Error> {
        let mut client = self.pool.get().await?;
        let any: bool = client
            .query_one("SELECT EXISTS (SELECT 1 FROM signing_keys)", &[])
            .await?
            .try_get(0)?;
        if any && self.config.pem.is_none() {
            return Ok(());
        }
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FIRST_KEY_LOCK])
            .await?;
        let any: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM signing_keys)", &[])
            .await?
            .try_get(0)?;
        let key = match &self.config.pem {
            Some(path) => Some(read_pem(path).await?),
            None if any => None,
            None => Some(match self.local_keys().await?.into_iter().next() {
                Some((_, key)) => key,
                None => self.generate().await?.1,
            }),
        };
        if let Some(key) = key {
            let jwk = PublicJwk::of(&key).map_err(Error::Internal)?;
            // A PEM key signs from the moment it is first seen (and keeps its first start).
            tx.execute(
                "INSERT INTO signing_keys (kid, n, e, x5t, signs_from)
                 VALUES ($1, $2, $3, $4, now()) ON CONFLICT (kid) DO NOTHING",
                &[&jwk.kid, &jwk.n, &jwk.e, &jwk.x5t],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The private key of `kid`, from the PEM file or the data folder.
    async fn private_key(&self, kid: &str) -> Result<Signer, Error> {
        let key = match &self.config.pem {
            Some(path) => {
                let key = read_pem(path).await?;
                let jwk = PublicJwk::of(&key).map_err(Error::Internal)?;
                (jwk.kid == kid).then_some(key)
            }
            None => self.local_keys().await?.remove(kid),
        };
        let key = key.ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "the private key of signing key {kid} is not in {}: every croupier of an \
                 installation needs the same keys",
                self.config
                    .pem
                    .as_deref()
                    .unwrap_or(&self.config.keys_dir)
                    .display()
            ))
        })?;
        Signer::new(&key).map_err(Error::Internal)
    }

    /// The keys in the data folder, by kid.
    async fn local_keys(&self) -> Result<HashMap<String, PrivateKey>, Error> {
        let mut keys = HashMap::new();
        let mut dir = match tokio::fs::read_dir(&self.config.keys_dir).await {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(io_error(&self.config.keys_dir, e)),
        };
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| io_error(&self.config.keys_dir, e))?
        {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "pem") {
                let key = read_pem(&path).await?;
                let jwk = PublicJwk::of(&key).map_err(Error::Internal)?;
                keys.insert(jwk.kid, key);
            }
        }
        Ok(keys)
    }

    /// Makes a key in the data folder (`<kid>.pem`, mode 0600). Returns its kid and the key.
    async fn generate(&self) -> Result<(String, PrivateKey), Error> {
        if self.config.pem.is_some() {
            return Err(Error::bad_value(
                "the signing key is a PEM file: replace the file to change it",
            ));
        }
        let key = tokio::task::spawn_blocking(|| PrivateKey::new(&mut getrandom::SysRng, KEY_BITS))
            .await
            .map_err(|e| Error::Internal(e.into()))?
            .map_err(|e| Error::Internal(anyhow::anyhow!("cannot generate a key: {e}")))?;
        let jwk = PublicJwk::of(&key).map_err(Error::Internal)?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::Internal(anyhow::anyhow!("cannot encode the key: {e}")))?;
        let dir = self.config.keys_dir.clone();
        let path = dir.join(format!("{}.pem", jwk.kid));
        let written = path.clone();
        tokio::task::spawn_blocking(move || write_private(&dir, &written, pem.as_bytes()))
            .await
            .map_err(|e| Error::Internal(e.into()))?
            .map_err(|e| io_error(&path, e))?;
        tracing::info!(kid = %jwk.kid, path = %path.display(), "generated a signing key");
        Ok((jwk.kid, key))
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

/// Writes a private key file readable by its owner alone.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Reads a PEM private key, PKCS#8 or PKCS#1.
async fn read_pem(path: &Path) -> Result<PrivateKey, Error> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| io_error(path, e))?;
    PrivateKey::from_pkcs8_pem(&text)
        .or_else(|_| PrivateKey::from_pkcs1_pem(&text))
        .map_err(|_| {
            Error::Internal(anyhow::anyhow!(
                "{} is not an RSA private key in PEM (PKCS#8 or PKCS#1)",
                path.display()
            ))
        })
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Internal(anyhow::anyhow!("{}: {e}", path.display()))
}
