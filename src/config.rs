//! Configuration, from the environment or the matching flag (every variable has a default
//! that runs). Every command reads `DATABASE_URL` and `CROUPIER_DATA_DIR`
//! (`DatabaseSettings`); `serve` reads the rest (`ServerSettings`). Two admin verbs read a
//! few of them too: `admin session open` takes `CROUPIER_SESSION_TTL_MINUTES` as the default
//! of `--ttl-minutes`, and `admin crypto reopen-deposit` reads the crypto integration
//! settings (`CryptoSettings`) to reach inabit.
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
//! | `CROUPIER_BATCH_COMBINERS` | `3` | combiners (batches in flight at once) |
//! | `CROUPIER_BATCH_MAX` | `64` | largest batch |
//! | `CROUPIER_BATCH_WAIT_US` | `0` | wait for a fuller batch, microseconds |
//! | `CROUPIER_BATCH_QUEUE` | `4096` | bets queued per combiner before refusing (code 99) |
//! | `CROUPIER_APPROVER_LISTEN` | `127.0.0.1:8091` | private listener of the inabit Remote Approver callback, the crypto status and the metrics (empty = off) |
//! | `CROUPIER_ACCESS_LOG` | `on` | one log line per request at `info` (`on`/`off`) |
//! | `CROUPIER_LOG_FORMAT` | text on a terminal, else `json` | log format (`json`/`text`) |
//! | `CROUPIER_RECONCILE_SECONDS` | `3600` | how often the server reconciles the books for the metrics (0 = never) |
//! | `CROUPIER_CRYPTO_ASSETS` | `[]` | JSON list of offered assets: `{asset, blockchain, decimals, inabitAssetId, inabitBlockchainId, b2binpayCurrencyId}` |
//! | `CROUPIER_CRYPTO_HTTP_TIMEOUT_MS` | `10000` | limit on every provider call |
//! | `CROUPIER_CRYPTO_DB_POOL_SIZE` | `4` | database connections of the crypto work (jobs, deposit addresses, provider calls), a pool apart from the bet path's |
//! | `CROUPIER_CRYPTO_POLL_SECONDS` | `120` | deposit polling interval (0 = off) |
//! | `CROUPIER_INABIT_WEBHOOK_RATE`, `_BURST` | `20`, `100` | inabit webhooks taken per second from one source address, after a burst (beyond: 429) |
//! | `CROUPIER_CRYPTO_MAX_PENDING_EVENTS` | `10000` | events waiting beyond which webhooks are refused (503) |
//! | `CROUPIER_CRYPTO_PAYOUT_SECONDS` | `30` | payout tracking and recovery interval (0 = off) |
//! | `CROUPIER_CRYPTO_PAYOUT_IDLE_SECONDS` | `60` | a payout in flight is left alone this long before recovery looks at it |
//! | `CROUPIER_INABIT_GRAPHQL_URL` | `https://api.inabit.com/graphql` | Platform API |
//! | `CROUPIER_INABIT_TERMINAL_URL` | `https://api.inabit.biz` | Terminal API |
//! | `CROUPIER_INABIT_TERMINAL_KEY` | unset | Terminal API key (secret) |
//! | `CROUPIER_INABIT_LOGIN_TOKEN` | unset | API Admin login token to start from (secret; the database keeps the refreshed one) |
//! | `CROUPIER_INABIT_DEPOSITS_PATH` | `/v1/customer/transactions` | Terminal resource read to confirm and poll deposits |
//! | `CROUPIER_INABIT_ACCESS_TOKEN_TTL_SECONDS` | `900` | access token lifetime (renewed after two thirds) |
//! | `CROUPIER_INABIT_LOGIN_REFRESH_DAYS` | `20` | login token age at which it is refreshed (it lives 30) |
//! | `CROUPIER_INABIT_PRIORITY` | `Medium` | withdrawal priority |
//! | `CROUPIER_B2BINPAY_URL` | `https://api.b2binpay.com` | B2BINPAY API base |
//! | `CROUPIER_B2BINPAY_CLIENT_ID`, `_CLIENT_SECRET` | unset | v3 client credentials (secret) |
//! | `CROUPIER_B2BINPAY_CALLBACK_URL` | unset | our public callback URL, sent with each payout |
//! | `CROUPIER_B2BINPAY_LOGIN`, `_PASSWORD` | unset | older API: callbacks are signed with SHA-256(login + password) |
//! | `CROUPIER_B2BINPAY_CALLBACK_SECRET` | unset | v3 callback secret (the HMAC key when set) |
//! | `CROUPIER_ISSUER` | `http://<listen>` | croupier's public URL as seamless casinos know it: the `iss` of every JWT |
//! | `CROUPIER_SIGNING_KEY` | unset | an RSA private key (PEM, PKCS#8 or PKCS#1) to sign with; unset = keys generated in `<data dir>/keys` |
//! | `CROUPIER_SEAMLESS_DB_POOL_SIZE` | `8` | database connections of seamless work (legs, casino verdicts), a pool apart from the bet path's |
//! | `RUST_LOG` | `info` (serve), `warn` (other commands) | log filter; logs go to stderr (text in colour only on a terminal) |

