//! Request ids (nonces): each accepted once per counterparty, by every croupier on the
//! database, before and after a restart.
//!
//! Two layers:
//! - in memory, per process, the ids of the last minute or two (`MemoryNonces`): a replay to
//!   the same process is refused with no database work;
//! - in PostgreSQL (`request_nonces`), the claim that counts. A bet in transfer mode claims
//!   its id in its own transaction (`bet_batch`, `bet_one`): one more row in a transaction
//!   that writes anyway. Every other call claims here first: concurrent claims are combined
//!   into one `INSERT … ON CONFLICT DO NOTHING` per lane (one lane per HTTP worker thread,
//!   like the bet combiners), on connections that commit without waiting for the WAL flush
//!   (`synchronous_commit = off`). Such a claim is visible to every other server the moment
//!   it commits, and it is made durable by the flush of the money call that follows it (the
//!   WAL is written in order): a request that moved money never loses its claim to a crash.
//!   A crash can lose only the claims of requests that moved nothing (a balance read) since.
//!
//! Rows older than `NONCE_MEMORY` twice over are deleted by `Nonces::prune` (a server job):
//! by then the timestamp window refuses the request anyway.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::Error;

/// How long a request id is remembered in memory, at least. It must outlive the timestamp
/// window on both sides (a request stamped t is accepted until t + 30 s), so 60 s.
pub const NONCE_MEMORY: Duration = Duration::from_secs(60);

/// Claims combined into one statement, at most.
const MAX_CLAIMS: usize = 256;

/// Claims waiting per lane before new ones are answered "unavailable".
const LANE_QUEUE: usize = 4096;

const CLAIM: &str = "INSERT INTO request_nonces (counterparty_id, request_id)
     SELECT * FROM unnest($1::text[], $2::uuid[])
     ON CONFLICT DO NOTHING
     RETURNING counterparty_id, request_id";

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Both layers, for one server.
pub struct Nonces {
    memory: MemoryNonces,
    pool: Pool,
    /// Tells this server's lanes apart from another's on the same thread (tests run several).
    id: u64,
}

