//! Group commit. Concurrent bets are combined into one transaction (`bet_batch`): one commit,
//! one WAL flush and one round trip for many bets, with the same per-bet functions and
//! answers as when each runs alone.
//!
//! - Each player's calls are routed to one combiner (by player id), which runs one batch at
//!   a time: a player's calls are applied in arrival order, and a hot player queues here, in
//!   memory, instead of on its wallet's row lock.
//! - A batch takes whatever has queued while the previous one ran (at most `max_batch`), so
//!   an idle server adds no delay and a busy one batches more.
//! - `bet_batch` locks every wallet of the batch in id order before any bet: two batches
//!   never deadlock.
//! - One refused bet does not fail its neighbours (refusals are outcomes). If the batch fails
//!   as a whole (a database error), each call is run again alone, so one bad call cannot
//!   fail the others; a lost connection answers every call "unavailable, retry".
//! - Queues are bounded: a full queue answers at once (code 99, retry) rather than growing.
//! - Combiners live on the thread that serves the request (each HTTP worker has its own set,
//!   started on first use): a bet then goes from its handler to its combiner, to PostgreSQL
//!   and back without waking another thread, which on a small machine costs more than the
//!   work itself.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::bets::{execute_batch, execute_one, BetRequest};
use super::BetReceipt;
use crate::error::Error;
use crate::telemetry::{self, name};

/// Group-commit tuning.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Number of combiners (each runs one batch at a time on one connection).
    pub combiners: usize,
    /// Largest batch (at most `MAX_BATCH`).
    pub max_batch: usize,
    /// Calls waiting per combiner before new ones are refused.
    pub queue: usize,
    /// How long a combiner waits for more calls before running a batch smaller than
    /// `max_batch`; zero runs whatever is there at once.
    pub max_wait: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            combiners: 3,
            max_batch: 64,
            queue: 4096,
            max_wait: Duration::ZERO,
        }
    }
}

/// The largest batch `bet_batch` takes (it refuses more, as an assertion).
pub const MAX_BATCH: usize = 1000;

type Reply = oneshot::Sender<Result<BetReceipt, Error>>;

/// A queued call: the request, where its outcome goes, its place in the queue.
type Job = (BetRequest, Reply, Queued);

/// A call's place in a combiner's queue: counted in `croupier_bet_queue_depth` from before
/// it is sent until it is dropped (taken into a batch, refused by a full queue, or lost with
/// a stopped combiner), so the gauge cannot drift.
struct Queued(Instant);

impl Queued {
    fn new() -> Self {
        metrics::gauge!(name::BET_QUEUE_DEPTH).increment(1.0);
        Self(Instant::now())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        metrics::gauge!(name::BET_QUEUE_DEPTH).decrement(1.0);
    }
}

pub struct Combiner {
    queues: Vec<mpsc::Sender<Job>>,
}

/// Combiners that stopped by panicking, in this process (`/health/ready` is then unready:
/// the bets routed to one are refused until a restart).
static FAILED: AtomicU64 = AtomicU64::new(0);

/// Whether every combiner started in this process is still running.
pub fn all_running() -> bool {
    FAILED.load(Ordering::Relaxed) == 0
}

/// Counts its combiner as failed if dropped while unwinding.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        if std::thread::panicking() {
            FAILED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    /// This thread's combiners, by ledger.
    static COMBINERS: RefCell<HashMap<u64, Rc<Combiner>>> = RefCell::new(HashMap::new());
}

impl Combiner {
    /// The calling thread's combiners for ledger `ledger`, started on the current runtime on
    /// first use.
    pub fn for_this_thread(ledger: u64, pool: &Pool, settings: BatchSettings) -> Rc<Self> {
        COMBINERS.with(|all| {
            all.borrow_mut()
                .entry(ledger)
                .or_insert_with(|| Rc::new(Self::start(pool.clone(), settings)))
                .clone()
        })
    }