use std::path::PathBuf;

use clap::Args;

/// Where the data lives: every command needs it. Global flags, so they may follow the
/// subcommand (`croupier admin reconcile --data-dir /srv/croupier`).
#[derive(Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseSettings {
    /// PostgreSQL URL (`DATABASE_URL`); when unset, croupier runs its own cluster under the
    /// data folder. It carries a password: read from the environment only, never a flag
    /// (a command line is visible to every user of the machine).
    #[arg(skip = secret("DATABASE_URL"))]
    pub database_url: Option<String>,

    /// Data folder; the embedded PostgreSQL cluster lives in `<data-dir>/pg`.
    #[arg(
        long,
        env = "CROUPIER_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
}

/// The server's own settings (`croupier serve`).
#[derive(Clone, Args)]
pub struct ServerSettings {
    /// Address and port the HTTP API listens on.
    #[arg(long, env = "CROUPIER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Database connections per server.
    #[arg(long, env = "CROUPIER_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// The longest a database statement of the server may run, in milliseconds
    /// (`statement_timeout`); an answer that has not started a second later closes the
    /// connection (a link gone quiet).
    #[arg(long, env = "CROUPIER_DB_TIMEOUT_MS", default_value_t = 2_000)]
    pub db_timeout_ms: u64,

    /// The longest a bet call waits for the ledger, in milliseconds, queueing included; then
    /// it answers 99 (retry with the same betId).
    #[arg(long, env = "CROUPIER_BET_DEADLINE_MS", default_value_t = 3_000)]
    pub bet_deadline_ms: u64,

    /// HTTP worker threads.
    #[arg(long, env = "CROUPIER_WORKERS", default_value_t = 1)]
    pub workers: usize,

    /// Lifetime of a game session, in minutes.
    #[arg(long, env = "CROUPIER_SESSION_TTL_MINUTES", default_value_t = 1440)]
    pub session_ttl_minutes: u32,

    /// Group commit of concurrent bets: on or off.
    #[arg(long, env = "CROUPIER_BATCHING", value_enum, default_value_t = Switch::On)]
    pub batching: Switch,

    /// Combiners: batches in flight at once.
    #[arg(long, env = "CROUPIER_BATCH_COMBINERS", default_value_t = 3)]
    pub batch_combiners: usize,

    /// Largest batch.
    #[arg(long, env = "CROUPIER_BATCH_MAX", default_value_t = 64)]
    pub batch_max: usize,

    /// How long a combiner waits for a fuller batch, in microseconds.
    #[arg(long, env = "CROUPIER_BATCH_WAIT_US", default_value_t = 0)]
    pub batch_wait_us: u64,

