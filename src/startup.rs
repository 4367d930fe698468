//! Builds the HTTP application: shared state, routes, listener, and the cache-invalidation
//! listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use crate::auth::Authenticator;
use crate::crypto::{Crypto, CryptoConfig};
use crate::ledger::{BatchSettings, Ledger};
use crate::players::Players;
use crate::seamless::{Seamless, SigningConfig};
use crate::telemetry::{self, health::Readiness};

/// What every handler shares.
pub struct AppState {
    pub auth: Authenticator,
    pub ledger: Ledger,
    pub players: Players,
    pub crypto: Arc<Crypto>,
    pub seamless: Arc<Seamless>,
    /// Lifetime of the sessions opened by a game launch.
    pub session_ttl_minutes: u32,
    /// One access-log line per request (`telemetry::observe`).
    pub access_log: bool,
    pub readiness: Readiness,
    pools: Pools,
}

impl AppState {
    /// Shared state; with `batching`, the ledger's combiners start on the current runtime.
    pub fn new(config: &ServerConfig, pools: Pools) -> anyhow::Result<Self> {
        let all = pools.clone();
        let Pools {
            bets,
            crypto,
            seamless,
            nonces,
            probe,
            ..
        } = pools;
        let ledger = match config.batching {
            Some(settings) => Ledger::batched(bets.clone(), settings),
            None => Ledger::new(bets.clone()),
        }
        .with_deadline(config.bet_deadline);
        Ok(Self {
            auth: Authenticator::new(bets.clone(), nonces),
            ledger,
            crypto: Arc::new(Crypto::new(config.crypto.clone(), crypto)?),
            seamless: Arc::new(Seamless::new(
                seamless,
                bets.clone(),
                config.seamless.signing.clone(),
                config.batching.is_some(),
            )?),
            players: Players::new(bets),
            session_ttl_minutes: config.session_ttl_minutes,
            access_log: config.access_log,
            readiness: Readiness::new(probe),
            pools: all,
        })
    }

    /// Sets the gauges read at scrape time: the pools, readiness, the crypto and seamless
    /// queues. The queues are read side by side on the probe pool (no work pool is asked),
    /// each within a second; one that does not answer keeps its gauges as they were and
    /// says so (`croupier_scrape_database_up` 0).
    pub async fn collect_gauges(&self) {
        for (name, pool) in self.pools.named() {
            telemetry::pool_gauges(name, pool.status());
        }
        let probe = &self.pools.probe;
        let second = Duration::from_secs(1);
        let (crypto, seamless, _) = tokio::join!(
            tokio::time::timeout(second, self.crypto.collect_gauges(probe)),
            tokio::time::timeout(second, self.seamless.collect_gauges(probe)),
            self.readiness.check(),
        );
        let up = matches!((crypto, seamless), (Ok(Ok(())), Ok(Ok(()))));
        metrics::gauge!(telemetry::name::SCRAPE_DATABASE_UP).set(if up { 1.0 } else { 0.0 });
    }
}

/// A server's database pools. `bets` serves the bet path and the operator API; `crypto` the
/// crypto work alone and `seamless` the calls to casinos, so that a slow provider or casino
/// cannot take connections from bets; `nonces` claims request ids, committing without
/// waiting for the WAL flush (see `auth::nonces`); `probe` answers `/health/ready` and the
/// scrape-time reads of `/metrics`; `reconcile` checks the books (one connection, with no
/// statement limit).
#[derive(Clone)]
pub struct Pools {
    pub bets: Pool,
    pub crypto: Pool,
    pub seamless: Pool,
    pub nonces: Pool,
    pub probe: Pool,
    pub reconcile: Pool,
}

impl Pools {
    /// The crypto and seamless pools `config` asks for, on the database at `url`, beside
    /// `bets`.
    pub fn beside(bets: Pool, url: &str, config: &ServerConfig) -> anyhow::Result<Self> {
        let limits = config.db_limits();
        Ok(Self {
            bets,
            crypto: crate::db::pool(url, config.crypto.db_pool_size, limits)?,
            seamless: crate::db::pool(url, config.seamless.db_pool_size, limits)?,
            nonces: crate::db::pool(url, NONCE_POOL_SIZE, limits.with_async_commit())?,
            probe: crate::db::pool(url, PROBE_POOL_SIZE, limits)?,
            reconcile: crate::db::pool(url, 1, crate::db::Limits::unlimited())?,
        })
    }

