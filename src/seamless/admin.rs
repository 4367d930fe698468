//! Admin operations of seamless mode: an operator's wallet and settings, and the signing keys.

use std::time::Duration;

use serde_json::{json, Value};

use super::keys::{KeyRing, SigningConfig};
use super::settings::{check_wallet_url, ErrorCodes, SeamlessSettings};
use crate::admin::{Admin, Credentials};
use crate::error::Error;

/// Changes to a seamless operator's settings; `None` keeps a setting as it is.
#[derive(Debug, Default, Clone)]
pub struct SettingsChange {
    pub attempt_timeout_ms: Option<i32>,
    pub provider_deadline_ms: Option<i32>,
    pub retry_horizon_s: Option<i32>,
    pub abandon_after_s: Option<i32>,
    pub send_close: Option<bool>,
    pub make_list: Option<bool>,
    /// Overrides of the casino's ErrorCodes (`{"<code>": "<meaning>"}`), replacing any
    /// earlier ones; `{}` goes back to the defaults.
    pub error_codes: Option<ErrorCodes>,
}

impl Admin {
    /// A new seamless operator, its players' money in the casino's wallet at `wallet_url`.
    pub async fn operator_add_seamless(
        &self,
        name: &str,
        wallet_url: &str,
    ) -> Result<Credentials, Error> {
        check_wallet_url(wallet_url)?;
        let credentials = self.operator_add(name).await?;
        self.pool()
            .get()
            .await?
            .execute(
                "INSERT INTO seamless_operators (operator_id, wallet_url) VALUES ($1, $2)",
                &[&credentials.id, &wallet_url],
            )
            .await?;
        Ok(credentials)
    }

