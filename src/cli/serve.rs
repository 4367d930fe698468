//! `croupier serve`: the HTTP server on its database, until Ctrl-C or SIGTERM.

use super::demo;
use crate::config::{DatabaseSettings, ServerSettings};
use crate::db::Database;
use crate::startup::{Application, Pools, ServerConfig};

/// Runs the server. Whatever fails once the database is open (a listener that cannot bind,
/// the demo data, the server itself), the embedded cluster is stopped before the error is
/// returned: a server that could not start must not leave a PostgreSQL running.
pub async fn serve(database: &DatabaseSettings, settings: &ServerSettings) -> anyhow::Result<()> {
    // Settings first: a bad one is refused before any cluster starts.
    let config = settings.server(&database.data_dir)?;
    let db = Database::open(database, settings.db_pool_size, config.db_limits()).await?;
    let served = serve_on(&db, &config, settings).await;
    // A server that ran owns the cluster it ran on (even one a crashed run left); one that
    // could not start stops only a cluster it started itself, never a running server's.
    let closed = db.close(served.is_ok()).await;
    if let (Err(_), Err(e)) = (&served, &closed) {
        tracing::error!(error = %format!("{e:#}"), "cannot close the database");
    }
    served.and(closed)
}

/// Serves on an open database until a shutdown signal, then drains requests in flight.
async fn serve_on(
    db: &Database,
    config: &ServerConfig,
    settings: &ServerSettings,
) -> anyhow::Result<()> {
    let demo_on = demo::prepare(db, config).await?;
    // The crypto and seamless work have connections of their own: a slow provider or casino
    // never starves the bets.
    let pools = Pools::beside(db.pool.clone(), db.url(), config)?;
    let app = Application::build(config, pools.clone())?;
    // The signing keys are ready (made on an installation's first start) before any call.
    app.seamless().keys.reload().await?;
    let watcher = app.watch_changes(db.url().to_string());
    let jobs = app.start_jobs();
    // The demo's casino wallet, for the seamless demo operator.
    let casino = if demo_on {
        Some(demo::start_casino(db, config, app.port()).await?)
    } else {
        None
    };
    let handle = app.handle();
    // Listening for the signals before saying "serving": one sent as soon as that line
    // appears is never lost.
    let shutdown = ShutdownSignals::listen()?;
    let listen = config
        .listen
        .rsplit_once(':')
        .map(|(host, _)| format!("{host}:{}", app.port()))
        .unwrap_or_else(|| config.listen.clone());
    tracing::info!(
        listen = %listen,
        workers = settings.workers,
        pool = settings.db_pool_size,
        batching = ?config.batching,
        approver = ?app.approver_port(),
        "croupier is serving"
    );
    if let Some(casino) = &casino {
        demo::print_requests(&listen, casino.port);
    }
    let server = tokio::spawn(app.run_until_stopped());
    shutdown.wait().await;
    tracing::info!("shutting down: finishing requests in flight");
    handle.stop(true).await;
    let stopped = server.await;
    watcher.abort();
    for job in jobs {
        job.abort();
    }
    if let Some(casino) = casino {
        casino.stop().await;
    }
    pools.close_jobs();
    stopped??;
    Ok(())
}

/// Ctrl-C (SIGINT) and SIGTERM, listened for from the moment this is made.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for either.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
    }
}
