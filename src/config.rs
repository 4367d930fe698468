//! Configuration, from the environment (every variable has a default that runs).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | unset | PostgreSQL to use; unset = the embedded cluster under the data folder |
//! | `CROUPIER_LISTEN` | `127.0.0.1:8080` | address:port the HTTP API binds |
//! | `CROUPIER_DATA_DIR` | `./data` | data folder (the embedded cluster lives in `<dir>/pg`) |
//! | `CROUPIER_DB_POOL_SIZE` | `16` | database connections per server |
//! | `CROUPIER_WORKERS` | `1` | HTTP worker threads |
//! | `CROUPIER_SESSION_TTL_MINUTES` | `1440` | lifetime of a game session opened by croupier |
//! | `CROUPIER_BATCHING` | `on` | group commit of concurrent bets (`on`/`off`) |
//! | `CROUPIER_BATCH_COMBINERS` | `4` | combiners (batches in flight at once) |
//! | `CROUPIER_BATCH_MAX` | `64` | largest batch |
//! | `CROUPIER_BATCH_WAIT_US` | `0` | wait for a fuller batch, microseconds |
//! | `CROUPIER_BATCH_QUEUE` | `4096` | bets queued per combiner before refusing (code 99) |
//! | `RUST_LOG` | `info` | log filter |

use std::path::PathBuf;

use clap::Args;

#[derive(Clone, Args)]
pub struct Settings {
    /// PostgreSQL URL; when unset, croupier runs its own cluster under the data folder.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// Address and port the HTTP API listens on.
    #[arg(
        long,
        env = "CROUPIER_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: String,

    /// Data folder; the embedded PostgreSQL cluster lives in `<data-dir>/pg`.
    #[arg(
        long,
        env = "CROUPIER_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Database connections per server.
    #[arg(
        long,
        env = "CROUPIER_DB_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub db_pool_size: usize,

    /// HTTP worker threads.
    #[arg(long, env = "CROUPIER_WORKERS", default_value_t = 1, global = true)]
    pub workers: usize,

    /// Lifetime of a game session, in minutes.
    #[arg(
        long,
        env = "CROUPIER_SESSION_TTL_MINUTES",
        default_value_t = 1440,
        global = true
    )]
    pub session_ttl_minutes: u32,

    /// Group commit of concurrent bets: on or off.
    #[arg(long, env = "CROUPIER_BATCHING", default_value = "on", value_parser = ["on", "off"], global = true)]
    pub batching: String,

    /// Combiners: batches in flight at once.
    #[arg(
        long,
        env = "CROUPIER_BATCH_COMBINERS",
        default_value_t = 4,
        global = true
    )]
    pub batch_combiners: usize,

    /// Largest batch.
    #[arg(long, env = "CROUPIER_BATCH_MAX", default_value_t = 64, global = true)]
    pub batch_max: usize,

    /// How long a combiner waits for a fuller batch, in microseconds.
    #[arg(
        long,
        env = "CROUPIER_BATCH_WAIT_US",
        default_value_t = 0,
        global = true
    )]
    pub batch_wait_us: u64,

    /// Bets queued per combiner before new ones are refused (code 99).
    #[arg(
        long,
        env = "CROUPIER_BATCH_QUEUE",
        default_value_t = 4096,
        global = true
    )]
    pub batch_queue: usize,
}

impl Settings {
    /// Group-commit settings, None when batching is off.
    pub fn batch(&self) -> Option<crate::ledger::BatchSettings> {
        (self.batching == "on").then(|| crate::ledger::BatchSettings {
            combiners: self.batch_combiners.max(1),
            max_batch: self.batch_max.clamp(1, 1000),
            queue: self.batch_queue.max(1),
            max_wait: std::time::Duration::from_micros(self.batch_wait_us),
        })
    }

    /// What the HTTP server needs.
    pub fn server(&self) -> crate::startup::ServerConfig {
        crate::startup::ServerConfig {
            listen: self.listen.clone(),
            workers: self.workers,
            session_ttl_minutes: self.session_ttl_minutes,
            batching: self.batch(),
        }
    }

    /// Folder of the embedded PostgreSQL cluster.
    pub fn cluster_dir(&self) -> PathBuf {
        self.data_dir.join("pg")
    }
}
