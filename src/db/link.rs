//! Connections to PostgreSQL that cannot hang: a connect timeout, TCP keepalives and a
//! kernel send timeout on the socket, `statement_timeout` on the server, and an answer
//! deadline on the socket itself.
//!
//! The answer deadline is what saves the bet path from a link that goes quiet for good (a
//! peer that died, a failover behind a moved address, a proxy that froze): no bytes and no
//! reset, so neither the kernel nor PostgreSQL ever reports an error, and every call on the
//! connection waits forever. The socket is wrapped in [`Guarded`], which notes when a request
//! goes out with no answer pending; if no byte comes back within the deadline, reading fails
//! with `TimedOut`. `tokio-postgres` then fails every call on that connection, the pool
//! discards it (a closed connection is never recycled), and the next call opens a fresh one.
//! An idle connection is never timed out: the deadline runs only while an answer is owed.
//! The pool's other idle connections went through the same link: once one connection's
//! deadline passes, every idle one opened before that moment is discarded when next taken
//! ([`LinkHealth`]), so the calls after it go to fresh connections at once instead of each
//! waiting out a dead one.
//!
//! A connection that answers slowly but surely is `statement_timeout`'s: PostgreSQL cancels
//! the statement itself, and the connection stays usable. The answer deadline is longer, so
//! it only ever fires on a link that is gone.
//!
//! TLS, when the connection string asks for it (`tls`), runs over the guarded socket: the
//! deadline watches the encrypted bytes, which come and go with the requests and answers
//! inside them.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use deadpool_postgres::Connect;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};
use tokio_postgres::config::{Host, SslMode as WireMode};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls;

/// The limits of one kind of connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Opening the socket (each host in turn).
    pub connect: Duration,
    /// The longest a statement may run on the server (`statement_timeout`); None: the
    /// database's own setting.
    pub statement: Option<Duration>,
    /// The longest croupier waits for the first byte of an answer; None: forever.
    pub answer: Option<Duration>,
    /// The longest a transaction may sit idle on the server
    /// (`idle_in_transaction_session_timeout`): how long a connection whose link died in the
    /// middle of a transaction can hold its locks. None: the database's own setting.
    pub idle_in_transaction: Option<Duration>,
    /// Commits that do not wait for the WAL flush (`synchronous_commit = off`).
    pub async_commit: bool,
}

impl Limits {
    /// The server's pools: statements limited to `timeout`, answers to a second more.
    pub fn server(timeout: Duration) -> Self {
        Self {
            connect: Duration::from_secs(5),
            statement: Some(timeout),
            answer: Some(timeout + Duration::from_secs(1)),
            idle_in_transaction: Some(Duration::from_secs(30)),
            async_commit: false,
        }
    }

    /// The same limits, on connections whose commits do not wait for the WAL flush.
    pub fn with_async_commit(self) -> Self {
        Self {
            async_commit: true,
            ..self
        }
    }

    /// Migrations and admin verbs: a statement may take as long as it needs (a reconcile of
    /// a large ledger, an index build); a dead link is still found by keepalives.
    pub fn unlimited() -> Self {
        Self {
            connect: Duration::from_secs(10),
            statement: None,
            answer: None,
            idle_in_transaction: None,
            async_commit: false,
        }
    }

    /// `config` with these limits' server-side settings added to its startup options.
    pub fn apply(&self, mut config: Config) -> Config {
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis().to_string());
        let settings = [
            ("statement_timeout", ms(self.statement)),
            (
                "idle_in_transaction_session_timeout",
                ms(self.idle_in_transaction),
            ),
            (
                "synchronous_commit",
                self.async_commit.then(|| "off".into()),
            ),
        ];
        let options: Vec<String> = config
            .get_options()
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .into_iter()
            .chain(
                settings
                    .into_iter()
                    .filter_map(|(name, value)| value.map(|value| format!("-c {name}={value}"))),
            )
            .collect();
        config.options(options.join(" "));
        config.connect_timeout(self.connect);
        config
    }
}

/// When a connection of a pool last failed its answer deadline.
#[derive(Clone, Default)]
pub struct LinkHealth(Arc<Mutex<Option<std::time::Instant>>>);

impl LinkHealth {
    fn failed_now(&self) {
        if let Ok(mut at) = self.0.lock() {
            *at = Some(std::time::Instant::now());
        }
    }

    /// Whether a connection opened at `created` is older than the last failure.
    pub fn outdates(&self, created: std::time::Instant) -> bool {
        matches!(self.0.lock().map(|at| *at), Ok(Some(at)) if created <= at)
    }
}

/// The pool's way of opening connections (`deadpool_postgres::Manager::from_connect`).
pub struct LinkConnect {
    pub limits: Limits,
    pub health: LinkHealth,
    pub tls: MakeRustlsConnect,
}

impl Connect for LinkConnect {
    fn connect(
        &self,
        config: &Config,
    ) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), tokio_postgres::Error>> {
        let config = config.clone();
        let limits = self.limits;
        let health = self.health.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let (client, connection) = open(&config, &tls, limits, Some(health)).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "database connection closed");
                }
            });
            Ok((client, task))
        })
    }
}

/// The connection half that `tokio-postgres` needs polled (spawned) for the client to work.
pub type Connection = tokio_postgres::Connection<Guarded<Socket>, TlsStream>;

/// The TLS session over a guarded socket (unused on a plain connection).
pub type TlsStream = <MakeRustlsConnect as MakeTlsConnect<Guarded<Socket>>>::Stream;

