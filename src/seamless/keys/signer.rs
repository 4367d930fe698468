//! Signing: a private key ready to sign RS256 JWTs, the claims croupier signs, and the public
//! half as the JWKS shows it.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::PrivateKey;
use serde::Serialize;

use super::TOKEN_LIFETIME_S;
use crate::error::Error;

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

    pub(super) fn new(key: &PrivateKey) -> anyhow::Result<Self> {
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

pub(super) fn unix_now() -> u64 {
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
    pub(crate) fn of(key: &PrivateKey) -> anyhow::Result<Self> {
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
