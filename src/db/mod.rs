//! The database: connection pool, migrations, and the embedded PostgreSQL launcher.

mod binaries;
pub mod embedded;
pub mod link;
pub mod migrate;
pub mod testing;
pub mod tls;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::config::DatabaseSettings;

pub use deadpool_postgres::Pool as DbPool;
pub use link::Limits;

/// Builds a pool for `url` with at most `size` connections, each opened with `limits`
/// (see `link`), with TLS as the URL asks for it (see `tls`): waiting for a connection and
/// opening one take at most the connect limit.
///
/// Connections are recycled without a test query (`RecyclingMethod::Fast`): a broken
/// connection shows up as an error on its next use, which the caller maps to a retryable
/// "internal error", and saves a round trip on every bet. A connection that failed (its
/// answer deadline passed, its socket closed) is closed, and never handed out again.
pub fn pool(url: &str, size: usize, limits: Limits) -> anyhow::Result<Pool> {
    let health = link::LinkHealth::default();
    let target = tls::parse(url)?;
    let manager = Manager::from_connect(
        limits.apply(target.config),
        link::LinkConnect {
            limits,
            health: health.clone(),
            tls: target.tls,
        },
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(size)
        .pre_recycle(deadpool_postgres::Hook::sync_fn(move |_, metrics| {
            if health.outdates(metrics.created) {
                Err(deadpool_postgres::HookError::message(
                    "opened before a connection's link went quiet",
                ))
            } else {
                Ok(())
            }
        }))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(limits.connect))
        .create_timeout(Some(limits.connect))
        .build()?)
}

/// The database croupier runs on: `DATABASE_URL`, or the embedded cluster.
pub struct Database {
    url: String,
    pub pool: Pool,
    cluster: Option<embedded::Cluster>,
}

impl Database {
    /// Connects (starting the embedded cluster when there is no URL) and migrates. A cluster
    /// this call started is stopped again if anything after its start fails, so a failed
    /// command leaves no PostgreSQL running behind it.
    pub async fn open(
        settings: &DatabaseSettings,
        pool_size: usize,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let (url, cluster) = match &settings.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let dir = settings.cluster_dir();
                let cluster = tokio::task::spawn_blocking(move || {
                    embedded::Cluster::start(&dir, embedded::Profile::Server)
                })
                .await??;
                (cluster.database_url("croupier"), Some(cluster))
            }
        };
        match prepare(&url, pool_size, limits, cluster.as_ref()).await {
            Ok(pool) => Ok(Self { url, pool, cluster }),
            Err(e) => {
                if let Some(cluster) = cluster.filter(embedded::Cluster::started_here) {
                    if let Err(stop) = stop(cluster).await {
                        tracing::error!(error = %format!("{stop:#}"), "cannot stop the embedded PostgreSQL cluster");
                    }
                }
                Err(e)
            }
        }
    }

    /// A connection of its own, outside the pool.
    pub async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        connect(&self.url).await
    }

    /// The connection URL. Contains the password: never log it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the database is the embedded cluster.
    pub fn is_embedded(&self) -> bool {
        self.cluster.is_some()
    }

    /// Closes the pool and stops the embedded cluster if this process started it (or
    /// `always_stop`: the server owns the cluster it runs on, even one a crashed run left).
    pub async fn close(self, always_stop: bool) -> anyhow::Result<()> {
        self.pool.close();
        if let Some(cluster) = self.cluster {
            if always_stop || cluster.started_here() {
                stop(cluster).await?;
            }
        }
        Ok(())
    }
}

/// Creates the database in the embedded cluster if needed, builds the pool and migrates.
async fn prepare(
    url: &str,
    pool_size: usize,
    limits: Limits,
    cluster: Option<&embedded::Cluster>,
) -> anyhow::Result<Pool> {
    if let Some(cluster) = cluster {
        cluster.ensure_database("croupier").await?;
    }
    let pool = pool(url, pool_size, limits)?;
    let applied = migrate::run(&mut connect(url).await?).await?;
    if applied.migrations > 0 || applied.functions {
        tracing::info!(
            migrations = applied.migrations,
            functions = applied.functions,
            "database migrated"
        );
    }
    Ok(pool)
}

/// A connection of its own, without statement or answer limits (migrations, the change
/// listener's setup, admin work).
async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = link::connect(url, Limits::unlimited()).await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn stop(cluster: embedded::Cluster) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || cluster.stop()).await?
}
