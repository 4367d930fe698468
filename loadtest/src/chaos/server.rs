//! The croupier server under test, a child process on a fixed loopback port: started again
//! after each SIGKILL, and started again if it exits on its own (it refuses to start while
//! PostgreSQL is down).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::Child;
use tokio::time::Instant;

/// How to start the server: its binary, address and environment (the database URL among
/// it, which carries a password: never printed).
pub struct ServerSpec {
    pub bin: PathBuf,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub env: Vec<(String, String)>,
}

pub struct Server {
    spec: ServerSpec,
    child: Option<Child>,
    /// Processes started, the first included.
    pub starts: u32,
}

/// How long a start may take, retries included (PostgreSQL recovering after a crash).
const START_LIMIT: Duration = Duration::from_secs(120);

impl Server {
    pub fn new(spec: ServerSpec) -> Self {
        Self {
            spec,
            child: None,
            starts: 0,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.spec.addr
    }

    /// Starts the server and waits until it listens; a process that exits first (the
    /// database unreachable, the port not yet free) is started again.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let give_up = Instant::now() + START_LIMIT;
        while Instant::now() < give_up {
            let mut child = self.spawn()?;
            self.starts += 1;
            loop {
                if let Some(status) = child.try_wait()? {
                    tracing_note(&format!(
                        "server exited at start ({status}), starting again"
                    ));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
                if tokio::net::TcpStream::connect(self.spec.addr).await.is_ok() {
                    self.child = Some(child);
                    return Ok(());
                }
                if Instant::now() >= give_up {
                    let _ = child.start_kill();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        bail!(
            "the server did not come up on {} within {:?} (see {})",
            self.spec.addr,
            START_LIMIT,
            self.spec.log.display()
        )
    }

    fn spawn(&self) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)?;
        let mut command = tokio::process::Command::new(&self.spec.bin);
        command
            .arg("serve")
            .env("CROUPIER_LISTEN", self.spec.addr.to_string())
            .env("CROUPIER_DATA_DIR", &self.spec.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        for (k, v) in &self.spec.env {
            command.env(k, v);
        }
        command.spawn().context("starting the croupier server")
    }

    /// SIGKILL: the process dies at once, with whatever it had in flight.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// Whether the process is still running (it may have died on its own).
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }
}

fn tracing_note(text: &str) {
    eprintln!("  {text}");
}