    /// Bets queued per combiner before new ones are refused (code 99).
    #[arg(long, env = "CROUPIER_BATCH_QUEUE", default_value_t = 4096)]
    pub batch_queue: usize,

    /// Private listener for the inabit Remote Approver callback and the status page.
    #[arg(
        long,
        env = "CROUPIER_APPROVER_LISTEN",
        default_value = "127.0.0.1:8091"
    )]
    pub approver_listen: String,

    /// croupier's public URL as seamless casinos know it (the `iss` of every JWT); default
    /// `http://` and the listen address.
    #[arg(long, env = "CROUPIER_ISSUER")]
    pub issuer: Option<String>,

    /// An RSA private key (PEM) to sign casino calls with; unset: keys generated in the data
    /// folder.
    #[arg(long, env = "CROUPIER_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,

    /// Database connections of the seamless work.
    #[arg(long, env = "CROUPIER_SEAMLESS_DB_POOL_SIZE", default_value_t = 8)]
    pub seamless_db_pool_size: usize,

    /// One access-log line per request, at `info`: on or off.
    #[arg(long, env = "CROUPIER_ACCESS_LOG", value_enum, default_value_t = Switch::On)]
    pub access_log: Switch,

    /// How often the server reconciles the books, in seconds, for the metrics (0 = never).
    #[arg(long, env = "CROUPIER_RECONCILE_SECONDS", default_value_t = 3600)]
    pub reconcile_seconds: u64,

    #[command(flatten)]
    pub crypto: CryptoSettings,
}

/// The crypto integrations (see the table above). Secrets are read from the environment and
/// never printed.
#[derive(Clone, Args)]
#[command(next_help_heading = "Crypto integrations")]
pub struct CryptoSettings {
    #[arg(long, env = "CROUPIER_CRYPTO_ASSETS", default_value = "[]")]
    pub crypto_assets: String,
    #[arg(
        long,
        env = "CROUPIER_CRYPTO_HTTP_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub crypto_http_timeout_ms: u64,
    /// Database connections of the crypto work (jobs, addresses, provider calls), apart
    /// from the `CROUPIER_DB_POOL_SIZE` connections of the bet path.
    #[arg(long, env = "CROUPIER_CRYPTO_DB_POOL_SIZE", default_value_t = 4)]
    pub crypto_db_pool_size: usize,
    #[arg(long, env = "CROUPIER_CRYPTO_POLL_SECONDS", default_value_t = 120)]
    pub crypto_poll_seconds: u64,
    /// inabit webhooks taken per second from one source address (after a burst).
    #[arg(long, env = "CROUPIER_INABIT_WEBHOOK_RATE", default_value_t = 20)]
    pub inabit_webhook_rate: u32,
    #[arg(long, env = "CROUPIER_INABIT_WEBHOOK_BURST", default_value_t = 100)]
    pub inabit_webhook_burst: u32,
    /// Events waiting to be confirmed beyond which webhooks are refused (503).
    #[arg(
        long,
        env = "CROUPIER_CRYPTO_MAX_PENDING_EVENTS",
        default_value_t = 10_000
    )]
    pub crypto_max_pending_events: i64,
    #[arg(long, env = "CROUPIER_CRYPTO_PAYOUT_SECONDS", default_value_t = 30)]
    pub crypto_payout_seconds: u64,
    #[arg(
        long,
        env = "CROUPIER_CRYPTO_PAYOUT_IDLE_SECONDS",
        default_value_t = 60
    )]
    pub crypto_payout_idle_seconds: u64,
    #[arg(
        long,
        env = "CROUPIER_INABIT_GRAPHQL_URL",
        default_value = "https://api.inabit.com/graphql"
    )]
    pub inabit_graphql_url: String,
    #[arg(
        long,
        env = "CROUPIER_INABIT_TERMINAL_URL",
        default_value = "https://api.inabit.biz"
    )]
    pub inabit_terminal_url: String,
    #[arg(skip = secret("CROUPIER_INABIT_TERMINAL_KEY"))]
    pub inabit_terminal_key: Option<String>,
    #[arg(skip = secret("CROUPIER_INABIT_LOGIN_TOKEN"))]
    pub inabit_login_token: Option<String>,
    #[arg(
        long,
        env = "CROUPIER_INABIT_DEPOSITS_PATH",
        default_value = "/v1/customer/transactions"
    )]
    pub inabit_deposits_path: String,
    #[arg(
        long,
        env = "CROUPIER_INABIT_ACCESS_TOKEN_TTL_SECONDS",
        default_value_t = 900
    )]
    pub inabit_access_token_ttl_seconds: u64,
    #[arg(long, env = "CROUPIER_INABIT_LOGIN_REFRESH_DAYS", default_value_t = 20)]
    pub inabit_login_refresh_days: u64,
    #[arg(long, env = "CROUPIER_INABIT_PRIORITY", default_value = "Medium")]
    pub inabit_priority: String,
    #[arg(
        long,
        env = "CROUPIER_B2BINPAY_URL",
        default_value = "https://api.b2binpay.com"
    )]
    pub b2binpay_url: String,
    #[arg(skip = secret("CROUPIER_B2BINPAY_CLIENT_ID"))]
    pub b2binpay_client_id: Option<String>,
    #[arg(skip = secret("CROUPIER_B2BINPAY_CLIENT_SECRET"))]
    pub b2binpay_client_secret: Option<String>,
    #[arg(long, env = "CROUPIER_B2BINPAY_CALLBACK_URL")]
    pub b2binpay_callback_url: Option<String>,
    #[arg(skip = secret("CROUPIER_B2BINPAY_LOGIN"))]
    pub b2binpay_login: Option<String>,
    #[arg(skip = secret("CROUPIER_B2BINPAY_PASSWORD"))]
    pub b2binpay_password: Option<String>,
    #[arg(skip = secret("CROUPIER_B2BINPAY_CALLBACK_SECRET"))]
    pub b2binpay_callback_secret: Option<String>,
}

