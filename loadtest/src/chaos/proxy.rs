//! A TCP proxy between the server and PostgreSQL that breaks the link the ways a network
//! does, on command:
//!
//! - pass: bytes go through both ways;
//! - blackhole: every connection, open or new, is accepted and its bytes dropped silently,
//!   both ways (no error, no reset: a dead route). When the blackhole ends, the connections
//!   that lost bytes are torn (their streams can never resume) and are closed with a reset;
//!   the others go on;
//! - reset: every connection open at that moment is closed with a TCP reset, both sides;
//! - freeze: the connections open at that moment stop moving bytes, both ways, and stay
//!   open (a peer gone quiet); connections made during the freeze work. When the freeze
//!   ends, the frozen connections move again: what was held is delivered late, as a
//!   network that comes back would (the server has by then given up on them and closed
//!   its side, which then reaches PostgreSQL too).
//!
//! The upstream address can change (PostgreSQL restarted on another port).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the link does now. Connections are numbered in the order they were accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link {
    upstream: SocketAddr,
    blackhole: bool,
    /// Connections numbered below this are frozen.
    frozen_below: u64,
    /// Connections numbered below this are reset.
    reset_below: u64,
}

/// Counts of what the proxy did, for the summary.
#[derive(Debug, Default)]
pub struct ProxyCounts {
    pub connections: AtomicU64,
    pub resets: AtomicU64,
    pub bytes_dropped: AtomicU64,
}

pub struct Proxy {
    addr: SocketAddr,
    link: watch::Sender<Link>,
    next_id: Arc<AtomicU64>,
    counts: Arc<ProxyCounts>,
    accept: JoinHandle<()>,
}

/// How long the proxy waits for PostgreSQL to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (link, watch) = watch::channel(Link {
            upstream,
            blackhole: false,
            frozen_below: 0,
            reset_below: 0,
        });
        let next_id = Arc::new(AtomicU64::new(0));
        let counts = Arc::new(ProxyCounts::default());
        let (ids, counted) = (next_id.clone(), counts.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let id = ids.fetch_add(1, Ordering::SeqCst);
                counted.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(relay(id, client, watch.clone(), counted.clone()));
            }
        });
        Ok(Self {
            addr,
            link,
            next_id,
            counts,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn counts(&self) -> &ProxyCounts {
        &self.counts
    }

    pub fn set_upstream(&self, upstream: SocketAddr) {
        self.link.send_modify(|l| l.upstream = upstream);
    }

    pub fn blackhole(&self, on: bool) {
        self.link.send_modify(|l| l.blackhole = on);
    }

    /// Resets every connection open now.
    pub fn reset(&self) {
        let below = self.next_id.load(Ordering::SeqCst);
        self.link.send_modify(|l| l.reset_below = below);
    }

    /// Freezes every connection open now.
    pub fn freeze(&self) {
        let below = self.next_id.load(Ordering::SeqCst);
        self.link.send_modify(|l| l.frozen_below = below);
    }

    pub fn thaw(&self) {
        self.link.send_modify(|l| l.frozen_below = 0);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Closes a socket with a TCP reset rather than a FIN.
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// One client connection and its PostgreSQL side, for as long as both are open.
async fn relay(
    id: u64,
    client: TcpStream,
    mut link: watch::Receiver<Link>,
    counts: Arc<ProxyCounts>,
) {
    let _ = client.set_nodelay(true);
    let at_birth = *link.borrow_and_update();
    // Born into a blackhole: nothing reaches PostgreSQL, not even the connection.
    let upstream = if at_birth.blackhole {
        None
    } else {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(at_birth.upstream)).await {
            Ok(Ok(s)) => Some(s),
            // PostgreSQL is down: the server sees its connection refused, as it would.
            _ => {
                reset(client);
                return;
            }
        }
    };
    if let Some(s) = &upstream {
        let _ = s.set_nodelay(true);
    }
    let mut pair = Pair {
        torn: upstream.is_none(),
        client,
        upstream,
    };
    if pair.run(id, &mut link, &counts).await == End::Reset {
        counts.resets.fetch_add(1, Ordering::Relaxed);
        reset(pair.client);
        if let Some(upstream) = pair.upstream {
            reset(upstream);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// One side closed (or the proxy is gone): close the other normally.
    Closed,
    /// Close both with a reset.
    Reset,
}

struct Pair {
    client: TcpStream,
    upstream: Option<TcpStream>,
    /// Bytes were dropped: the streams cannot resume.
    torn: bool,
}

impl Pair {
    async fn run(
        &mut self,
        id: u64,
        link: &mut watch::Receiver<Link>,
        counts: &ProxyCounts,
    ) -> End {
        let mut from_client = vec![0u8; 16 * 1024];
        let mut from_upstream = vec![0u8; 16 * 1024];
        loop {
            let now = *link.borrow_and_update();
            if id < now.reset_below || (self.torn && !now.blackhole) {
                return End::Reset;
            }
            if id < now.frozen_below && !now.blackhole {
                // Frozen: nothing is read, so nothing moves; both sockets stay open.
                if link.changed().await.is_err() {
                    return End::Closed;
                }
                continue;
            }
            let dropping = now.blackhole;
            let Some(upstream) = self.upstream.as_mut() else {
                // Born into the blackhole: read and drop until it ends.
                tokio::select! {
                    biased;
                    changed = link.changed() => if changed.is_err() { return End::Closed },
                    n = self.client.read(&mut from_client) => match n {
                        Ok(n) if n > 0 => {
                            counts.bytes_dropped.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        _ => return End::Closed,
                    },
                }
                continue;
            };
            let (mut client_read, client_write) = self.client.split();
            let (mut upstream_read, upstream_write) = upstream.split();
            let moved = tokio::select! {
                biased;
                changed = link.changed() => {
                    if changed.is_err() { return End::Closed }
                    continue;
                }
                n = client_read.read(&mut from_client) => {
                    pass(n, &from_client, upstream_write, dropping, counts).await
                }
                n = upstream_read.read(&mut from_upstream) => {
                    pass(n, &from_upstream, client_write, dropping, counts).await
                }
            };
            match moved {
                Moved::Forwarded => {}
                Moved::Dropped => self.torn = true,
                Moved::Closed => return End::Closed,
            }
        }
    }
}

enum Moved {
    Forwarded,
    Dropped,
    Closed,
}

/// What became of `n` bytes read into `buf`: written to `to`, or dropped in a blackhole.
async fn pass<W: AsyncWriteExt + Unpin>(
    n: std::io::Result<usize>,
    buf: &[u8],
    mut to: W,
    dropping: bool,
    counts: &ProxyCounts,
) -> Moved {
    let n = match n {
        Ok(n) if n > 0 => n,
        _ => return Moved::Closed,
    };
    let Some(bytes) = buf.get(..n) else {
        return Moved::Closed;
    };
    if dropping {
        counts.bytes_dropped.fetch_add(n as u64, Ordering::Relaxed);
        return Moved::Dropped;
    }
    match to.write_all(bytes).await {
        Ok(()) => Moved::Forwarded,
        Err(_) => Moved::Closed,
    }
}
