//! Deposits: inabit webhooks are recorded as events, the event worker confirms each from
//! inabit's API and applies it, and polling reads every deposit updated since a checkpoint
//! (for the webhooks that never came).

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::inabit::Listed;
use super::webhooks::Busy;
use super::{http, sql, Crypto};
use crate::error::Error;
use crate::ledger::crypto::{DepositOutcome, FinishOutcome, Rail, ReopenOutcome, ReviewReason};

/// What became of an event or a callback, as `crypto_events.outcome` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// It named no transaction.
    NoReference,
    /// inabit does not know the transaction (yet); polling will find it.
    Unconfirmed,
    /// One of our inabit payouts: tracked.
    Payout,
    /// A deposit, applied by the ledger.
    Deposit(DepositOutcome),
    /// A payout ended by the provider's word.
    Finished(FinishOutcome),
    /// A payout's provider status noted; not final yet.
    InProgress,
    /// A B2BINPAY callback for no payout of ours.
    UnknownPayout,
    /// A B2BINPAY callback naming another payout id than ours.
    PayoutMismatch,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::NoReference => "no_reference",
            EventOutcome::Unconfirmed => "unconfirmed",
            EventOutcome::Payout => "payout",
            EventOutcome::Deposit(outcome) => outcome.as_str(),
            EventOutcome::Finished(outcome) => outcome.as_str(),
            EventOutcome::InProgress => "in_progress",
            EventOutcome::UnknownPayout => "unknown_payout",
            EventOutcome::PayoutMismatch => "payout_mismatch",
        }
    }
}

impl Serialize for EventOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The checkpoint before any deposit.
const EPOCH: &str = "1970-01-01T00:00:00Z";
const PAGE: usize = 100;
const BIG_PAGE: usize = 1000;

/// An inabit webhook as recorded: its text, its event and the transaction it names.
#[derive(Debug)]
pub struct Webhook<'a> {
    pub text: &'a str,
    pub event: Option<String>,
    pub reference: Option<String>,
}

/// Reads an inabit webhook: a JSON object, with `event` and a transaction id in `data`
/// (`transactionId`, `purchaseId` or `id`) if it has them.
pub fn read_webhook(body: &[u8]) -> Result<Webhook<'_>, Error> {
    let text = std::str::from_utf8(body).map_err(|_| Error::bad_format("the body is not UTF-8"))?;
    let value: Value =
        serde_json::from_str(text).map_err(|_| Error::bad_format("the body is not JSON"))?;
    if !value.is_object() {
        return Err(Error::bad_format("the body must be a JSON object"));
    }
    let event = value
        .get("event")
        .and_then(Value::as_str)
        .map(str::to_string);
    let reference = value
        .get("data")
        .and_then(|d| http::text_field(d, &["transactionId", "purchaseId", "id"]));
    // PostgreSQL text holds no NUL character; the body itself keeps it escaped (`\u0000`).
    if [&event, &reference]
        .into_iter()
        .flatten()
        .any(|t| t.contains('\0'))
    {
        return Err(Error::bad_value(
            "the event or transaction id holds a NUL character",
        ));
    }
    Ok(Webhook {
        text,
        event,
        reference,
    })
}

impl Crypto {
    /// Records an inabit webhook from `source` exactly as received and wakes the worker, if
    /// the webhook limits let it in (else the reason, nothing stored). Only a JSON object is
    /// accepted.
    pub async fn record_webhook(
        &self,
        body: &[u8],
        source: Option<std::net::IpAddr>,
    ) -> Result<Result<Uuid, Busy>, Error> {
        if let Err(busy) = self.webhooks.admit(source, &self.pool).await? {
            return Ok(Err(busy));
        }
        let webhook = read_webhook(body)?;
        let client = self.pool.get().await?;
        let id = Uuid::now_v7();
        client
            .execute(
                sql::INSERT_WEBHOOK,
                &[&id, &webhook.event, &webhook.reference, &webhook.text],
            )
            .await?;
        self.wake.notify_one();
        Ok(Ok(id))
    }

