//! The croupier server as a child process: started on a free port with group commit on or
//! off, sampled for resident memory, stopped with SIGTERM (killed if still up after 20 s).

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use super::BenchConfig;

/// A croupier server process.
pub(super) struct Server {
    child: tokio::process::Child,
    pub(super) pid: u32,
    pub(super) addr: SocketAddr,
    /// The private listener's `/metrics`.
    pub(super) metrics_url: String,
    max_rss_kb: Arc<AtomicU64>,
}

impl Server {
    pub(super) async fn start(
        config: &BenchConfig,
        url: &str,
        batching: bool,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let private = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = std::fs::File::create(config.out_dir.join(format!(
            "server-{}.log",
            if batching { "batched" } else { "unbatched" }
        )))?;
        let child = tokio::process::Command::new(&config.server_bin)
            .arg("serve")
            .env("DATABASE_URL", url)
            .env("CROUPIER_LISTEN", addr.to_string())
            .env("CROUPIER_APPROVER_LISTEN", private.to_string())
            // The benchmark checks the books after each series itself.
            .env("CROUPIER_RECONCILE_SECONDS", "0")
            .env("CROUPIER_WORKERS", config.workers.to_string())
            .env("CROUPIER_DB_POOL_SIZE", config.pool_size.to_string())
            .env(
                "CROUPIER_SEAMLESS_DB_POOL_SIZE",
                config.pool_size.to_string(),
            )
            .env("CROUPIER_BATCHING", if batching { "on" } else { "off" })
            .env("RUST_LOG", "warn")
            .envs(config.server_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting the croupier server")?;
        let pid = child.id().context("server pid")?;
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(Self {
                    child,
                    pid,
                    addr,
                    metrics_url: format!("http://{private}/metrics"),
                    max_rss_kb: Default::default(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server did not start listening on {addr}")
    }

    /// Samples the server's resident memory every 100 ms, keeping the maximum.
    pub(super) fn sample_rss(&self) -> tokio::task::JoinHandle<()> {
        let (pid, max) = (self.pid, self.max_rss_kb.clone());
        tokio::spawn(async move {
            loop {
                if let Some(kb) = rss_kb(pid) {
                    max.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    pub(super) fn max_rss_mb(&self) -> f64 {
        self.max_rss_kb.load(Ordering::Relaxed) as f64 / 1024.0
    }

    pub(super) async fn stop(mut self) -> anyhow::Result<()> {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
