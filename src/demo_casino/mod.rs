//! A casino wallet implementing the casino side of the seamless contract
//! (`reference/seamless.md`), for tests, load scenarios and the demo: it verifies every JWT
//! against croupier's JWKS, keeps its players' balances, is idempotent by (`BetId`,
//! `TransactionType`), and can be told to misbehave (latency, hangs, a 5xx after applying,
//! 202 then a late `accept`, refusals, being down). `GET /ledger` shows what it applied.
//!
//! `loadtest casino` runs it as a process; `croupier serve` on the embedded database runs one
//! for the demo operator.
//!
//! Control endpoints (unsigned, for the test bench only): `POST /players` `{PartnerUserId,
//! Balance, CurrencyCode?, Blocked?}`, `POST /faults` `[rule…]` (replaces the rules), `GET
//! /ledger`.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpResponse, HttpServer};
use jsonwebtoken::DecodingKey;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod handlers;
mod wallet;

use handlers::{
    add_player, close, info, ledger, make, make_list, set_faults, users_auth, users_data,
};

/// How the casino is set up.
#[derive(Debug, Clone)]
pub struct CasinoConfig {
    /// address:port to listen on (port 0: any free port).
    pub listen: String,
    /// croupier's JWKS.
    pub jwks_url: String,
    /// The `iss` every JWT must carry, if set.
    pub issuer: Option<String>,
    /// Players not registered are made on first sight with this balance (none: unknown).
    pub auto_players: Option<Decimal>,
    /// Currency of players made on first sight.
    pub currency: String,
    /// Where late verdicts go (croupier's base URL) and the operator credentials for them.
    pub accept: Option<AcceptTarget>,
    pub workers: usize,
}

#[derive(Debug, Clone)]
pub struct AcceptTarget {
    pub croupier_url: String,
    pub client_id: String,
    pub secret: String,
}

/// A misbehaviour for the calls it matches. `remaining`: how many more calls it applies to
/// (none: every call).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// `users/data`, `payments/make`, … (none: any path).
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub transaction_type: Option<i64>,
    #[serde(default)]
    pub bet_id: Option<i64>,
    pub fault: Fault,
    #[serde(default)]
    pub remaining: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Fault {
    /// Answer after this long.
    Latency { ms: u64 },
    /// Hold the request this long, having applied the movement or not.
    Hang { ms: u64, apply: bool },
    /// Apply, then answer this HTTP status with no envelope.
    ErrorAfterApply { status: u16 },
    /// Answer 202 at once; apply and send `payments/accept` after `delayMs`.
    AcceptLater {
        #[serde(rename = "delayMs")]
        delay_ms: u64,
    },
    /// Refuse with this ErrorCode without applying.
    Refuse { code: i64 },
    /// Down: 503 without applying.
    Down,
}

/// A movement as the casino keeps it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Movement {
    pub bet_id: i64,
    pub transaction_type: i64,
    #[serde(serialize_with = "decimal_text")]
    pub amount: Decimal,
    pub partner_user_id: String,
    /// The answer it got (200 applied; otherwise a refusal, kept for repeats).
    pub error_code: i64,
    pub partner_transaction_id: String,
    pub created_at: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Player {
    #[serde(serialize_with = "decimal_text")]
    balance: Decimal,
    currency_code: String,
    blocked: bool,
}

#[derive(Default)]
struct Books {
    players: HashMap<String, Player>,
    movements: BTreeMap<(i64, i64), Movement>,
    closed: BTreeMap<i64, bool>,
    next_tx: u64,
}

struct State {
    config: CasinoConfig,
    /// Where the keys come from (settable: a croupier may move).
    jwks_url: Mutex<String>,
    books: Mutex<Books>,
    faults: Mutex<Vec<FaultRule>>,
    keys: Mutex<HashMap<String, DecodingKey>>,
    /// When the JWKS was last fetched (fetched again on an unknown kid, at most every 1 s);
    /// held while a fetch is under way, so that calls arriving meanwhile wait for it.
    keys_fetched: tokio::sync::Mutex<Option<Instant>>,
    http: reqwest::Client,
    /// Requests refused for their JWT.
    bad_jwts: Mutex<u64>,
    /// Signed requests received, by path.
    calls: Mutex<HashMap<&'static str, u64>>,
}