    /// Each pool with its name, as the metrics label it.
    fn named(&self) -> [(&'static str, &Pool); 6] {
        [
            ("bets", &self.bets),
            ("crypto", &self.crypto),
            ("seamless", &self.seamless),
            ("nonces", &self.nonces),
            ("probe", &self.probe),
            ("reconcile", &self.reconcile),
        ]
    }

    /// Closes the pools of the background work (the bet pool belongs to the database).
    pub fn close_jobs(&self) {
        for (name, pool) in self.named() {
            if name != "bets" {
                pool.close();
            }
        }
    }
}

/// Connections of the nonce pool: one claim statement in flight per HTTP worker.
const NONCE_POOL_SIZE: usize = 4;

/// Connections of the probe pool: readiness and the two scrape-time reads side by side.
const PROBE_POOL_SIZE: usize = 3;

/// Seamless mode's server settings.
#[derive(Debug, Clone)]
pub struct SeamlessConfig {
    pub signing: SigningConfig,
    /// Connections of the seamless pool.
    pub db_pool_size: usize,
    /// How often the seamless job runs (retries, compensations, stuck legs).
    pub job_interval: Duration,
}

/// What the HTTP server is told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// address:port; port 0 picks a free port.
    pub listen: String,
    pub workers: usize,
    pub session_ttl_minutes: u32,
    /// Group commit of bets; None runs each bet in a transaction of its own.
    pub batching: Option<BatchSettings>,
    /// The longest a statement runs (see `db::Limits::server`).
    pub db_timeout: Duration,
    /// The longest a bet call waits for the ledger before answering 99.
    pub bet_deadline: Duration,
    /// The private listener (inabit Remote Approver callback, crypto status, metrics);
    /// None = off.
    pub approver_listen: Option<String>,
    /// One access-log line per request, at `info`.
    pub access_log: bool,
    /// How often the server reconciles the books (the `croupier_reconcile_*` metrics);
    /// None = never.
    pub reconcile_every: Option<Duration>,
    pub crypto: CryptoConfig,
    pub seamless: SeamlessConfig,
}

impl ServerConfig {
    /// The limits of the server's database connections.
    pub fn db_limits(&self) -> crate::db::Limits {
        crate::db::Limits::server(self.db_timeout)
    }

    /// A server on a free local port with default settings.
    pub fn local(batching: Option<BatchSettings>) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            workers: 1,
            session_ttl_minutes: 60,
            batching,
            db_timeout: Duration::from_secs(2),
            bet_deadline: Duration::from_secs(3),
            approver_listen: Some("127.0.0.1:0".into()),
            access_log: true,
            reconcile_every: None,
            crypto: CryptoConfig::disabled(),
            seamless: SeamlessConfig {
                signing: SigningConfig {
                    keys_dir: std::env::temp_dir()
                        .join(format!("croupier-keys-{}", uuid::Uuid::new_v4())),
                    pem: None,
                    issuer: "http://127.0.0.1".into(),
                },
                db_pool_size: 8,
                job_interval: Duration::from_millis(500),
            },
        }
    }
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    seamless_job_interval: Duration,
    /// The periodic reconcile (`reconcile_every`), stopped with the server.
    reconcile: Option<tokio::task::JoinHandle<()>>,
    server: Server,
    approver: Option<(u16, Server)>,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds the listener and prepares the HTTP workers. Must be called inside a Tokio
    /// runtime (the ledger's combiners run on it).
    pub fn build(config: &ServerConfig, pools: Pools) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let port = listener.local_addr()?.port();
        telemetry::install();
        let state = web::Data::new(AppState::new(config, pools)?);
        let workers = config.workers;
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(telemetry::observe::observe))
                .app_data(shared.clone())
                .configure(crate::api::configure)
                .default_service(web::to(crate::api::no_such_endpoint))
        })
        .workers(workers.max(1))
        .backlog(4096)
        .max_connection_rate(1024)
        // Deadlines for slow clients: the request head within 5 s, an idle keep-alive
        // connection closed after 75 s, the body within `api::BODY_DEADLINE`.
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(Duration::from_secs(75))
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        let approver = match &config.approver_listen {
            Some(listen) => Some(private_server(listen, state.clone())?),
            None => None,
        };
        Ok(Self {
            port,
            seamless_job_interval: config.seamless.job_interval,
            reconcile: config
                .reconcile_every
                .map(|every| tokio::spawn(reconcile_every(state.pools.reconcile.clone(), every))),
            server,
            approver,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Port of the private listener, if it runs.
    pub fn approver_port(&self) -> Option<u16> {
        self.approver.as_ref().map(|(port, _)| *port)
    }

    pub fn crypto(&self) -> Arc<Crypto> {
        self.state.crypto.clone()
    }

    pub fn seamless(&self) -> Arc<Seamless> {
        self.state.seamless.clone()
    }

    /// Starts the crypto jobs (event worker, deposit polling, payouts, token refresh) and
    /// the seamless job.
    pub fn start_jobs(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut jobs = self.state.crypto.spawn_jobs();
        jobs.push(self.state.seamless.spawn_jobs(self.seamless_job_interval));
        let state = self.state.clone();
        jobs.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            loop {
                every.tick().await;
                if let Err(e) = state.auth.prune_nonces().await {
                    tracing::warn!(error = %e, "cannot prune the request ids");
                }
            }
        }));
        // The metrics' histograms keep raw samples until folded.
        jobs.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(telemetry::UPKEEP_EVERY);
            loop {
                every.tick().await;
                if let Some(handle) = telemetry::install() {
                    handle.run_upkeep();
                }
            }
        }));
        jobs
    }

    /// Keeps the caches in step with the database at `database_url` (see
    /// `listen_for_changes`). Abort the returned task to stop.
    pub fn watch_changes(&self, database_url: String) -> tokio::task::JoinHandle<()> {
        let state = self.state.clone().into_inner();
        tokio::spawn(listen_for_changes(database_url, state))
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Runs until the server is stopped through its handle; the private listener stops with
    /// it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let approver = self.approver.map(|(_, server)| {
            let handle = server.handle();
            (tokio::spawn(server), handle)
        });
        let result = self.server.await;
        if let Some(reconcile) = self.reconcile {
            reconcile.abort();
        }
        if let Some((task, handle)) = approver {
            handle.stop(true).await;
            let _ = task.await;
        }
        result
    }
}