    /// Points an operator at a casino wallet (seamless mode), or with `""` back to transfer
    /// mode. The mode changes only while croupier holds none of the operator's players'
    /// money: a transfer operator's balances would be stranded in seamless mode.
    pub async fn operator_set_wallet(
        &self,
        operator: &str,
        wallet_url: &str,
    ) -> Result<Value, Error> {
        if !wallet_url.is_empty() {
            check_wallet_url(wallet_url)?;
        }
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let known = tx
            .query_opt(
                "SELECT 1 FROM counterparties WHERE id = $1 AND role = 'operator' FOR UPDATE",
                &[&operator],
            )
            .await?
            .is_some();
        if !known {
            return Err(Error::bad_value("no such operator"));
        }
        let seamless = tx
            .query_opt(
                "SELECT 1 FROM seamless_operators WHERE operator_id = $1",
                &[&operator],
            )
            .await?
            .is_some();
        if seamless == wallet_url.is_empty() {
            let held: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM wallets w JOIN players p ON p.id = w.player_id
                                     WHERE p.operator_id = $1 AND (w.balance > 0 OR w.locked > 0))",
                    &[&operator],
                )
                .await?
                .try_get(0)?;
            if held {
                return Err(Error::bad_value(
                    "croupier holds money of this operator's players: the mode cannot change \
                     until every balance is withdrawn",
                ));
            }
        }
        if wallet_url.is_empty() {
            tx.execute(
                "DELETE FROM seamless_operators WHERE operator_id = $1",
                &[&operator],
            )
            .await?;
        } else {
            tx.execute(
                "INSERT INTO seamless_operators (operator_id, wallet_url) VALUES ($1, $2)
                 ON CONFLICT (operator_id)
                 DO UPDATE SET wallet_url = EXCLUDED.wallet_url, updated_at = now()",
                &[&operator, &wallet_url],
            )
            .await?;
        }
        tx.commit().await?;
        drop(client);
        self.operator_show(operator).await
    }

    /// Changes a seamless operator's settings.
    pub async fn operator_set_seamless(
        &self,
        operator: &str,
        change: &SettingsChange,
    ) -> Result<Value, Error> {
        let codes = change.error_codes.as_ref().map(ErrorCodes::to_json);
        let updated = self
            .pool()
            .get()
            .await?
            .execute(
                "UPDATE seamless_operators SET
                     attempt_timeout_ms = coalesce($2, attempt_timeout_ms),
                     provider_deadline_ms = coalesce($3, provider_deadline_ms),
                     retry_horizon_s = coalesce($4, retry_horizon_s),
                     abandon_after_s = coalesce($5, abandon_after_s),
                     send_close = coalesce($6, send_close),
                     make_list = coalesce($7, make_list),
                     error_codes = coalesce($8, error_codes),
                     updated_at = now()
                 WHERE operator_id = $1",
                &[
                    &operator,
                    &change.attempt_timeout_ms,
                    &change.provider_deadline_ms,
                    &change.retry_horizon_s,
                    &change.abandon_after_s,
                    &change.send_close,
                    &change.make_list,
                    &codes,
                ],
            )
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) if db.code().code() == "23514" => Error::bad_value(format!(
                    "setting out of range ({})",
                    db.constraint().unwrap_or("check")
                )),
                _ => e.into(),
            })?;
        if updated == 0 {
            return Err(Error::bad_value("no such seamless operator"));
        }
        self.operator_show(operator).await
    }

    /// An operator's mode, and a seamless operator's settings.
    pub async fn operator_show(&self, operator: &str) -> Result<Value, Error> {
        let row = self
            .pool()
            .get()
            .await?
            .query_opt(
                &format!(
                    "SELECT {}, c.id AS known FROM counterparties c
                       LEFT JOIN seamless_operators s ON s.operator_id = c.id
                      WHERE c.id = $1 AND c.role = 'operator'",
                    SeamlessSettings::COLUMNS
                        .split(", ")
                        .map(|c| format!("s.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &[&operator],
            )
            .await?
            .ok_or_else(|| Error::bad_value("no such operator"))?;
        if row.try_get::<_, Option<String>>(0)?.is_none() {
            return Ok(json!({ "id": operator, "mode": "transfer" }));
        }
        let settings = SeamlessSettings::from_row(&row)?;
        serde_json::to_value(settings.view()).map_err(|e| Error::Internal(e.into()))
    }

    /// Makes the next signing key: published at once, signing after `after`.
    pub async fn keys_rotate(
        &self,
        signing: &SigningConfig,
        after: Duration,
    ) -> Result<Value, Error> {
        let ring = KeyRing::new(self.pool().clone(), signing.clone());
        let key = ring.rotate(after).await?;
        Ok(json!({
            "kid": key.jwk.kid,
            "signsFrom": key.signs_from,
        }))
    }

    /// The published keys with their status (`next`, `current`, `retired`).
    pub async fn keys_list(&self, signing: &SigningConfig) -> Result<Value, Error> {
        let ring = KeyRing::new(self.pool().clone(), signing.clone());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let keys = ring.read_published().await?;
        Ok(json!({
            "keys": keys.iter().map(|k| json!({
                "kid": k.jwk.kid,
                "status": k.status(now),
                "signsFrom": k.signs_from,
                "signsUntil": k.signs_until,
            })).collect::<Vec<_>>()
        }))
    }
}

/// How a person resolves a leg after checking with the casino.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The casino applied it.
    Ok,
    /// The casino did not apply it (and will not).
    Refused,
}

impl Admin {
    /// Legs in `state` (stuck, unknown, pending or sent), oldest first: one JSON object each.
    pub async fn seamless_legs(&self, state: &str) -> Result<Vec<Value>, Error> {
        let state = super::jobs::listable(state)?;
        let rows = self
            .pool()
            .get()
            .await?
            .query(
                "SELECT json_build_object(
                        'legId', l.id, 'betNo', l.bet_no, 'providerId', b.provider_id,
                        'betId', b.bet_id, 'operatorId', b.operator_id,
                        'playerExternalId', p.external_id, 'currency', b.currency,
                        'transactionType', l.transaction_type, 'amount', l.amount::text,
                        'state', l.state, 'attempts', l.attempts,
                        'compensation', l.compensation, 'casinoCode', l.casino_code,
                        'message', l.message, 'createdAt', l.created_at,
                        'lastSentAt', l.last_sent_at, 'data', l.data)::text
                   FROM seamless_legs l JOIN seamless_bets b ON b.bet_no = l.bet_no
                   JOIN players p ON p.id = b.player_id
                  WHERE l.state = $1 ORDER BY l.created_at LIMIT 10000",
                &[&state.as_str()],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get(0)?;
                serde_json::from_str(&text).map_err(|e| Error::Internal(e.into()))
            })
            .collect()
    }

    /// A person's verdict on a leg that is not final (stuck, unknown, pending), recorded
    /// with who and why. A leg being sent right now is refused: try again in a moment.
    pub async fn seamless_resolve(
        &self,
        leg: uuid::Uuid,
        resolution: Resolution,
        note: &str,
        by: &str,
    ) -> Result<Value, Error> {
        if note.trim().is_empty() || note.len() > 2000 {
            return Err(Error::bad_value("the note must be 1 to 2000 characters"));
        }
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT l.state, l.lease_until > now(), l.transaction_type
                   FROM seamless_legs l JOIN seamless_bets b ON b.bet_no = l.bet_no
                  WHERE l.id = $1 FOR UPDATE OF b, l",
                &[&leg],
            )
            .await?
            .ok_or_else(|| Error::bad_value("no such leg"))?;
        let state: String = row.try_get(0)?;
        let leased: Option<bool> = row.try_get(1)?;
        if matches!(state.as_str(), "ok" | "refused") {
            return Err(Error::bad_value(format!(
                "the leg is already final ({state})"
            )));
        }
        if state == "sent" && leased == Some(true) {
            return Err(Error::bad_value(
                "the leg is being sent now: try again in a moment",
            ));
        }
        let meaning = match resolution {
            Resolution::Ok => "applied",
            Resolution::Refused => "refused",
        };
        tx.execute(
            "SELECT seamless_finalise($1, $2, NULL, NULL, NULL, NULL, $3, $4)",
            &[&leg, &meaning, &by, &note],
        )
        .await?;
        tx.commit().await?;
        drop(client);
        let row = self
            .pool()
            .get()
            .await?
            .query_one(
                "SELECT json_build_object('legId', id, 'state', state, 'meaning', meaning,
                        'resolvedBy', resolved_by, 'note', resolution_note)::text
                   FROM seamless_legs WHERE id = $1",
                &[&leg],
            )
            .await?;
        let text: String = row.try_get(0)?;
        serde_json::from_str(&text).map_err(|e| Error::Internal(e.into()))
    }
}