    /// Works through the recorded inabit events: each names a transaction, which is read
    /// from inabit's API and applied (a deposit) or tracked (one of our payouts). Events naming
    /// the same transaction are confirmed with one read, so a burst of repeats costs inabit one
    /// call. A transaction that cannot be read now is tried again later, up to 20 times over
    /// about three and a half hours, then put in the review queue; one inabit does not know
    /// (yet) is left to the polling job. Returns how many transactions were looked at (100 at
    /// most per call).
    pub async fn process_events(&self) -> Result<usize, Error> {
        let groups = self.pool.get().await?.query(sql::DUE_EVENTS, &[]).await?;
        for group in &groups {
            let reference: Option<String> = group.try_get(0)?;
            let ids: Vec<Uuid> = group.try_get(1)?;
            let outcome = match &reference {
                None => Ok(EventOutcome::NoReference),
                Some(reference) => self.confirm(reference).await,
            };
            let client = self.pool.get().await?;
            match outcome {
                Ok(outcome) => {
                    client
                        .execute(sql::EVENTS_DONE, &[&ids, &outcome.as_str()])
                        .await?;
                }
                Err(e) => {
                    tracing::warn!(reference, error = %e, "inabit event not confirmed yet");
                    let reason = ReviewReason::EventUnconfirmed.as_str();
                    client
                        .execute(sql::EVENTS_FAILED, &[&ids, &e.to_string(), &reason])
                        .await?;
                }
            }
        }
        Ok(groups.len())
    }

    /// Reopens a deposit waiting in review that credited nothing (see
    /// `crypto_deposit_reopen`), then reads it from inabit and applies it afresh. Returns
    /// (the reopening, the new outcome if inabit could be asked).
    pub async fn reopen_deposit(
        &self,
        tx: &str,
    ) -> Result<(ReopenOutcome, Option<EventOutcome>), Error> {
        let reopened = self.ledger.deposit_reopen(tx).await?;
        if reopened != ReopenOutcome::Reopened {
            return Ok((reopened, None));
        }
        let outcome = self.confirm(tx).await.map_err(|e| {
            tracing::warn!(tx, error = %e, "reopened deposit not confirmed yet; polling will");
            e
        });
        Ok((reopened, outcome.ok()))
    }

    /// Confirms what a webhook hinted at, from inabit's API.
    async fn confirm(&self, reference: &str) -> Result<EventOutcome, Error> {
        if let Some(payout) = self
            .ledger
            .payout_by_provider_ref(Rail::Inabit, reference)
            .await?
        {
            return self
                .track_inabit(&payout)
                .await
                .map(|_| EventOutcome::Payout);
        }
        match self.inabit.deposit(reference).await? {
            None => {
                // Dropped: no review entry, nothing retried (a real deposit that inabit lists
                // later is applied by the polling job).
                tracing::warn!(reference, "webhook for a deposit inabit does not confirm");
                self.webhooks
                    .counts
                    .unknown_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(EventOutcome::Unconfirmed)
            }
            Some(report) => {
                let effect = self.ledger.deposit_apply(&report).await?;
                tracing::info!(
                    reference,
                    status = report.status,
                    outcome = effect.outcome.as_str(),
                    state = effect.state.as_str(),
                    "deposit"
                );
                Ok(EventOutcome::Deposit(effect.outcome))
            }
        }
    }

    /// Reads every deposit updated since the stored checkpoint and applies it; the
    /// checkpoint moves after each page. Returns how many deposits were read.
    pub async fn poll_deposits(&self) -> Result<usize, Error> {
        let mut read = 0;
        let mut page_size = PAGE;
        loop {
            let since = self
                .pool
                .get()
                .await?
                .query_opt(sql::POLL_CHECKPOINT, &[])
                .await?
                .map(|r| r.try_get::<_, String>(0))
                .transpose()?
                .unwrap_or_else(|| EPOCH.into());
            let page = self.inabit.deposits_since(&since, page_size).await?;
            let mut next = since.clone();
            for listed in &page {
                self.apply_listed(listed).await?;
                if let Some(t) = &listed.updated_at {
                    if *t > next {
                        next = t.clone();
                    }
                }
            }
            read += page.len();
            self.pool
                .get()
                .await?
                .execute(sql::MOVE_POLL_CHECKPOINT, &[&next])
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

    /// Applies one polled deposit. One that cannot be read or applied becomes an event for
    /// the worker to retry (and, failing that, to put in review), and polling goes on; only
    /// a database that is away stops it (the checkpoint stays).
    async fn apply_listed(&self, listed: &Listed) -> Result<(), Error> {
        let failed = match &listed.report {
            Ok(report) => match self.ledger.deposit_apply(report).await {
                Ok(_) => return Ok(()),
                Err(e @ Error::Unavailable(_)) => return Err(e),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        tracing::error!(tx = ?listed.transaction_id, error = failed, "polled deposit not applied");
        let Some(tx) = &listed.transaction_id else {
            tracing::error!("inabit listed a deposit without transactionId");
            return Ok(());
        };
        // Once per transaction and update time: the same item is listed again by every poll
        // until something newer comes.
        let dedupe = format!("poll:{tx}:{}", listed.updated_at.as_deref().unwrap_or(""));
        self.pool
            .get()
            .await?
            .execute(sql::INSERT_POLL_FAILURE, &[&Uuid::now_v7(), tx, &dedupe])
            .await?;
        Ok(())
    }
}
