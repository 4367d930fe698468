//! The bearer tokens a casino gets from `auth/token` with its operator's credentials and sends
//! on `payments/accept`. A token is 32 random bytes in hex; only its SHA-256 is stored.

use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Seamless;
use crate::error::{AuthFailure, Error};

/// How long a token is good for.
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// A token just issued.
pub struct Issued {
    pub token: String,
    pub expires_in: Duration,
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl Seamless {
    /// Issues a token to a seamless operator that proves its secret. Every failure is the
    /// same `UnknownCounterparty` or `BadSignature`, never saying which part was wrong
    /// beyond that.
    pub async fn issue_token(&self, operator: &str, secret: &str) -> Result<Issued, Error> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "SELECT c.secret, c.status = 'active', s.operator_id IS NOT NULL
                   FROM counterparties c
                   LEFT JOIN seamless_operators s ON s.operator_id = c.id
                  WHERE c.id = $1 AND c.role = 'operator'",
                &[&operator],
            )
            .await?
            .ok_or(Error::Auth(AuthFailure::UnknownCounterparty))?;
        let stored: String = row.try_get(0)?;
        let proved = digest(&stored).ct_eq(&digest(secret));
        if !bool::from(proved) {
            return Err(Error::Auth(AuthFailure::BadSignature));
        }
        if !row.try_get::<_, bool>(1)? {
            return Err(Error::CounterpartyDisabled);
        }
        if !row.try_get::<_, bool>(2)? {
            return Err(Error::Auth(AuthFailure::WrongRole));
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        let ttl_s = TOKEN_TTL.as_secs() as f64;
        client
            .execute(
                "WITH gone AS (DELETE FROM casino_tokens
                                WHERE operator_id = $2 AND expires_at < now())
                 INSERT INTO casino_tokens (token_sha256, operator_id, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3))",
                &[&digest(&token), &operator, &ttl_s],
            )
            .await?;
        Ok(Issued {
            token,
            expires_in: TOKEN_TTL,
        })
    }

    /// The operator a live token belongs to.
    pub async fn token_operator(&self, token: &str) -> Result<String, Error> {
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Auth(AuthFailure::BadSignature));
        }
        let row = self
            .pool()
            .get()
            .await?
            .query_opt(
                "SELECT t.operator_id FROM casino_tokens t
                   JOIN counterparties c ON c.id = t.operator_id AND c.status = 'active'
                  WHERE t.token_sha256 = $1 AND t.expires_at > now()",
                &[&digest(token)],
            )
            .await?
            .ok_or(Error::Auth(AuthFailure::BadSignature))?;
        Ok(row.try_get(0)?)
    }
}