impl Nonces {
    pub fn new(pool: Pool) -> Self {
        Self {
            memory: MemoryNonces::new(NONCE_MEMORY),
            pool,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Records `nonce` in this process's memory: false if this process has seen it.
    pub fn first_here(&self, counterparty: &str, nonce: u128) -> bool {
        self.memory.first_use(counterparty, nonce)
    }

    /// Claims `nonce` for `counterparty` in the database: false if any croupier on it has
    /// claimed it before.
    pub async fn claim(&self, counterparty: &str, nonce: Uuid) -> Result<bool, Error> {
        Lane::for_this_thread(self.id, &self.pool)
            .claim(counterparty.to_string(), nonce)
            .await
    }
}

impl Nonces {
    /// Deletes the request ids older than twice the memory: run every so often by each
    /// server.
    pub async fn prune(&self) -> Result<u64, Error> {
        let client = self.pool.get().await?;
        Ok(client
            .execute(
                "DELETE FROM request_nonces WHERE seen_at < now() - make_interval(secs => $1)",
                &[&(2.0 * NONCE_MEMORY.as_secs_f64())],
            )
            .await?)
    }
}

type Claim = (String, Uuid, oneshot::Sender<Result<bool, Error>>);

struct Lane {
    queue: mpsc::Sender<Claim>,
}

thread_local! {
    static LANES: RefCell<HashMap<u64, Rc<Lane>>> = RefCell::new(HashMap::new());
}

impl Lane {
    fn for_this_thread(id: u64, pool: &Pool) -> Rc<Self> {
        LANES.with(|lanes| {
            lanes
                .borrow_mut()
                .entry(id)
                .or_insert_with(|| {
                    let (queue, claims) = mpsc::channel(LANE_QUEUE);
                    tokio::spawn(run_lane(pool.clone(), claims));
                    Rc::new(Self { queue })
                })
                .clone()
        })
    }

    async fn claim(&self, counterparty: String, nonce: Uuid) -> Result<bool, Error> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send((counterparty, nonce, reply))
            .map_err(|_| Error::Unavailable(anyhow::anyhow!("nonce queue full")))?;
        answer
            .await
            .map_err(|_| Error::Unavailable(anyhow::anyhow!("nonce lane stopped")))?
    }
}

/// Runs whatever claims have queued while the previous statement ran, in one statement.
async fn run_lane(pool: Pool, mut queue: mpsc::Receiver<Claim>) {
    let mut claims = Vec::with_capacity(MAX_CLAIMS);
    while queue.recv_many(&mut claims, MAX_CLAIMS).await > 0 {
        let outcome = claim_all(&pool, &claims).await;
        for (i, (_, _, reply)) in claims.drain(..).enumerate() {
            let answer = match &outcome {
                Ok(claimed) => Ok(claimed.get(i).copied().unwrap_or(false)),
                Err(e) => Err(Error::Unavailable(anyhow::anyhow!("{e}"))),
            };
            // The caller may have gone; its claim stands either way.
            let _ = reply.send(answer);
        }
    }
}

/// Whether each claim was new.
async fn claim_all(pool: &Pool, claims: &[Claim]) -> Result<Vec<bool>, Error> {
    let counterparties: Vec<&str> = claims.iter().map(|(c, _, _)| c.as_str()).collect();
    let nonces: Vec<Uuid> = claims.iter().map(|(_, n, _)| *n).collect();
    let client = pool.get().await?;
    let stmt = client.prepare_cached(CLAIM).await?;
    let rows = client.query(&stmt, &[&counterparties, &nonces]).await?;
    let mut new = HashSet::with_capacity(rows.len());
    for row in &rows {
        new.insert((row.try_get::<_, String>(0)?, row.try_get::<_, Uuid>(1)?));
    }
    // Each (counterparty, nonce) is claimed by one call at most: the memory layer lets
    // through only the first of a process's calls with it.
    Ok(claims
        .iter()
        .map(|(c, n, _)| new.remove(&(c.clone(), *n)))
        .collect())
}

/// Request ids seen recently, per counterparty, in two generations: an id is remembered for
/// between `memory` and twice that. 24 bytes per id and no per-entry timer, so a busy server
/// keeps a minute of ids cheaply. Sharded to keep the lock short and uncontended.
struct MemoryNonces {
    shards: Vec<Mutex<Generations>>,
    memory: Duration,
    hasher: std::collections::hash_map::RandomState,
}

struct Generations {
    current: HashSet<(u64, u128)>,
    previous: HashSet<(u64, u128)>,
    started: Instant,
}

const NONCE_SHARDS: usize = 16;

impl MemoryNonces {
    fn new(memory: Duration) -> Self {
        let shards = (0..NONCE_SHARDS)
            .map(|_| {
                Mutex::new(Generations {
                    current: HashSet::new(),
                    previous: HashSet::new(),
                    started: Instant::now(),
                })
            })
            .collect();
        Self {
            shards,
            memory,
            hasher: Default::default(),
        }
    }

    /// Records `nonce` for `counterparty`; false if it was already recorded.
    fn first_use(&self, counterparty: &str, nonce: u128) -> bool {
        let key = (self.hasher.hash_one(counterparty), nonce);
        let shard = (nonce as usize) % NONCE_SHARDS;
        let Some(shard) = self.shards.get(shard) else {
            return false;
        };
        // A poisoned lock only means another thread panicked mid-insert; the sets are still
        // valid sets.
        let mut g = shard.lock().unwrap_or_else(|p| p.into_inner());
        if g.started.elapsed() >= self.memory {
            g.previous = std::mem::take(&mut g.current);
            g.started = Instant::now();
        }
        if g.previous.contains(&key) {
            return false;
        }
        g.current.insert(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_refused_the_second_time_and_per_counterparty() {
        let store = MemoryNonces::new(Duration::from_secs(60));
        assert!(store.first_use("a", 7));
        assert!(!store.first_use("a", 7));
        assert!(store.first_use("b", 7));
    }

    #[test]
    fn nonces_survive_one_rotation_and_are_forgotten_after_two() {
        let store = MemoryNonces::new(Duration::from_millis(30));
        assert!(store.first_use("a", 1));
        std::thread::sleep(Duration::from_millis(40));
        // Rotated once: still remembered.
        assert!(!store.first_use("a", 1));
        std::thread::sleep(Duration::from_millis(40));
        // Same shard as 1 (nonce % 16): this call rotates that shard a second time.
        assert!(store.first_use("a", 17));
        assert!(store.first_use("a", 1));
    }
}