/// Opens one connection to `url` with `limits`, with TLS as the URL asks for it.
pub async fn connect(url: &str, limits: Limits) -> anyhow::Result<(Client, Connection)> {
    let target = tls::parse(url)?;
    open(&limits.apply(target.config), &target.tls, limits, None)
        .await
        .map_err(|e| {
            // `{:#}` shows the cause: the server's refusal, the certificate at fault.
            anyhow::Error::new(e).context(format!(
                "cannot connect to PostgreSQL (sslmode={})",
                target.mode
            ))
        })
}

/// Opens one connection with `limits` (`config` already carries them, see [`Limits::apply`])
/// and `tls` (used as `config`'s `sslmode` says). A connection that fails its answer deadline
/// is reported to `health`.
pub async fn open(
    config: &Config,
    tls: &MakeRustlsConnect,
    limits: Limits,
    health: Option<LinkHealth>,
) -> Result<(Client, Connection), tokio_postgres::Error> {
    let (socket, host) = match socket(config, limits.connect).await {
        Ok(found) => found,
        Err(e) => (Socket::Failed(Some(e)), String::new()),
    };
    // The certificate is checked against the host name connected to (and sent as SNI).
    let connector =
        match MakeTlsConnect::<Guarded<Socket>>::make_tls_connect(&mut tls.clone(), &host) {
            Ok(connector) => connector,
            Err(never) => match never {},
        };
    let socket = Guarded::new(socket, limits.answer, health);
    if matches!(socket.inner, Socket::Unix(_)) && config.get_ssl_mode() != WireMode::Disable {
        // PostgreSQL offers no TLS on a Unix socket, and libpq does not ask for it there.
        let mut plain = config.clone();
        plain.ssl_mode(WireMode::Disable);
        return plain.connect_raw(socket, connector).await;
    }
    config.connect_raw(socket, connector).await
}

/// The first of the configured hosts that accepts a connection within `timeout`, and its name
/// (empty for a Unix socket).
async fn socket(config: &Config, timeout: Duration) -> io::Result<(Socket, String)> {
    let ports = config.get_ports();
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no host in the database URL");
    for (i, host) in config.get_hosts().iter().enumerate() {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let attempt = async {
            match host {
                Host::Tcp(name) => {
                    let stream = TcpStream::connect((name.as_str(), port)).await?;
                    keepalive(&stream)?;
                    Ok((Socket::Tcp(stream), name.clone()))
                }
                Host::Unix(dir) => Ok((
                    Socket::Unix(UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).await?),
                    String::new(),
                )),
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(socket)) => return Ok(socket),
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connecting to PostgreSQL timed out",
                )
            }
        }
    }
    Err(last)
}

/// Keepalive probes after 15 s of silence, every 5 s, 3 unanswered ones closing the socket;
/// data sent and not acknowledged for 20 s closes it too. These find a dead peer on an idle
/// connection, which the answer deadline leaves alone.
fn keepalive(stream: &TcpStream) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(15))
            .with_interval(Duration::from_secs(5))
            .with_retries(3),
    )?;
    socket.set_tcp_user_timeout(Some(Duration::from_secs(20)))?;
    stream.set_nodelay(true)
}

/// A database socket: TCP, a Unix socket, or the error of a connect that failed. The last one
/// exists because a pool's connect must fail with a `tokio_postgres::Error`, which only
/// `tokio-postgres` makes: handed to `connect_raw`, the failed socket makes it fail with that
/// error, unchanged.
pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    Failed(Option<io::Error>),
}

impl Socket {
    fn failed(error: &mut Option<io::Error>) -> io::Error {
        error
            .take()
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Failed(e) => Poll::Ready(Err(Socket::failed(e))),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Failed(e) => Poll::Ready(Err(Socket::failed(e))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
            Socket::Failed(e) => Poll::Ready(Err(Socket::failed(e))),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Failed(_) => Poll::Ready(Ok(())),
        }
    }
}

/// A socket with an answer deadline: armed when bytes go out while no answer is pending,
/// disarmed by any byte that comes in; reading fails with `TimedOut` once it passes.
///
/// "Any byte" is a choice made without parsing the protocol (which TLS would hide anyway):
/// an answer that starts and then stalls, or a second request pipelined behind an answered
/// one, is not covered here. The bet path does not pipeline, and its calls carry deadlines of
/// their own as well.
pub struct Guarded<S> {
    inner: S,
    limit: Option<Duration>,
    armed: bool,
    deadline: Pin<Box<Sleep>>,
    health: Option<LinkHealth>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, limit: Option<Duration>, health: Option<LinkHealth>) -> Self {
        Self {
            inner,
            limit,
            armed: false,
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(86_400))),
            health,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.armed = false;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.armed => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.armed = false;
                    if let Some(health) = &this.health {
                        health.failed_now();
                    }
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "PostgreSQL did not answer within the deadline",
                    )))
                }
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(limit)) = (&written, this.limit) {
            if *n > 0 && !this.armed {
                this.armed = true;
                this.deadline.as_mut().reset(Instant::now() + limit);
                // The connection reads before it writes: poll the timer now, so that its
                // wake-up comes even if the socket never becomes readable again.
                let _ = this.deadline.as_mut().poll(cx);
            }
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_settings_go_into_the_startup_options_after_the_urls_own() {
        let url = "postgres://u@127.0.0.1:5432/db?options=-c%20search_path%3Dpublic";
        let config = Limits::server(Duration::from_millis(2_000))
            .with_async_commit()
            .apply(url.parse().expect("a URL"));
        assert_eq!(
            config.get_options(),
            Some(
                "-c search_path=public -c statement_timeout=2000 \
                 -c idle_in_transaction_session_timeout=30000 -c synchronous_commit=off"
            )
        );
        let plain = Limits::unlimited().apply("postgres://u@127.0.0.1/db".parse().expect("a URL"));
        assert_eq!(plain.get_options(), Some(""));
    }
}