    pub fn start(pool: Pool, settings: BatchSettings) -> Self {
        let queues = (0..settings.combiners.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(settings.queue.max(1));
                tokio::spawn(combine(pool.clone(), rx, settings));
                tx
            })
            .collect();
        Self { queues }
    }

    /// Queues a call on its player's combiner and waits for its outcome.
    pub async fn submit(&self, player: Uuid, request: BetRequest) -> Result<BetReceipt, Error> {
        let lane = (player.as_u128() % self.queues.len() as u128) as usize;
        let queue = self
            .queues
            .get(lane)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no combiner")))?;
        let (reply, outcome) = oneshot::channel();
        queue
            .try_send((request, reply, Queued::new()))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    metrics::counter!(name::BET_QUEUE_FULL).increment(1);
                    Error::Unavailable(anyhow::anyhow!("bet queue full"))
                }
                mpsc::error::TrySendError::Closed(_) => {
                    Error::Unavailable(anyhow::anyhow!("bet queue closed"))
                }
            })?;
        outcome
            .await
            .map_err(|_| Error::Unavailable(anyhow::anyhow!("combiner stopped")))?
    }
}

async fn combine(pool: Pool, mut queue: mpsc::Receiver<Job>, settings: BatchSettings) {
    let _running = Running;
    let settings = BatchSettings {
        max_batch: settings.max_batch.clamp(1, MAX_BATCH),
        ..settings
    };
    let mut jobs = Vec::with_capacity(settings.max_batch);
    loop {
        if queue.recv_many(&mut jobs, settings.max_batch).await == 0 {
            return; // every sender is gone: the server is shutting down
        }
        if !settings.max_wait.is_zero() && jobs.len() < settings.max_batch {
            let deadline = tokio::time::Instant::now() + settings.max_wait;
            while jobs.len() < settings.max_batch {
                let room = settings.max_batch - jobs.len();
                match tokio::time::timeout_at(deadline, queue.recv_many(&mut jobs, room)).await {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
        let now = Instant::now();
        metrics::histogram!(name::BET_BATCH_SIZE).record(jobs.len() as f64);
        let queue = telemetry::bet_stage_histogram("queue");
        let (requests, replies): (Vec<_>, Vec<_>) = jobs
            .drain(..)
            .map(|(request, reply, queued)| {
                queue.record(now.saturating_duration_since(queued.0));
                (request, reply)
            })
            .unzip();
        let outcomes = run_batch(&pool, &requests).await;
        // Per call, as the other stages: the batch's time is each of its calls' time.
        let database = telemetry::bet_stage_histogram("database");
        let took = now.elapsed();
        for _ in &requests {
            database.record(took);
        }
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // The caller may have gone (client disconnected); the bet stands either way.
            let _ = reply.send(outcome);
        }
    }
}

/// One outcome per request, in order.
async fn run_batch(pool: &Pool, requests: &[BetRequest]) -> Vec<Result<BetReceipt, Error>> {
    let client = match pool.get().await {
        Ok(c) => c,
        Err(e) => {
            let e = Error::from(e);
            return requests.iter().map(|_| Err(unavailable(&e))).collect();
        }
    };
    if let [one] = requests {
        return vec![execute_one(&client, one).await];
    }
    match execute_batch(&client, requests).await {
        Ok(outcomes) => outcomes,
        // The connection is gone: nothing more can be tried on it.
        Err(e) if client.is_closed() => requests.iter().map(|_| Err(unavailable(&e))).collect(),
        // Anything else (a bad call, a deadlock between two batches reusing one betId on
        // different wallets) rolled the batch back: each call alone.
        Err(e) => {
            tracing::warn!(error = %e, calls = requests.len(), "bet batch failed; running its calls one by one");
            let mut outcomes = Vec::with_capacity(requests.len());
            for r in requests {
                outcomes.push(execute_one(&client, r).await);
            }
            outcomes
        }
    }
}

fn unavailable(e: &Error) -> Error {
    Error::Unavailable(anyhow::anyhow!("{e}"))
}
