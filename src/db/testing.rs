//! A private PostgreSQL cluster for a test suite: one cluster per test process (tuned for
//! throwaway data), a migrated template database, and a fresh copy of it per test, so tests
//! run in parallel and never share state. The test binary keeps it in a static and stops it
//! at exit.

use std::path::PathBuf;

use anyhow::Context;
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::embedded::{Cluster, Profile};

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
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::thread::spawn(move || {
            let _ = std::fs::remove_dir_all(&dir);
            let cluster = Cluster::start(&dir.join("pg"), Profile::Test)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                cluster.ensure_database(TEMPLATE).await?;
                let (mut client, conn) =
                    tokio_postgres::connect(&cluster.database_url(TEMPLATE), NoTls).await?;
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
            tokio_postgres::connect(&self.cluster.database_url("postgres"), NoTls).await?;
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

    /// Stops the cluster and removes its folder.
    pub fn stop(&self) {
        let _ = self.cluster.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