/// A running casino.
pub struct Casino {
    pub port: u16,
    handle: ServerHandle,
    state: Arc<State>,
}

impl Casino {
    /// Binds and starts serving on the current runtime.
    pub fn start(config: CasinoConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let port = listener.local_addr()?.port();
        let workers = config.workers.max(1);
        let state = Arc::new(State {
            jwks_url: Mutex::new(config.jwks_url.clone()),
            config,
            books: Mutex::new(Books::default()),
            faults: Mutex::new(Vec::new()),
            keys: Mutex::new(HashMap::new()),
            keys_fetched: tokio::sync::Mutex::new(None),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            bad_jwts: Mutex::new(0),
            calls: Mutex::new(HashMap::new()),
        });
        let shared = web::Data::from(state.clone());
        let server: Server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/users/data", web::post().to(users_data))
                .route("/users/auth", web::post().to(users_auth))
                .route("/payments/make", web::post().to(make))
                .route("/payments/make-list", web::post().to(make_list))
                .route("/payments/info", web::post().to(info))
                .route("/payments/close", web::post().to(close))
                .route("/players", web::post().to(add_player))
                .route("/faults", web::post().to(set_faults))
                .route("/ledger", web::get().to(ledger))
        })
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self {
            port,
            handle,
            state,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Registers a player (or sets its balance).
    pub fn set_player(&self, user: &str, balance: Decimal, currency: &str) {
        lock(&self.state.books).players.insert(
            user.to_string(),
            Player {
                balance,
                currency_code: currency.to_string(),
                blocked: false,
            },
        );
    }

    pub fn block_player(&self, user: &str) {
        if let Some(p) = lock(&self.state.books).players.get_mut(user) {
            p.blocked = true;
        }
    }

    pub fn balance(&self, user: &str) -> Option<Decimal> {
        lock(&self.state.books).players.get(user).map(|p| p.balance)
    }

    /// Takes croupier's keys from another JWKS from now on.
    pub fn set_jwks_url(&self, url: &str) {
        *lock(&self.state.jwks_url) = url.to_string();
        lock(&self.state.keys).clear();
    }

    /// Replaces the fault rules.
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        *lock(&self.state.faults) = rules;
    }

    /// Every movement, refused ones included, by (BetId, TransactionType).
    pub fn movements(&self) -> Vec<Movement> {
        lock(&self.state.books)
            .movements
            .values()
            .cloned()
            .collect()
    }

    /// Forgets every movement and close, keeping the players and their balances: for a
    /// croupier whose database starts again (it numbers its bets from 1 again).
    pub fn forget_movements(&self) {
        let mut books = lock(&self.state.books);
        books.movements.clear();
        books.closed.clear();
    }

    /// Whether `payments/close` was received for a bet.
    pub fn closed(&self, bet_id: i64) -> bool {
        lock(&self.state.books).closed.contains_key(&bet_id)
    }

    /// Requests refused for their JWT so far.
    pub fn bad_jwts(&self) -> u64 {
        *lock(&self.state.bad_jwts)
    }

    /// Signed requests received at `path` (`payments/make`, `payments/make-list`, …).
    pub fn calls(&self, path: &str) -> u64 {
        lock(&self.state.calls).get(path).copied().unwrap_or(0)
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

fn decimal_text<S: serde::Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value.normalize().to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn envelope(code: i64, message: &str, value: Option<Value>) -> HttpResponse {
    let mut body = json!({ "ErrorCode": code, "Message": message });
    if let Some(value) = value {
        body["Value"] = value;
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_string())
}
