//! The faults, their schedule, and the harness that injects them: the server process, the
//! PostgreSQL cluster and the proxy between them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use croupier::db::embedded::{Cluster, Profile};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::proxy::Proxy;
use super::server::Server;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL the server, start it again.
    Kill,
    /// Crash PostgreSQL (`pg_ctl stop -m immediate`), start it again (crash recovery).
    Crash,
    /// Both at once: the server killed and PostgreSQL crashed, then both started again.
    KillCrash,
    /// The link drops every byte, on open and new connections, for the hold time; the
    /// connections that lost bytes are then reset.
    Blackhole,
    /// Every open connection of the link closed with a TCP reset.
    Reset,
    /// Every open connection of the link stops moving bytes, and stays open, for the hold
    /// time; new connections work.
    Freeze,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::Kill,
        Fault::Crash,
        Fault::KillCrash,
        Fault::Blackhole,
        Fault::Reset,
        Fault::Freeze,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Crash => "crash",
            Fault::KillCrash => "kill-crash",
            Fault::Blackhole => "blackhole",
            Fault::Reset => "reset",
            Fault::Freeze => "freeze",
        }
    }

    /// 1 + its place in `ALL`: the number the players see while it lasts (0: none).
    pub fn number(self) -> usize {
        Fault::ALL
            .iter()
            .position(|f| *f == self)
            .map_or(0, |i| i + 1)
    }

    /// The name for a number from `number` ("calm" for 0).
    pub fn name_of(number: usize) -> &'static str {
        number
            .checked_sub(1)
            .and_then(|i| Fault::ALL.get(i))
            .map_or("calm", |f| f.name())
    }
}

/// When each fault starts, in seconds from the start of the load.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub at_s: f64,
    pub fault: Fault,
}

/// A fault every `interval_s` (± a quarter, drawn from `seed`), from `first_s` until
/// `until_s`, the kinds taken from a deck shuffled again each time it is used up, so that
/// every kind comes once before any comes twice.
pub fn plan(
    kinds: &[Fault],
    seed: u64,
    first_s: f64,
    interval_s: f64,
    until_s: f64,
) -> Vec<Planned> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut deck: Vec<Fault> = Vec::new();
    let mut planned = Vec::new();
    let mut at = first_s;
    while at < until_s && !kinds.is_empty() {
        if deck.is_empty() {
            deck = kinds.to_vec();
            deck.shuffle(&mut rng);
        }
        if let Some(fault) = deck.pop() {
            planned.push(Planned { at_s: at, fault });
        }
        at += interval_s * rng.gen_range(0.75..=1.25);
    }
    planned
}

/// The PostgreSQL cluster, crashed and started again (on a new port each time: the proxy
/// follows it).
pub struct Database {
    dir: PathBuf,
    cluster: Option<Cluster>,
}

impl Database {
    pub async fn start(dir: PathBuf) -> anyhow::Result<Self> {
        let mut db = Self { dir, cluster: None };
        db.up().await?;
        Ok(db)
    }

    pub fn cluster(&self) -> anyhow::Result<&Cluster> {
        self.cluster.as_ref().context("PostgreSQL is down")
    }

    async fn up(&mut self) -> anyhow::Result<()> {
        let dir = self.dir.clone();
        let cluster =
            tokio::task::spawn_blocking(move || Cluster::start(&dir, Profile::Server)).await??;
        self.cluster = Some(cluster);
        Ok(())
    }

    async fn crash(&mut self) -> anyhow::Result<()> {
        if let Some(cluster) = self.cluster.take() {
            tokio::task::spawn_blocking(move || cluster.stop_immediately()).await??;
        }
        Ok(())
    }

    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(cluster) = self.cluster.take() {
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
        }
        Ok(())
    }
}

/// What a fault did: when, and how long until everything was back.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Injected {
    pub fault: Fault,
    pub at_s: f64,
    pub restored_after_ms: u64,
}

/// The server, the database and the link between them.
pub struct Harness {
    pub server: Server,
    pub db: Database,
    pub proxy: Proxy,
    /// How long a blackhole or a freeze lasts.
    pub hold: Duration,
    /// Server processes that died without being killed.
    pub unplanned_exits: u32,
}

impl Harness {
    /// Injects `fault` and returns once everything is up again.
    pub async fn inject(&mut self, fault: Fault) -> anyhow::Result<()> {
        match fault {
            Fault::Kill => {
                self.server.kill().await?;
                self.server.start().await?;
            }
            Fault::Crash => {
                self.db.crash().await?;
                self.restart_database().await?;
            }
            Fault::KillCrash => {
                self.server.kill().await?;
                self.db.crash().await?;
                self.restart_database().await?;
                self.server.start().await?;
            }
            Fault::Blackhole => {
                self.proxy.blackhole(true);
                tokio::time::sleep(self.hold).await;
                self.proxy.blackhole(false);
            }
            Fault::Reset => self.proxy.reset(),
            Fault::Freeze => {
                self.proxy.freeze();
                tokio::time::sleep(self.hold).await;
                self.proxy.thaw();
            }
        }
        Ok(())
    }

    async fn restart_database(&mut self) -> anyhow::Result<()> {
        self.db.up().await?;
        self.proxy.set_upstream(self.upstream()?);
        Ok(())
    }

    /// Where PostgreSQL listens now.
    pub fn upstream(&self) -> anyhow::Result<std::net::SocketAddr> {
        Ok(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            self.db.cluster()?.port(),
        )))
    }

    /// Starts the server again if it died on its own (counted: it should not happen).
    pub async fn keep_server_up(&mut self) -> anyhow::Result<()> {
        if !self.server.running() {
            self.unplanned_exits += 1;
            eprintln!("  the server died without being killed; starting it again");
            self.server.start().await?;
        }
        Ok(())
    }
}