/// A secret setting: read from the environment only, never taken as a flag (a command line
/// is visible to every user of the machine, in `ps`). Empty counts as unset.
fn secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Zero seconds means off.
fn every(seconds: u64) -> Option<std::time::Duration> {
    (seconds > 0).then(|| std::time::Duration::from_secs(seconds))
}

impl CryptoSettings {
    pub fn config(&self) -> anyhow::Result<crate::crypto::CryptoConfig> {
        use crate::crypto::b2binpay::B2binpayConfig;
        use crate::crypto::inabit::InabitConfig;
        use std::time::Duration;
        let assets = serde_json::from_str(&self.crypto_assets)
            .map_err(|e| anyhow::anyhow!("CROUPIER_CRYPTO_ASSETS is not a list of assets: {e}"))?;
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        // One provider call is at most four requests (token, call, token again, call again):
        // the recovery job must not look at a payout while the request that holds it may still
        // be sending it.
        let busiest_ms = self
            .crypto_http_timeout_ms
            .saturating_mul(4)
            .saturating_add(10_000);
        for moved in ["CROUPIER_INABIT_WALLET_ID", "CROUPIER_B2BINPAY_WALLET_ID"] {
            if std::env::var_os(moved).is_some() {
                anyhow::bail!(
                    "{moved} is no longer read: payout wallets are each operator's \
                     (croupier admin operator set-payout-rail --operator ID --rail RAIL --wallet ID)"
                );
            }
        }
        let payouts_on = nonempty(&self.inabit_login_token).is_some()
            || nonempty(&self.b2binpay_client_id).is_some()
            || nonempty(&self.b2binpay_login).is_some();
        if payouts_on && self.crypto_payout_idle_seconds.saturating_mul(1000) <= busiest_ms {
            anyhow::bail!(
                "CROUPIER_CRYPTO_PAYOUT_IDLE_SECONDS must be more than {} s (4 x CROUPIER_CRYPTO_HTTP_TIMEOUT_MS + 10 s)",
                busiest_ms / 1000
            );
        }
        Ok(crate::crypto::CryptoConfig {
            inabit: InabitConfig {
                graphql_url: self.inabit_graphql_url.clone(),
                terminal_url: self.inabit_terminal_url.clone(),
                terminal_key: nonempty(&self.inabit_terminal_key),
                login_token: nonempty(&self.inabit_login_token),
                deposits_path: self.inabit_deposits_path.clone(),
                access_token_ttl: Duration::from_secs(self.inabit_access_token_ttl_seconds.max(3)),
                login_refresh_after: Duration::from_secs(
                    self.inabit_login_refresh_days * 24 * 3600,
                ),
                priority: self.inabit_priority.clone(),
            },
            b2binpay: B2binpayConfig {
                base_url: self.b2binpay_url.clone(),
                client_id: nonempty(&self.b2binpay_client_id),
                client_secret: nonempty(&self.b2binpay_client_secret),
                callback_url: nonempty(&self.b2binpay_callback_url),
                login: nonempty(&self.b2binpay_login),
                password: nonempty(&self.b2binpay_password),
                callback_secret: nonempty(&self.b2binpay_callback_secret),
            },
            assets,
            http_timeout: Duration::from_millis(self.crypto_http_timeout_ms.max(1)),
            db_pool_size: self.crypto_db_pool_size.max(1),
            poll_interval: every(self.crypto_poll_seconds),
            payout_interval: every(self.crypto_payout_seconds),
            payout_idle: Duration::from_secs(self.crypto_payout_idle_seconds),
            login_check_interval: Some(Duration::from_secs(3600)),
            webhooks: crate::crypto::webhooks::WebhookLimits {
                per_second: self.inabit_webhook_rate,
                burst: self.inabit_webhook_burst,
                max_pending: self.crypto_max_pending_events.max(1),
            },
        })
    }
}