/// Reconciles the books every `every` (the first time a minute after start, or sooner if
/// `every` is shorter) and publishes the result as metrics. Runs on a connection of its own
/// with no statement limit: on a large ledger a run takes a while.
async fn reconcile_every(pool: Pool, every: Duration) {
    let mut next = tokio::time::Instant::now() + every.min(Duration::from_secs(60));
    loop {
        tokio::time::sleep_until(next).await;
        let started = std::time::Instant::now();
        let report = async {
            let mut client = pool.get().await?;
            crate::ledger::reconcile::run(&mut client).await
        }
        .await;
        match &report {
            Ok(report) if !report.ok => {
                tracing::error!(
                    wallets = report.wallet_mismatches.len(),
                    bets = report.bet_mismatches.len(),
                    transfers = report.transfer_mismatches.len(),
                    crypto = report.crypto_mismatches.len(),
                    seamless = report.seamless_mismatches.len(),
                    "reconcile found mismatches: run `croupier admin reconcile` for the list"
                )
            }
            Ok(_) => tracing::info!(
                took_ms = started.elapsed().as_millis() as u64,
                "reconcile clean"
            ),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "reconcile could not run"),
        }
        telemetry::reconcile_result(report.as_ref().ok(), started.elapsed());
        next = tokio::time::Instant::now() + every;
    }
}

/// The private listener: inabit's Remote Approver callback, the crypto status and the
/// metrics. Nothing on it is authenticated, which is why it binds a private address by
/// default and carries no money-moving endpoint.
fn private_server(listen: &str, state: web::Data<AppState>) -> anyhow::Result<(u16, Server)> {
    let listener =
        TcpListener::bind(listen).map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(telemetry::observe::observe))
            .app_data(state.clone())
            .configure(crate::api::configure_private)
            .default_service(web::to(crate::api::no_such_endpoint))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok((port, server))
}

/// LISTENs for `croupier_cache` notifications (sent by triggers when a counterparty or a
/// session changes) and drops the changed entry. After a reconnect everything is dropped,
/// since changes may have been missed meanwhile. The connection is asked a question every
/// few seconds: a link that went quiet fails its answer deadline and is replaced, instead of
/// leaving the caches deaf.
async fn listen_for_changes(database_url: String, state: Arc<AppState>) {
    const PING: Duration = Duration::from_secs(10);
    let limits = crate::db::Limits::server(Duration::from_secs(5));
    loop {
        match crate::db::link::connect(&database_url, limits).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if let AsyncMessage::Notification(n) = message {
                            if tx.send(n.payload().to_string()).is_err() {
                                break;
                            }
                        }
                    }
                });
                if client.batch_execute("LISTEN croupier_cache").await.is_ok() {
                    state.auth.forget_all();
                    state.ledger.forget_all_sessions();
                    state.seamless.forget_all();
                    let mut ping = tokio::time::interval(PING);
                    loop {
                        let payload = tokio::select! {
                            payload = rx.recv() => payload,
                            _ = ping.tick() => match client.simple_query("").await {
                                Ok(_) => continue,
                                Err(_) => None,
                            },
                        };
                        let Some(payload) = payload else { break };
                        match payload.split_once(':') {
                            Some(("counterparties", id)) => state.auth.forget(id),
                            Some(("sessions", id)) => state.ledger.forget_session(id),
                            Some(("seamless_operators", id)) => state.seamless.forget(id),
                            _ => {}
                        }
                    }
                }
                driver.abort();
                tracing::warn!("cache invalidation connection lost; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cache invalidation: cannot connect; retrying")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
