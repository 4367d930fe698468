//! Seamless mode: a casino that keeps its players' money in its own wallet. Every provider
//! call on a seamless operator's session becomes money movements (legs) croupier sends to the
//! casino as RS256-signed JWTs; the casino calls back with its verdicts (`payments/accept`).
//!
//! - `keys`: the signing keys and the JWKS;
//! - `settings`: each seamless operator's wallet URL, timeouts and ErrorCode meanings;
//! - `tokens`: the bearer tokens the casino gets from `auth/token`;
//! - `admin`: the operator's mode and settings, key rotation;
//! - `casino`: one signed call to a casino and what its answer means;
//! - `sender`: legs sent alone or combined into `make-list` calls; `breaker`: a circuit
//!   breaker per casino;
//! - `engine`: provider calls forwarded as legs (`legs`), through the database steps of
//!   `steps`, combined across concurrent calls by `lanes`;
//! - `jobs`: retries, compensations, stuck legs and `payments/info`.
//!
//! Seamless work runs on a pool of its own and never holds a connection across a call to a
//! casino.

pub mod admin;
pub mod breaker;
pub mod casino;
pub mod engine;
pub mod jobs;
pub mod keys;
pub mod lanes;
pub mod legs;
pub mod sender;
pub mod settings;
pub mod steps;
pub mod tokens;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Lanes per kind of database step (each runs one batch at a time on one connection), lists
/// in flight per casino at most, and how many steps or makes may wait in a lane. Measured
/// with the benchmark's seamless series: every batch and every list costs a commit or a
/// signature, so more lanes (smaller batches) cost more CPU per bet, and on a busy machine
/// that is also what the tail latency waits for. Two lists in flight keep a slow casino
/// busy; a lane's batch grows with the load (up to `steps::MAX_BATCH`).
const STEP_LANES: usize = 1;
const LIST_LANES: usize = 2;
const LANE_QUEUE: usize = 4096;

/// What the seamless part of a server shares.
pub struct Seamless {
    pool: Pool,
    /// The bet path's pool, for the one read a transfer bet makes here (the operator's mode,
    /// cached): its connections are warm.
    lookups: Pool,
    pub keys: Arc<KeyRing>,
    /// Settings by operator id; `None`: a transfer operator.
    settings: moka::sync::Cache<String, Option<Arc<SeamlessSettings>>>,
    verify_limit: DefaultKeyedRateLimiter<IpAddr>,
    /// Every casino call goes through it.
    outbound: sender::Outbound,
    /// The database steps, and the name this process leases legs under.
    steps: steps::Steps,
    /// Whether concurrent steps are combined (group commit), as bets are.
    batching: bool,
    /// This instance, for the lanes each thread keeps for it.
    instance: u64,
    /// Casino balances by (operator, player), served while the casino is slow.
    balances: moka::sync::Cache<(String, String), (rust_decimal::Decimal, std::time::Instant)>,
}

/// A thread's lanes for one `Seamless`: the two kinds of database step, and the make-lists of
/// each operator that enables them.
struct ThreadLanes {
    calls: Arc<lanes::Lanes<steps::CallStep, Result<legs::Step, Error>>>,
    records: Arc<lanes::Lanes<steps::RecordStep, Result<Vec<legs::LegView>, Error>>>,
    lists: HashMap<String, Arc<ListLanes>>,
}

type ListLanes = lanes::Lanes<sender::ListItem, Result<casino::Exchange, Error>>;

thread_local! {
    static LANES: RefCell<HashMap<u64, ThreadLanes>> = RefCell::new(HashMap::new());
}

static INSTANCES: AtomicU64 = AtomicU64::new(0);

