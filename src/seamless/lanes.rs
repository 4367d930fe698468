//! Lanes: concurrent requests of one kind combined into batches, as the bets' group commit
//! does. Each lane is a task that takes whatever has queued while its previous batch ran (at
//! most `max_batch`) and runs it as one: an idle server adds no wait, a busy one batches more.
//! A request always goes to the lane its key names, so requests with one key are batched in
//! arrival order and never run in two batches at once.
//!
//! Lanes live on the thread that first asks for them (see `Seamless::lanes`), like the bets'
//! combiners: a request then goes from its handler to its lane and back without waking another
//! thread.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::error::Error;

/// Requests of one kind, each answered by one response.
pub struct Lanes<Req, Resp> {
    queues: Vec<mpsc::Sender<Job<Req, Resp>>>,
}

type Job<Req, Resp> = (Req, oneshot::Sender<Resp>);

/// A lane: takes what has queued (at most `max_batch`), runs it, answers each request.
async fn serve<Req, Resp, F, Fut>(
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Job<Req, Resp>>>>,
    max_batch: usize,
    run: F,
) where
    F: Fn(Vec<Req>) -> Fut,
    Fut: Future<Output = Vec<Resp>>,
{
    let max_batch = max_batch.max(1);
    let mut jobs = Vec::with_capacity(max_batch);
    loop {
        // The queue is held only while waiting for work: another lane takes the next batch
        // while this one runs.
        let taken = queue.lock().await.recv_many(&mut jobs, max_batch).await;
        if taken == 0 {
            return; // every sender is gone
        }
        let (requests, replies): (Vec<_>, Vec<_>) = jobs.drain(..).unzip();
        let responses = run(requests).await;
        for (reply, response) in replies.into_iter().zip(responses) {
            // The caller may have gone; what was done stands either way.
            let _ = reply.send(response);
        }
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> Lanes<Req, Resp> {
    /// Starts `lanes` tasks on the current runtime, each with a queue of its own, running its
    /// batches through `run`, which answers one response per request, in order.
    pub fn start<F, Fut>(lanes: usize, max_batch: usize, queue: usize, run: F) -> Self
    where
        F: Fn(Vec<Req>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Vec<Resp>> + Send + 'static,
    {
        let queues = (0..lanes.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel::<Job<Req, Resp>>(queue.max(1));
                let rx = Arc::new(tokio::sync::Mutex::new(rx));
                tokio::spawn(serve(rx, max_batch, run.clone()));
                tx
            })
            .collect();
        Self { queues }
    }

    /// Starts `lanes` tasks that share one queue: whichever is free takes everything that
    /// has queued. Batches then form only while every lane is busy: up to `lanes` batches
    /// are in flight at once (for a slow peer), and a fast peer gets few, full ones.
    pub fn start_shared<F, Fut>(lanes: usize, max_batch: usize, queue: usize, run: F) -> Self
    where
        F: Fn(Vec<Req>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Vec<Resp>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Job<Req, Resp>>(queue.max(1));
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..lanes.max(1) {
            tokio::spawn(serve(rx.clone(), max_batch, run.clone()));
        }
        Self { queues: vec![tx] }
    }

    /// Queues `request` on the lane of `key` and waits for its response. A full queue is
    /// refused at once (retry later) rather than growing.
    pub async fn submit(&self, key: u64, request: Req) -> Result<Resp, Error> {
        let lane = (key % self.queues.len().max(1) as u64) as usize;
        let queue = self
            .queues
            .get(lane)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no lane")))?;
        let (reply, response) = oneshot::channel();
        queue.try_send((request, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                Error::Unavailable(anyhow::anyhow!("seamless queue full"))
            }
            mpsc::error::TrySendError::Closed(_) => {
                Error::Unavailable(anyhow::anyhow!("seamless queue closed"))
            }
        })?;
        response
            .await
            .map_err(|_| Error::Unavailable(anyhow::anyhow!("seamless lane stopped")))
    }

    /// Whether the lanes' tasks are gone (their runtime ended).
    pub fn is_closed(&self) -> bool {
        self.queues.iter().any(|q| q.is_closed())
    }
}

/// A key for `submit` from anything hashable.
pub fn key_of(value: impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(value)
}
