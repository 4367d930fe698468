//! A private PostgreSQL cluster for a test suite: one cluster per test process (tuned for
//! throwaway data), a migrated template database, and a fresh copy of it per test, so tests
//! run in parallel and never share state. The test binary keeps it in a static and stops it
//! at exit.

use std::path::PathBuf;

use anyhow::Context;
use uuid::Uuid;

use super::embedded::{Cluster, Profile, ServerTls};
use super::link::{self, Limits};

const TEMPLATE: &str = "croupier_template";

pub struct TestCluster {
    cluster: Cluster,
    dir: PathBuf,
    /// CREATE DATABASE … TEMPLATE refuses to run while another copy of the template is
    /// being made: one at a time.
    create_db: tokio::sync::Mutex<()>,
}

impl TestCluster {
    /// Starts a cluster in a temporary folder named after `name` and this process, and
    /// migrates the template. Blocking; callable from inside an async runtime.
    pub fn start(name: &str) -> anyhow::Result<Self> {
        Self::start_with_tls(name, None)
    }

    /// [`TestCluster::start`], presenting `tls` when given one and then accepting TLS
    /// connections only (its URLs say `sslmode=require`).
    pub fn start_with_tls(name: &str, tls: Option<ServerTls>) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::thread::spawn(move || {
            let _ = std::fs::remove_dir_all(&dir);
            let cluster = Cluster::start_with_tls(&dir.join("pg"), Profile::Test, tls.as_ref())?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                cluster.ensure_database(TEMPLATE).await?;
                let (mut client, conn) =
                    link::connect(&cluster.database_url(TEMPLATE), Limits::unlimited()).await?;
                let driver = tokio::spawn(conn);
                super::migrate::run(&mut client).await?;
                drop(client);
                let _ = driver.await;
                anyhow::Ok(())
            })?;
            Ok(Self {
                cluster,
                dir,
                create_db: tokio::sync::Mutex::const_new(()),
            })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the test cluster thread panicked"))?
    }

    /// A fresh, migrated, empty database. Returns its URL.
    pub async fn fresh_database(&self) -> anyhow::Result<String> {
        let name = format!("t_{}", Uuid::new_v4().simple());
        let (client, conn) =
            link::connect(&self.cluster.database_url("postgres"), Limits::unlimited()).await?;
        let driver = tokio::spawn(conn);
        {
            let _one_at_a_time = self.create_db.lock().await;
            client
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
                .await
                .context("creating a test database")?;
        }
        drop(client);
        let _ = driver.await;
        Ok(self.cluster.database_url(&name))
    }

    /// Stops the server only (fast shutdown), keeping the data: `start_again` brings it
    /// back on the same port. For fault tests.
    pub fn stop_server(&self) -> anyhow::Result<()> {
        self.cluster.stop()
    }

    /// Starts the server stopped by `stop_server` again.
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.cluster.start_again()
    }

    /// Stops the cluster and removes its folder.
    pub fn stop(&self) {
        let _ = self.cluster.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
