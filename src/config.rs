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
}

impl Settings {
    /// Folder of the embedded PostgreSQL cluster.
    pub fn cluster_dir(&self) -> PathBuf {
        self.data_dir.join("pg")
    }
}