impl ServerSettings {
    /// Group-commit settings, None when batching is off.
    pub fn batch(&self) -> Option<crate::ledger::BatchSettings> {
        (self.batching == Switch::On).then(|| crate::ledger::BatchSettings {
            combiners: self.batch_combiners.max(1),
            max_batch: self.batch_max.clamp(1, crate::ledger::MAX_BATCH),
            queue: self.batch_queue.max(1),
            max_wait: std::time::Duration::from_micros(self.batch_wait_us),
        })
    }

    /// What the HTTP server needs; generated signing keys go under `data_dir`.
    pub fn server(
        &self,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<crate::startup::ServerConfig> {
        let issuer = self
            .issuer
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        let mut signing = crate::seamless::SigningConfig::in_data_dir(data_dir, &issuer);
        signing.pem = self.signing_key.clone();
        Ok(crate::startup::ServerConfig {
            listen: self.listen.clone(),
            workers: self.workers,
            session_ttl_minutes: self.session_ttl_minutes,
            batching: self.batch(),
            db_timeout: std::time::Duration::from_millis(self.db_timeout_ms.max(1)),
            bet_deadline: std::time::Duration::from_millis(self.bet_deadline_ms.max(1)),
            approver_listen: Some(self.approver_listen.clone()).filter(|l| !l.is_empty()),
            access_log: self.access_log == Switch::On,
            reconcile_every: every(self.reconcile_seconds),
            crypto: self.crypto.config()?,
            seamless: crate::startup::SeamlessConfig {
                signing,
                db_pool_size: self.seamless_db_pool_size.max(1),
                job_interval: std::time::Duration::from_secs(1),
            },
        })
    }
}

impl DatabaseSettings {
    /// Folder of the embedded PostgreSQL cluster.
    pub fn cluster_dir(&self) -> PathBuf {
        self.data_dir.join("pg")
    }
}

/// A setting that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}
