//! The private halves of the keys: made on an installation's first start (or read from the
//! configured PEM), kept in the data folder with mode 0600, and read back by `kid`.

use std::collections::HashMap;
use std::path::Path;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::PrivateKey;

use super::{KeyRing, PublicJwk, Signer, FIRST_KEY_LOCK, KEY_BITS};
use crate::error::Error;

impl KeyRing {
    /// On an installation's first start: registers the configured PEM key, or the data
    /// folder's key, generating one if there is none. Several processes starting at once
    /// make one key between them.
    pub(super) async fn ensure_first_key(&self) -> Result<(), Error> {
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
    pub(super) async fn private_key(&self, kid: &str) -> Result<Signer, Error> {
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
    pub(super) async fn generate(&self) -> Result<(String, PrivateKey), Error> {
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