impl Seamless {
    /// `pool` is the seamless pool, never the one bets run on; `lookups` the bets' pool, for
    /// the operators' settings. With `batching`, concurrent database steps are combined.
    pub fn new(
        pool: Pool,
        lookups: Pool,
        signing: SigningConfig,
        batching: bool,
    ) -> anyhow::Result<Self> {
        let keys = Arc::new(KeyRing::new(pool.clone(), signing));
        Ok(Self {
            lookups,
            outbound: sender::Outbound {
                http: casino::http_client()?,
                keys: keys.clone(),
                breakers: Arc::new(breaker::Breakers::default()),
            },
            steps: steps::Steps {
                pool: pool.clone(),
                owner: uuid::Uuid::new_v4(),
            },
            batching,
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            keys,
            settings: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(SETTINGS_TTL)
                .build(),
            verify_limit: RateLimiter::keyed(
                Quota::per_second(NonZeroU32::new(VERIFY_PER_SECOND).unwrap_or(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(VERIFY_BURST).unwrap_or(NonZeroU32::MIN)),
            ),
            balances: engine::balance_cache(),
            pool,
        })
    }

    /// This thread's lanes for this instance, started on the current runtime on first use
    /// (and again if the runtime they ran on has ended).
    fn with_lanes<T>(&self, use_them: impl FnOnce(&mut ThreadLanes) -> T) -> T {
        LANES.with(|all| {
            let mut all = all.borrow_mut();
            let stale = all
                .get(&self.instance)
                .is_some_and(|l| l.calls.is_closed() || l.records.is_closed());
            if stale {
                all.remove(&self.instance);
            }
            let lanes = all.entry(self.instance).or_insert_with(|| {
                let (calls, records) = (self.steps.clone(), self.steps.clone());
                ThreadLanes {
                    calls: Arc::new(lanes::Lanes::start(
                        STEP_LANES,
                        steps::MAX_BATCH,
                        LANE_QUEUE,
                        move |batch| {
                            let steps = calls.clone();
                            async move { steps.calls(batch).await }
                        },
                    )),
                    records: Arc::new(lanes::Lanes::start(
                        STEP_LANES,
                        steps::MAX_BATCH,
                        LANE_QUEUE,
                        move |batch| {
                            let steps = records.clone();
                            async move { steps.records(batch).await }
                        },
                    )),
                    lists: HashMap::new(),
                }
            });
            use_them(lanes)
        })
    }

    /// Writes a provider call as legs: alone, or with the calls that queued with it.
    async fn call_step(&self, step: steps::CallStep) -> Result<legs::Step, Error> {
        if !self.batching {
            return self.steps.call(&step).await;
        }
        let key = lanes::key_of((&step.provider, &step.bet_id));
        let calls = self.with_lanes(|l| l.calls.clone());
        calls.submit(key, step).await?
    }

    /// Records an attempt's outcome: alone, or with the outcomes that queued with it.
    async fn record_step(&self, step: steps::RecordStep) -> Result<Vec<legs::LegView>, Error> {
        if !self.batching {
            return self.steps.record(&step).await;
        }
        let key = lanes::key_of(step.leg);
        let records = self.with_lanes(|l| l.records.clone());
        records.submit(key, step).await?
    }

    /// Sends `data` to the operator's casino at `path`: a make of an operator with make-list
    /// on joins whatever other makes are going to that casino now.
    async fn send(
        &self,
        settings: &Arc<SeamlessSettings>,
        path: &str,
        data: &str,
        timeout: Duration,
    ) -> Result<casino::Exchange, Error> {
        if !(settings.make_list && path == casino::path::MAKE) {
            return self.outbound.post(settings, path, data, timeout).await;
        }
        let lists = self.with_lanes(|l| {
            let stale = l
                .lists
                .get(&settings.operator_id)
                .is_some_and(|lanes| lanes.is_closed());
            if stale {
                l.lists.remove(&settings.operator_id);
            }
            l.lists
                .entry(settings.operator_id.clone())
                .or_insert_with(|| {
                    let outbound = self.outbound.clone();
                    Arc::new(lanes::Lanes::start_shared(
                        LIST_LANES,
                        sender::MAX_LIST,
                        LANE_QUEUE,
                        move |items| {
                            let outbound = outbound.clone();
                            async move { outbound.send_list(items).await }
                        },
                    ))
                })
                .clone()
        });
        let item = sender::ListItem {
            settings: settings.clone(),
            data: data.to_string(),
            timeout,
        };
        lists.submit(lanes::key_of(data), item).await?
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

    /// The legs not final yet, by state, as gauges (read at scrape time on `pool`, not the
    /// pool that forwards bets; every state is set, a state with no leg to 0).
    pub async fn collect_gauges(&self, pool: &Pool) -> Result<(), Error> {
        let rows = pool
            .get()
            .await?
            .query(
                "SELECT state, count(*) FROM seamless_legs
                  WHERE state NOT IN ('ok', 'refused') GROUP BY state",
                &[],
            )
            .await?;
        for state in ["pending", "sent", "unknown", "stuck"] {
            let mut n = 0i64;
            for row in &rows {
                if row.try_get::<_, &str>(0)? == state {
                    n = row.try_get(1)?;
                }
            }
            metrics::gauge!(crate::telemetry::name::SEAMLESS_LEGS, "state" => state).set(n as f64);
        }
        Ok(())
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
