//! Crypto top-ups and payouts: inabit (deposit addresses, deposits, withdrawals, Remote
//! Approver) and B2BINPAY (payouts).
//!
//! Invariants this module keeps (with the SQL functions of `sql/0004_crypto.sql`):
//! - a webhook is a hint: no balance changes until the deposit has been read back from
//!   inabit's API, and it is the API's amount, address and status that are applied;
//! - every deposit effect is applied once (inabit's transaction id + target state), states
//!   only move forward;
//! - a payout's amount leaves the wallet (a hold) before any provider call, and comes back
//!   only on a final failure;
//! - a payout is never sent twice: inabit is searched for our payout id (the withdrawal's
//!   note) before any resubmission, and B2BINPAY gets the same idempotency key on every try.

pub mod b2binpay;
pub mod http;
pub mod inabit;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use uuid::Uuid;

use crate::error::Error;
use crate::ledger::crypto::{CryptoLedger, Payout, PayoutEnd, PayoutOrder, Rail};
use crate::money::Currency;
use b2binpay::{B2binpay, B2binpayConfig, CallbackError};
use http::ProviderError;
use inabit::{Inabit, InabitConfig};

/// One asset on one blockchain that we accept and pay out, with each provider's ids for it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetIds {
    pub asset: String,
    pub blockchain: String,
    /// Decimals of the coin (payout amounts are rounded down to them).
    pub decimals: u32,
    #[serde(default)]
    pub inabit_asset_id: Option<String>,
    #[serde(default)]
    pub inabit_blockchain_id: Option<String>,
    #[serde(default)]
    pub b2binpay_currency_id: Option<String>,
}

/// Everything the crypto integrations need; see `config.rs` for the variables.
#[derive(Debug, Clone)]
pub struct CryptoConfig {
    pub inabit: InabitConfig,
    pub b2binpay: B2binpayConfig,
    pub assets: Vec<AssetIds>,
    /// Limit on every provider call.
    pub http_timeout: Duration,
    /// Deposit polling; None = off.
    pub poll_interval: Option<Duration>,
    /// Payout tracking and recovery; None = off.
    pub payout_interval: Option<Duration>,
    /// How long a payout in flight is left alone before the recovery job looks at it.
    pub payout_idle: Duration,
    /// How often the login token's age is checked; None = off.
    pub login_check_interval: Option<Duration>,
}

impl CryptoConfig {
    /// No provider configured, no jobs: the defaults of a server without crypto.
    pub fn disabled() -> Self {
        Self {
            inabit: InabitConfig {
                graphql_url: "https://api.inabit.com/graphql".into(),
                terminal_url: "https://api.inabit.biz".into(),
                terminal_key: None,
                login_token: None,
                wallet_id: None,
                deposits_path: "/v1/customer/transactions".into(),
                access_token_ttl: Duration::from_secs(15 * 60),
                login_refresh_after: Duration::from_secs(20 * 24 * 3600),
                priority: "Medium".into(),
            },
            b2binpay: B2binpayConfig {
                base_url: "https://api.b2binpay.com".into(),
                client_id: None,
                client_secret: None,
                wallet_id: None,
                callback_url: None,
                login: None,
                password: None,
                callback_secret: None,
            },
            assets: Vec::new(),
            http_timeout: Duration::from_secs(10),
            poll_interval: None,
            payout_interval: None,
            payout_idle: Duration::from_secs(60),
            login_check_interval: None,
        }
    }
}

/// A player's deposit address.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositAddress {
    pub player_external_id: String,
    pub asset: String,
    pub blockchain: String,
    pub address: String,
    /// The wallet currency deposits to this address are credited in.
    pub currency: String,
}

/// What the jobs last did, for the status endpoint.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct JobStatus {
    last_poll_ms: Option<i64>,
    last_poll_error: Option<String>,
    last_payout_run_ms: Option<i64>,
    last_payout_error: Option<String>,
}

pub struct Crypto {
    config: CryptoConfig,
    pool: Pool,
    ledger: CryptoLedger,
    inabit: Inabit,
    b2binpay: B2binpay,
    /// Wakes the event worker when a webhook arrives.
    wake: tokio::sync::Notify,
    jobs: Mutex<JobStatus>,
}

fn integration(e: ProviderError) -> Error {
    Error::Integration(e.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Crypto {
    pub fn new(config: CryptoConfig, pool: Pool) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            .build()?;
        Ok(Self {
            inabit: Inabit::new(config.inabit.clone(), http.clone(), pool.clone()),
            b2binpay: B2binpay::new(config.b2binpay.clone(), http),
            ledger: CryptoLedger::new(pool.clone()),
            pool,
            config,
            wake: tokio::sync::Notify::new(),
            jobs: Mutex::new(JobStatus::default()),
        })
    }

    pub fn ledger(&self) -> &CryptoLedger {
        &self.ledger
    }

    /// Stores the configured inabit login token unless the database already has one (which
    /// is then the newer, refreshed token).
    pub async fn seed_login_token(&self) -> anyhow::Result<()> {
        self.inabit.seed_login_token().await
    }

    fn asset(&self, asset: &str, blockchain: &str) -> Result<&AssetIds, Error> {
        self.config
            .assets
            .iter()
            .find(|a| a.asset == asset && a.blockchain == blockchain)
            .ok_or_else(|| Error::bad_value(format!("{asset} on {blockchain} is not offered")))
    }

    /// The player's address for the asset, created at inabit on the first request.
    pub async fn deposit_address(
        &self,
        operator_id: &str,
        external_id: &str,
        asset: &str,
        blockchain: &str,
        currency: Option<Currency>,
    ) -> Result<DepositAddress, Error> {
        self.asset(asset, blockchain)?;
        let mut client = self.pool.get().await?;
        let wallets = client
            .query(
                "SELECT pl.id, wl.id, wl.currency
                   FROM players pl JOIN wallets wl ON wl.player_id = pl.id
                  WHERE pl.operator_id = $1 AND pl.external_id = $2
                    AND ($3::text IS NULL OR wl.currency = $3)
                  ORDER BY wl.currency",
                &[&operator_id, &external_id, &currency.map(|c| c.code())],
            )
            .await?;
        let wallet = match wallets.as_slice() {
            [] => return Err(Error::PlayerNotFound),
            [one] => one,
            _ => {
                return Err(Error::MissingField(
                    "currency (the player has several wallets)".into(),
                ))
            }
        };
        let player: Uuid = wallet.try_get(0)?;
        let wallet_id: Uuid = wallet.try_get(1)?;
        let wallet_currency: String = wallet.try_get(2)?;
        let answer = |row: tokio_postgres::Row| -> Result<DepositAddress, Error> {
            Ok(DepositAddress {
                player_external_id: external_id.to_string(),
                asset: asset.to_string(),
                blockchain: blockchain.to_string(),
                address: row.try_get(0)?,
                currency: row.try_get(1)?,
            })
        };
        const KNOWN: &str = "SELECT a.address, w.currency FROM crypto_addresses a
                               JOIN wallets w ON w.id = a.wallet_id
                              WHERE a.player_id = $1 AND a.asset = $2 AND a.blockchain = $3";
        if let Some(row) = client
            .query_opt(KNOWN, &[&player, &asset, &blockchain])
            .await?
        {
            return answer(row);
        }
        // First request: one at a time per player (a transaction-scoped advisory lock), so
        // that two concurrent first requests do not create two customers or addresses at
        // inabit. In two steps, each committed: the customer is kept as soon as inabit has
        // created it, whatever happens to the address step.
        const LOCK: &str =
            "SELECT pg_advisory_xact_lock(hashtextextended('crypto-address:' || $1, 0))";
        let player_key = player.to_string();
        let tx = client.transaction().await?;
        tx.execute(LOCK, &[&player_key]).await?;
        let stored: Option<String> = tx
            .query_opt(
                "SELECT customer_uuid FROM crypto_customers WHERE player_id = $1",
                &[&player],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        let customer = match stored {
            Some(customer) => customer,
            None => {
                let customer = self
                    .inabit
                    .create_customer(&player_key)
                    .await
                    .map_err(integration)?;
                tx.execute(
                    "INSERT INTO crypto_customers (player_id, customer_uuid) VALUES ($1, $2)",
                    &[&player, &customer],
                )
                .await?;
                customer
            }
        };
        tx.commit().await?;

        let tx = client.transaction().await?;
        tx.execute(LOCK, &[&player_key]).await?;
        if let Some(row) = tx.query_opt(KNOWN, &[&player, &asset, &blockchain]).await? {
            return answer(row);
        }
        let address = self
            .inabit
            .customer_address(&customer, asset, blockchain)
            .await
            .map_err(integration)?;
        let scale = Currency::parse(&wallet_currency)
            .map(|c| c.scale() as i32)
            .map_err(|_| Error::Internal(anyhow::anyhow!("unknown wallet currency")))?;
        tx.execute(
            "INSERT INTO crypto_addresses (id, player_id, wallet_id, scale, asset, blockchain,
                                           address)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &Uuid::now_v7(),
                &player,
                &wallet_id,
                &scale,
                &asset,
                &blockchain,
                &address,
            ],
        )
        .await?;
        let row = tx.query_one(KNOWN, &[&player, &asset, &blockchain]).await?;
        tx.commit().await?;
        answer(row)
    }

    /// Records an inabit webhook exactly as received and wakes the worker. Only a JSON object
    /// is accepted.
    pub async fn record_webhook(&self, body: &[u8]) -> Result<Uuid, Error> {
        let text =
            std::str::from_utf8(body).map_err(|_| Error::bad_format("the body is not UTF-8"))?;
        let value: Value =
            serde_json::from_str(text).map_err(|_| Error::bad_format("the body is not JSON"))?;
        if !value.is_object() {
            return Err(Error::bad_format("the body must be a JSON object"));
        }
        let event = value.get("event").and_then(Value::as_str);
        let reference = value
            .get("data")
            .and_then(|d| http::text_field(d, &["transactionId", "purchaseId", "id"]));
        let id = Uuid::now_v7();
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO crypto_events (id, source, event, reference, body)
                 VALUES ($1, 'inabit', $2, $3, $4)",
                &[&id, &event, &reference, &text],
            )
            .await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Works through the recorded inabit events: each names a transaction, which is read
    /// from inabit's API and applied (a deposit) or tracked (one of our payouts). Events naming
    /// the same transaction are confirmed with one read, so a burst of repeats costs inabit one
    /// call. A transaction that cannot be read now is tried again later, up to 20 times over
    /// about three and a half hours, then put in the review queue; one inabit does not know
    /// (yet) is left to the polling job. Returns how many transactions were looked at (100 at
    /// most per call).
    pub async fn process_events(&self) -> Result<usize, Error> {
        let groups = {
            let client = self.pool.get().await?;
            client
                .query(
                    "SELECT reference, array_agg(id) FROM (
                         SELECT id, reference, received_at FROM crypto_events
                          WHERE source = 'inabit' AND processed_at IS NULL
                            -- after a failure, wait longer each time (5 s, 20 s, 45 s, …
                            -- after the last try; the 20 tries span about 3.5 hours)
                            AND coalesce(last_attempt_at, received_at)
                                + attempts * attempts * interval '5 seconds' <= now()
                          ORDER BY received_at LIMIT 1000) pending
                      GROUP BY reference ORDER BY min(received_at) LIMIT 100",
                    &[],
                )
                .await?
        };
        for group in &groups {
            let reference: Option<String> = group.try_get(0)?;
            let ids: Vec<Uuid> = group.try_get(1)?;
            let outcome = match &reference {
                None => Ok("no_reference".to_string()),
                Some(reference) => self.confirm(reference).await,
            };
            let client = self.pool.get().await?;
            match outcome {
                Ok(outcome) => {
                    client
                        .execute(
                            "UPDATE crypto_events SET processed_at = now(), outcome = $2,
                                    attempts = attempts + 1, last_attempt_at = now()
                              WHERE id = ANY($1)",
                            &[&ids, &outcome],
                        )
                        .await?;
                }
                Err(e) => {
                    tracing::warn!(reference, error = %e, "inabit event not confirmed yet");
                    // After the last try the event goes to the review queue.
                    client
                        .execute(
                            "WITH tried AS (
                                 UPDATE crypto_events SET attempts = attempts + 1,
                                        last_attempt_at = now(), outcome = left($2, 300),
                                        processed_at = CASE WHEN attempts + 1 >= 20 THEN now() END
                                  WHERE id = ANY($1)
                              RETURNING id, reference, processed_at)
                             -- one entry per transaction, however many events named it
                             SELECT crypto_review('event', md5('event:' || coalesce(reference, id::text))::uuid,
                                                  NULL, 'event_unconfirmed', reference)
                               FROM tried WHERE processed_at IS NOT NULL",
                            &[&ids, &e.to_string()],
                        )
                        .await?;
                }
            }
        }
        Ok(groups.len())
    }

    /// Reopens a deposit waiting in review that credited nothing (see
    /// `crypto_deposit_reopen`), then reads it from inabit and applies it afresh. Returns
    /// (the reopening, the new outcome if inabit could be asked).
    pub async fn reopen_deposit(&self, tx: &str) -> Result<(String, Option<String>), Error> {
        let client = self.pool.get().await?;
        let reopened: String = client
            .query_one("SELECT crypto_deposit_reopen($1)", &[&tx])
            .await?
            .try_get(0)?;
        drop(client);
        if reopened != "reopened" {
            return Ok((reopened, None));
        }
        let outcome = self.confirm(tx).await.map_err(|e| {
            tracing::warn!(tx, error = %e, "reopened deposit not confirmed yet; polling will");
            e
        });
        Ok((reopened, outcome.ok()))
    }

    /// Confirms what a webhook hinted at, from inabit's API. Returns the outcome.
    async fn confirm(&self, reference: &str) -> Result<String, Error> {
        if let Some(payout) = self
            .ledger
            .payout_by_provider_ref(Rail::Inabit, reference)
            .await?
        {
            return self.track_inabit(&payout).await.map(|_| "payout".into());
        }
        match self.inabit.deposit(reference).await.map_err(integration)? {
            None => {
                tracing::warn!(reference, "webhook for a deposit inabit does not confirm");
                Ok("unconfirmed".into())
            }
            Some(report) => {
                let effect = self.ledger.deposit_apply(&report).await?;
                tracing::info!(
                    reference,
                    status = report.status,
                    outcome = effect.outcome,
                    state = effect.state,
                    "deposit"
                );
                Ok(effect.outcome)
            }
        }
    }

    /// Reads every deposit updated since the stored checkpoint and applies it; the
    /// checkpoint moves after each page. Returns how many deposits were read.
    pub async fn poll_deposits(&self) -> Result<usize, Error> {
        const PAGE: usize = 100;
        const BIG_PAGE: usize = 1000;
        let mut read = 0;
        let mut page_size = PAGE;
        loop {
            let since = {
                let client = self.pool.get().await?;
                client
                    .query_opt(
                        "SELECT value FROM crypto_checkpoints WHERE name = 'inabit_deposits'",
                        &[],
                    )
                    .await?
                    .map(|r| r.try_get::<_, String>(0))
                    .transpose()?
                    .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
            };
            let page = self
                .inabit
                .deposits_since(&since, page_size)
                .await
                .map_err(integration)?;
            let mut next = since.clone();
            for listed in &page {
                let failed = match &listed.report {
                    Ok(report) => match self.ledger.deposit_apply(report).await {
                        Ok(_) => None,
                        // The database is away: stop here, the checkpoint stays.
                        Err(e @ Error::Unavailable(_)) => return Err(e),
                        Err(e) => Some(e.to_string()),
                    },
                    Err(e) => Some(e.to_string()),
                };
                // This one deposit cannot be read or applied: it becomes an event for the
                // worker to retry (and, failing that, to put in review); polling goes on.
                if let Some(error) = failed {
                    tracing::error!(tx = ?listed.transaction_id, error, "polled deposit not applied");
                    match &listed.transaction_id {
                        Some(tx) => {
                            // Once per transaction and update time: the same item is
                            // listed again by every poll until something newer comes.
                            let dedupe =
                                format!("poll:{tx}:{}", listed.updated_at.as_deref().unwrap_or(""));
                            self.pool
                                .get()
                                .await?
                                .execute(
                                    "INSERT INTO crypto_events (id, source, event, reference, body,
                                                                dedupe_key)
                                     VALUES ($1, 'inabit', 'PollFailed', $2, '{}', $3)
                                     ON CONFLICT ON CONSTRAINT crypto_events_dedupe_unique
                                     DO NOTHING",
                                    &[&Uuid::now_v7(), tx, &dedupe],
                                )
                                .await?;
                        }
                        None => tracing::error!("inabit listed a deposit without transactionId"),
                    }
                }
                if let Some(t) = &listed.updated_at {
                    if *t > next {
                        next = t.clone();
                    }
                }
            }
            read += page.len();
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO crypto_checkpoints (name, value) VALUES ('inabit_deposits', $1)
                     ON CONFLICT (name) DO UPDATE SET value = $1, updated_at = now()",
                    &[&next],
                )
                .await?;
            if page.len() < page_size {
                return Ok(read);
            }
            if next == since {
                // The query is "at or after": a full page all at one update time does not move
                // the checkpoint. Ask for a bigger one once, then give up loudly.
                if page_size == BIG_PAGE {
                    tracing::error!(since, "more than {BIG_PAGE} deposits share one update time; polling cannot move past it");
                    return Ok(read);
                }
                page_size = BIG_PAGE;
            } else {
                page_size = PAGE;
            }
        }
    }

    /// Takes a payout order: holds the amount, then asks the operator's rail to send it (within
    /// the HTTP timeout; if that answer is lost the recovery job finishes the job). A repeated
    /// order answers the payout as it stands.
    pub async fn withdraw(&self, order: PayoutOrder) -> Result<Payout, Error> {
        let asset = self.asset(&order.asset, &order.blockchain)?;
        let client = self.pool.get().await?;
        let rail: String = client
            .query_one(
                "SELECT payout_rail FROM counterparties WHERE id = $1",
                &[&order.operator_id],
            )
            .await?
            .try_get(0)?;
        drop(client);
        let rail = Rail::parse(&rail).unwrap_or(Rail::Inabit);
        let configured = match rail {
            Rail::Inabit => asset.inabit_asset_id.is_some() && asset.inabit_blockchain_id.is_some(),
            Rail::B2binpay => asset.b2binpay_currency_id.is_some(),
        };
        if !configured {
            return Err(Error::Integration(format!(
                "{} payouts of {} on {} are not configured",
                rail.as_str(),
                order.asset,
                order.blockchain
            )));
        }
        let (payout, replayed) = self
            .ledger
            .payout_hold(&order, asset.decimals, rail)
            .await?;
        if replayed || payout.state != "held" {
            return Ok(payout);
        }
        self.submit(&payout).await?;
        self.ledger
            .payout_by_id(payout.id)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("payout vanished")))
    }

    /// Sends a held payout to its rail. Never sends an inabit withdrawal twice: if a call may
    /// have been made before, inabit is searched for our payout id first. A refusal of the
    /// first call releases the hold; a refusal of a later one (an earlier call may have gone
    /// through after all) goes to review; an unknown outcome is left for the recovery job.
    async fn submit(&self, payout: &Payout) -> Result<(), Error> {
        let asset = self.asset(&payout.asset, &payout.blockchain)?;
        let note = payout.id.to_string();
        if payout.rail == Rail::Inabit && payout.attempts > 0 {
            match self.inabit.transactions_with_note(&note).await {
                Ok(found) => {
                    if let Some(existing) = found.first() {
                        tracing::info!(payout = %payout.id, withdrawal = existing.id, "payout found at inabit; not sent again");
                        return self
                            .ledger
                            .payout_submitted(payout.id, &existing.id, Some(&existing.status))
                            .await;
                    }
                }
                // Cannot tell whether it was sent: do not send.
                Err(e) => return self.ledger.payout_error(payout.id, &e.to_string()).await,
            }
        }
        // What can fail before anything reaches the provider fails here, uncounted.
        let ready = match payout.rail {
            Rail::Inabit => self.inabit.ready_to_withdraw().await,
            Rail::B2binpay => self.b2binpay.ready().await,
        };
        if let Err(e) = ready {
            tracing::warn!(payout = %payout.id, error = %e, "payout not sent: provider not ready");
            return self.ledger.payout_error(payout.id, &e.to_string()).await;
        }
        // Counted before the call; None: a withdrawal was tied to it meanwhile.
        let Some(attempt) = self.ledger.payout_attempt(payout.id).await? else {
            return Ok(());
        };
        let sent = match payout.rail {
            Rail::Inabit => {
                self.inabit
                    .create_withdrawal(asset, &payout.address, payout.coin_amount, &note)
                    .await
            }
            Rail::B2binpay => {
                let currency = asset.b2binpay_currency_id.as_deref().unwrap_or_default();
                self.b2binpay
                    .create_payout(
                        payout.idempotency_key,
                        &note,
                        currency,
                        &payout.address,
                        payout.coin_amount,
                    )
                    .await
            }
        };
        match sent {
            Ok(reference) => {
                tracing::info!(payout = %payout.id, rail = payout.rail.as_str(), reference, "payout sent");
                self.ledger
                    .payout_submitted(payout.id, &reference, None)
                    .await
            }
            Err(e) if e.is_refusal() => {
                let end = if attempt == 1 {
                    PayoutEnd::Released
                } else {
                    PayoutEnd::Review
                };
                tracing::warn!(payout = %payout.id, attempt, error = %e, end = ?end, "payout refused by the provider");
                self.ledger.payout_error(payout.id, &e.to_string()).await?;
                self.ledger
                    .payout_finish(payout.id, end, Some("refused"), true)
                    .await
                    .map(|_| ())
            }
            Err(e) => {
                tracing::warn!(payout = %payout.id, error = %e, "payout outcome unknown; the recovery job will look it up");
                self.ledger.payout_error(payout.id, &e.to_string()).await
            }
        }
    }

    /// Ends a payout by the provider's word, or notes its latest status.
    async fn conclude(
        &self,
        payout: &Payout,
        end: Option<PayoutEnd>,
        status: &str,
    ) -> Result<String, Error> {
        match end {
            Some(end) => {
                let outcome = self
                    .ledger
                    .payout_finish(payout.id, end, Some(status), false)
                    .await?;
                tracing::info!(payout = %payout.id, status, outcome, "payout ended");
                Ok(outcome)
            }
            None => {
                self.ledger.payout_seen(payout.id, status).await?;
                Ok("in_progress".into())
            }
        }
    }

    /// Reads an inabit withdrawal's status and ends the payout when it is final.
    async fn track_inabit(&self, payout: &Payout) -> Result<(), Error> {
        let Some(reference) = payout.provider_ref.as_deref() else {
            return Ok(());
        };
        let Some(tx) = self
            .inabit
            .transaction(reference)
            .await
            .map_err(integration)?
        else {
            return Ok(());
        };
        let end = match tx.status.as_str() {
            "Completed" | "Confirmed" | "Success" => Some(PayoutEnd::Paid),
            "Failed" | "Rejected" | "Declined" | "Canceled" | "Cancelled" | "Expired" => {
                Some(PayoutEnd::Released)
            }
            _ => None,
        };
        self.conclude(payout, end, &tx.status).await.map(|_| ())
    }

    /// Reads a B2BINPAY payout's transfer (in case its callback was lost) and ends the
    /// payout when the transfer is final.
    async fn track_b2binpay(&self, payout: &Payout) -> Result<(), Error> {
        let Some(reference) = payout.provider_ref.as_deref() else {
            return Ok(());
        };
        if let Some((status, amount)) = self
            .b2binpay
            .transfer_status(reference)
            .await
            .map_err(integration)?
        {
            let end = b2binpay_end(status, amount, payout.coin_amount);
            self.conclude(payout, end, &status.to_string()).await?;
        }
        Ok(())
    }

    /// The payout job: sends held payouts whose call was lost (after checking it did not
    /// reach the provider) and tracks submitted ones to a final state. Payouts are claimed one
    /// at a time, up to 100 per run.
    pub async fn run_payouts(&self) -> Result<usize, Error> {
        let idle_ms = self.config.payout_idle.as_millis() as i64;
        let mut done = Vec::new();
        while done.len() < 100 {
            let Some(payout) = self.ledger.claim_next_payout(idle_ms, &done).await? else {
                break;
            };
            done.push(payout.id);
            let result = match (payout.state.as_str(), payout.rail) {
                ("held", _) => self.submit(&payout).await,
                ("submitted", Rail::Inabit) => self.track_inabit(&payout).await,
                ("submitted", Rail::B2binpay) => self.track_b2binpay(&payout).await,
                _ => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(payout = %payout.id, error = %e, "payout job");
            }
        }
        Ok(done.len())
    }

    /// The Remote Approver's question: may inabit sign this transaction? Yes only for a
    /// withdrawal we created, with the same address, asset, blockchain and amount.
    pub async fn approve(&self, body: &[u8]) -> bool {
        match self.check_approval(body).await {
            Ok(()) => {
                tracing::info!(body = %String::from_utf8_lossy(body), "approver: approved");
                true
            }
            Err(reason) => {
                tracing::warn!(reason, body = %String::from_utf8_lossy(body), "approver: refused");
                false
            }
        }
    }

    async fn check_approval(&self, body: &[u8]) -> Result<(), String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Request<'a> {
            transaction_id: Option<String>,
            network: Option<String>,
            coin: Option<String>,
            to: Option<String>,
            #[serde(borrow)]
            amount: Option<&'a RawValue>,
        }
        let request: Request =
            serde_json::from_slice(body).map_err(|_| "not the documented JSON".to_string())?;
        let id = request.transaction_id.ok_or("no transactionId")?;
        let payout = match self
            .ledger
            .payout_by_provider_ref(Rail::Inabit, &id)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(p) => p,
            None => {
                // The withdrawal's creation answer may not have reached us yet: its note
                // names our payout.
                let tx = self
                    .inabit
                    .transaction(&id)
                    .await
                    .map_err(|e| format!("cannot read the transaction: {e}"))?
                    .ok_or("inabit does not know the transaction")?;
                let payout_id = tx
                    .note
                    .as_deref()
                    .and_then(|n| Uuid::from_str(n.trim()).ok())
                    .ok_or("not one of our payouts (no payout id in the note)")?;
                self.ledger
                    .payout_by_id(payout_id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("no such payout")?
            }
        };
        // Address, asset, blockchain and amount never change once a payout exists; whether it
        // is still in flight and tied to this withdrawal only is decided atomically below.
        let asset = self
            .asset(&payout.asset, &payout.blockchain)
            .map_err(|e| e.to_string())?;
        if request.to.as_deref() != Some(payout.address.as_str()) {
            return Err("address differs".into());
        }
        if !request
            .coin
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(&payout.asset))
        {
            return Err("asset differs".into());
        }
        let network_ok = request.network.as_deref().is_some_and(|n| {
            n.eq_ignore_ascii_case(&payout.blockchain)
                || asset.inabit_blockchain_id.as_deref() == Some(n)
        });
        if !network_ok {
            return Err("blockchain differs".into());
        }
        let amount = request.amount.and_then(http::decimal);
        if amount != Some(payout.coin_amount) {
            return Err("amount differs".into());
        }
        if !self
            .ledger
            .payout_bind(payout.id, &id)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err(format!(
                "payout is {} or tied to another withdrawal",
                payout.state
            ));
        }
        Ok(())
    }

    /// A B2BINPAY payout callback: verified, recorded, applied, then marked done; a repeat of
    /// one already applied changes nothing. Any failure after verification is an error (the
    /// caller answers 5xx), so that B2BINPAY delivers it again.
    pub async fn b2binpay_callback(&self, body: &[u8]) -> Result<(), CallbackError> {
        let callback = self.b2binpay.verify_callback(body)?;
        // Only signed fields identify a callback.
        let dedupe = format!(
            "{}:{}:{}:{}",
            callback.tracking_id, callback.transfer_status, callback.amount, callback.time
        );
        let unavailable = |e: Error| {
            tracing::error!(error = %e, "B2BINPAY callback not applied; it will be sent again");
            CallbackError::Unavailable
        };
        let (event, processed) = self
            .record_callback(body, &callback.tracking_id, &dedupe)
            .await
            .map_err(unavailable)?;
        if processed {
            return Ok(());
        }
        let outcome = self.apply_callback(&callback).await.map_err(unavailable)?;
        let client = self.pool.get().await.map_err(|e| unavailable(e.into()))?;
        client
            .execute(
                "UPDATE crypto_events SET processed_at = now(), outcome = $2,
                        attempts = attempts + 1
                  WHERE id = $1",
                &[&event, &outcome],
            )
            .await
            .map_err(|e| unavailable(e.into()))?;
        Ok(())
    }

    /// Applies B2BINPAY callbacks recorded but not applied (their first answer was 503 and
    /// B2BINPAY may have given up resending them), with the same growing delay as inabit
    /// events; after 20 tries one goes to the review queue. Returns how many were tried.
    pub async fn retry_callbacks(&self) -> Result<usize, Error> {
        let rows = self
            .pool
            .get()
            .await?
            .query(
                "UPDATE crypto_events SET attempts = attempts + 1, last_attempt_at = now()
                  WHERE id IN (SELECT id FROM crypto_events
                                WHERE source = 'b2binpay' AND processed_at IS NULL
                                  AND coalesce(last_attempt_at, received_at + interval '1 minute')
                                      + attempts * attempts * interval '5 seconds' <= now()
                                ORDER BY received_at LIMIT 100
                                  FOR UPDATE SKIP LOCKED)
              RETURNING id, body, attempts",
                &[],
            )
            .await?;
        for row in &rows {
            let id: Uuid = row.try_get(0)?;
            let body: String = row.try_get(1)?;
            let attempts: i32 = row.try_get(2)?;
            let Err(e) = self.b2binpay_callback(body.as_bytes()).await else {
                continue;
            };
            tracing::warn!(event = %id, attempts, error = %e, "recorded B2BINPAY callback still not applied");
            if attempts >= 20 {
                self.pool
                    .get()
                    .await?
                    .execute(
                        "WITH given_up AS (
                             UPDATE crypto_events SET processed_at = now(), outcome = left($2, 300)
                              WHERE id = $1 AND processed_at IS NULL RETURNING id)
                         SELECT crypto_review('event', id, NULL, 'callback_unapplied', NULL)
                           FROM given_up",
                        &[&id, &e.to_string()],
                    )
                    .await?;
            }
        }
        Ok(rows.len())
    }

    /// Stores a callback (once per dedupe key). Returns its event and whether it was applied
    /// already.
    async fn record_callback(
        &self,
        body: &[u8],
        reference: &str,
        dedupe: &str,
    ) -> Result<(Uuid, bool), Error> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO crypto_events (id, source, event, reference, body, dedupe_key)
                 VALUES ($1, 'b2binpay', 'payout', $2, $3, $4)
                 ON CONFLICT ON CONSTRAINT crypto_events_dedupe_unique DO NOTHING",
                &[
                    &Uuid::now_v7(),
                    &reference,
                    &String::from_utf8_lossy(body).as_ref(),
                    &dedupe,
                ],
            )
            .await?;
        let row = client
            .query_one(
                "SELECT id, processed_at IS NOT NULL FROM crypto_events
                  WHERE source = 'b2binpay' AND dedupe_key = $1",
                &[&dedupe],
            )
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    async fn apply_callback(&self, callback: &b2binpay::Callback) -> Result<String, Error> {
        let payout = match Uuid::from_str(&callback.tracking_id) {
            Ok(id) => self.ledger.payout_by_id(id).await?,
            Err(_) => None,
        };
        let Some(payout) = payout.filter(|p| p.rail == Rail::B2binpay) else {
            tracing::warn!(
                tracking_id = callback.tracking_id,
                "B2BINPAY callback for no payout of ours"
            );
            return Ok("unknown_payout".into());
        };
        // `data.id` is not covered by the signature: it is only compared, never adopted (our
        // payout's B2BINPAY id comes from B2BINPAY's answer to its creation).
        if payout
            .provider_ref
            .as_deref()
            .is_some_and(|r| r != callback.payout_ref)
        {
            tracing::warn!(payout = %payout.id, "B2BINPAY callback names another payout id");
            return Ok("payout_mismatch".into());
        }
        let end = b2binpay_end(
            callback.transfer_status,
            callback.amount,
            payout.coin_amount,
        );
        self.conclude(&payout, end, &callback.transfer_status.to_string())
            .await
    }

    /// Refreshes inabit's login token when it is due. A failure is logged loudly and shown
    /// on the status endpoint.
    pub async fn refresh_login_if_due(&self) -> Result<bool, Error> {
        let due = self
            .inabit
            .login_refresh_due()
            .await
            .map_err(Error::Internal)?;
        if !due {
            return Ok(false);
        }
        match self.inabit.refresh_login_token().await {
            Ok(()) => {
                tracing::info!("inabit login token refreshed");
                Ok(true)
            }
            Err(e) => {
                tracing::error!(error = %e, "REFRESHING THE INABIT LOGIN TOKEN FAILED: payouts stop when it expires");
                self.inabit
                    .login_refresh_failed(&e.to_string())
                    .await
                    .map_err(Error::Internal)?;
                Err(integration(e))
            }
        }
    }

    /// The state of the integrations, for operations.
    pub async fn status(&self) -> Result<Value, Error> {
        let client = self.pool.get().await?;
        let token = client
            .query_opt(
                "SELECT (extract(epoch FROM refreshed_at) * 1000)::bigint,
                        (extract(epoch FROM expires_at) * 1000)::bigint, last_error,
                        (extract(epoch FROM last_error_at) * 1000)::bigint
                   FROM integration_tokens WHERE name = 'inabit_login'",
                &[],
            )
            .await?;
        let counts = client
            .query_one(
                "SELECT (SELECT count(*) FROM crypto_events WHERE processed_at IS NULL),
                        (SELECT count(*) FROM crypto_payouts WHERE state IN ('held', 'submitted')),
                        (SELECT count(*) FROM crypto_reviews WHERE resolved_at IS NULL),
                        (SELECT value FROM crypto_checkpoints WHERE name = 'inabit_deposits')",
                &[],
            )
            .await?;
        let login = match token {
            Some(row) => serde_json::json!({
                "present": true,
                "refreshedAtMs": row.try_get::<_, i64>(0)?,
                "expiresAtMs": row.try_get::<_, Option<i64>>(1)?,
                "lastError": row.try_get::<_, Option<String>>(2)?,
                "lastErrorAtMs": row.try_get::<_, Option<i64>>(3)?,
            }),
            None => serde_json::json!({"present": false}),
        };
        let jobs = self.jobs.lock().map(|j| j.clone()).unwrap_or_default();
        Ok(serde_json::json!({
            "inabitLoginToken": login,
            "pendingEvents": counts.try_get::<_, i64>(0)?,
            "payoutsInFlight": counts.try_get::<_, i64>(1)?,
            "openReviews": counts.try_get::<_, i64>(2)?,
            "depositCheckpoint": counts.try_get::<_, Option<String>>(3)?,
            "jobs": jobs,
        }))
    }

    /// Starts the background jobs on the current runtime: the event worker (woken by each
    /// webhook, and every 5 s), deposit polling, payout recovery and tracking, and the login
    /// token refresh. Abort the returned tasks to stop.
    pub fn spawn_jobs(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let me = self.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = me.seed_login_token().await {
                tracing::error!(error = %e, "cannot store the configured inabit login token");
            }
            loop {
                if let Err(e) = me.retry_callbacks().await {
                    tracing::warn!(error = %e, "callback retries");
                }
                match me.process_events().await {
                    // A full round: more may be waiting.
                    Ok(100..) => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "event worker"),
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), me.wake.notified()).await;
            }
        }));
        // Without a Terminal key there is nothing to poll.
        let poll = self
            .config
            .poll_interval
            .filter(|_| self.config.inabit.terminal_key.is_some());
        if let Some(every) = poll {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let result = me.poll_deposits().await;
                    if let Ok(mut jobs) = me.jobs.lock() {
                        jobs.last_poll_ms = Some(now_ms());
                        jobs.last_poll_error = result.as_ref().err().map(|e| e.to_string());
                    }
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "deposit polling");
                    }
                    tokio::time::sleep(every).await;
                }
            }));
        }
        if let Some(every) = self.config.payout_interval {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let result = me.run_payouts().await;
                    if let Ok(mut jobs) = me.jobs.lock() {
                        jobs.last_payout_run_ms = Some(now_ms());
                        jobs.last_payout_error = result.as_ref().err().map(|e| e.to_string());
                    }
                }
            }));
        }
        if let Some(every) = self.config.login_check_interval {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let _ = me.refresh_login_if_due().await;
                    tokio::time::sleep(every).await;
                }
            }));
        }
        tasks
    }
}

/// What a B2BINPAY transfer status means for a payout: 2 confirmed (of our amount) → paid;
/// -1 failed, -3 canceled → released; -2 blocked by AML, or confirmed with another amount →
/// review; 0 created, 1 unconfirmed → not final.
fn b2binpay_end(status: i64, amount: Decimal, ours: Decimal) -> Option<PayoutEnd> {
    match status {
        2 if amount == ours => Some(PayoutEnd::Paid),
        2 | -2 => Some(PayoutEnd::Review),
        -1 | -3 => Some(PayoutEnd::Released),
        _ => None,
    }
}
