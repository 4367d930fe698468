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
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpResponse, HttpServer};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

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

    /// Whether `payments/close` was received for a bet.
    pub fn closed(&self, bet_id: i64) -> bool {
        lock(&self.state.books).closed.contains_key(&bet_id)
    }

    /// Requests refused for their JWT so far.
    pub fn bad_jwts(&self) -> u64 {
        *lock(&self.state.bad_jwts)
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

impl State {
    /// The `data` of a request whose body is a JWT croupier signed, or why not.
    async fn data(&self, body: &[u8]) -> Result<Value, HttpResponse> {
        let refuse = |why: &str| {
            *lock(&self.bad_jwts) += 1;
            HttpResponse::Unauthorized()
                .content_type("application/json")
                .body(json!({"ErrorCode": 401, "Message": why}).to_string())
        };
        let Ok(Value::String(jwt)) = serde_json::from_slice::<Value>(body) else {
            return Err(refuse("the body is not a JWT as a JSON string"));
        };
        let Ok(header) = jsonwebtoken::decode_header(&jwt) else {
            return Err(refuse("not a JWT"));
        };
        if header.alg != Algorithm::RS256 {
            return Err(refuse("not RS256"));
        }
        let Some(kid) = header.kid else {
            return Err(refuse("no kid"));
        };
        let Some(key) = self.key(&kid).await else {
            return Err(refuse("unknown kid"));
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss"]);
        if let Some(issuer) = &self.config.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = match jsonwebtoken::decode::<Value>(&jwt, &key, &validation) {
            Ok(token) => token.claims,
            Err(e) => return Err(refuse(&format!("the JWT does not verify: {e}"))),
        };
        let Some(data) = claims["data"].as_str() else {
            return Err(refuse("no data claim"));
        };
        serde_json::from_str(data).map_err(|_| refuse("data is not JSON"))
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = lock(&self.keys).get(kid) {
            return Some(key.clone());
        }
        let mut fetched = self.keys_fetched.lock().await;
        // Fetched by another call while this one waited?
        if let Some(key) = lock(&self.keys).get(kid) {
            return Some(key.clone());
        }
        if fetched.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return None;
        }
        *fetched = Some(Instant::now());
        let url = lock(&self.jwks_url).clone();
        let jwks: Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
        let mut keys = lock(&self.keys);
        for k in jwks["keys"].as_array()? {
            if let (Some(id), Some(n), Some(e)) =
                (k["kid"].as_str(), k["n"].as_str(), k["e"].as_str())
            {
                if let Ok(key) = DecodingKey::from_rsa_components(n, e) {
                    keys.insert(id.to_string(), key);
                }
            }
        }
        keys.get(kid).cloned()
    }

    /// The first rule matching a call, counted.
    fn fault(&self, path: &str, data: &Value) -> Option<Fault> {
        let mut rules = lock(&self.faults);
        let bet = data["BetId"].as_i64();
        let kind = data["TransactionType"].as_i64();
        let i = rules.iter().position(|r| {
            r.path.as_deref().is_none_or(|p| p == path)
                && r.transaction_type.is_none_or(|t| Some(t) == kind)
                && r.bet_id.is_none_or(|b| Some(b) == bet)
                && r.remaining != Some(0)
        })?;
        let rule = &mut rules[i];
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        Some(rule.fault.clone())
    }

    fn player<'a>(&self, books: &'a mut Books, user: &str) -> Option<&'a mut Player> {
        if !books.players.contains_key(user) {
            let balance = self.config.auto_players?;
            books.players.insert(
                user.to_string(),
                Player {
                    balance,
                    currency_code: self.config.currency.clone(),
                    blocked: false,
                },
            );
        }
        books.players.get_mut(user)
    }

    /// Applies one make (idempotent by BetId and TransactionType): (ErrorCode, Value).
    fn apply(&self, item: &Value) -> (i64, Value) {
        let (Some(bet), Some(kind), Some(user)) = (
            item["BetId"].as_i64(),
            item["TransactionType"].as_i64(),
            item["PartnerUserId"].as_str(),
        ) else {
            return (102823, Value::Null);
        };
        let Some(amount) = item["Amount"]
            .as_str()
            .and_then(|a| Decimal::from_str(a).ok())
            .filter(|a| !a.is_sign_negative())
        else {
            return (103801, Value::Null);
        };
        let mut books = lock(&self.books);
        if let Some(seen) = books.movements.get(&(bet, kind)) {
            if seen.amount != amount {
                return (409, Value::Null);
            }
            let (code, ptid) = (seen.error_code, seen.partner_transaction_id.clone());
            let balance = books.players.get(user).map(|p| p.balance);
            return (code, value(&ptid, balance));
        }
        let applied_kinds: Vec<i64> = books
            .movements
            .range((bet, i64::MIN)..=(bet, i64::MAX))
            .filter(|(_, m)| m.error_code == 200)
            .map(|(k, _)| k.1)
            .collect();
        let Some(player) = self.player(&mut books, user) else {
            return (102145, Value::Null);
        };
        let code = if player.blocked && kind == -1 {
            403
        } else {
            match kind {
                -1 if player.balance < amount => 402,
                -1 => 200,
                1 | 4 => 200,
                2 if !applied_kinds.contains(&-1) => 404,
                2 => 200,
                -2 if !applied_kinds.iter().any(|k| *k == 1 || *k == 4) => 404,
                -2 if player.balance < amount => 402,
                -2 => 200,
                _ => 102823,
            }
        };
        if code == 200 {
            if kind < 0 {
                player.balance -= amount;
            } else {
                player.balance += amount;
            }
        }
        let balance = player.balance;
        books.next_tx += 1;
        let ptid = format!("ctx-{}", books.next_tx);
        books.movements.insert(
            (bet, kind),
            Movement {
                bet_id: bet,
                transaction_type: kind,
                amount,
                partner_user_id: user.to_string(),
                error_code: code,
                partner_transaction_id: ptid.clone(),
                created_at: now_s(),
            },
        );
        (code, value(&ptid, Some(balance)))
    }

    /// Sends `payments/accept` for a movement applied late.
    async fn send_accept(&self, item: &Value, code: i64, value: &Value) {
        let Some(target) = &self.config.accept else {
            return;
        };
        let token: Option<String> = async {
            let answer: Value = self
                .http
                .post(format!("{}/mis-api/api/v2/auth/token", target.croupier_url))
                .json(&json!({"PartnerClientId": target.client_id, "Secret": target.secret}))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            answer["Value"]["AccessToken"].as_str().map(str::to_string)
        }
        .await;
        let Some(token) = token else {
            tracing::warn!("demo casino: no token for accept");
            return;
        };
        let verdict = json!({
            "BetId": item["BetId"], "TransactionType": item["TransactionType"],
            "ErrorCode": code, "Amount": item["Amount"],
            "PartnerTransactionId": value["PartnerTransactionId"], "Balance": value["Balance"],
        });
        // Resent on errors, as Betcore asks.
        for _ in 0..10 {
            let sent = self
                .http
                .post(format!(
                    "{}/mis-api/api/v2/payments/accept",
                    target.croupier_url
                ))
                .bearer_auth(&token)
                .json(&verdict)
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn value(ptid: &str, balance: Option<Decimal>) -> Value {
    json!({
        "PartnerTransactionId": ptid,
        "Balance": balance.map(|b| b.normalize().to_string()),
    })
}

async fn users_data(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    if let Some(answer) = pre_fault(&state, "users/data", &data).await {
        return answer;
    }
    let user = data["PartnerUserId"].as_str().unwrap_or_default();
    let mut books = lock(&state.books);
    match state.player(&mut books, user) {
        Some(p) if p.blocked => envelope(403, "player blocked", None),
        Some(p) => envelope(
            200,
            "Success",
            Some(
                json!({"Balance": p.balance.normalize().to_string(), "CurrencyCode": p.currency_code}),
            ),
        ),
        None => envelope(102145, "user not found", None),
    }
}

async fn users_auth(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    // The demo's launch tokens are the player ids themselves.
    let user = data["RefreshToken"].as_str().unwrap_or_default();
    let mut books = lock(&state.books);
    match state.player(&mut books, user) {
        Some(p) => envelope(
            200,
            "Success",
            Some(
                json!({"PartnerUserId": user, "CurrencyCode": p.currency_code,
                        "Balance": p.balance.normalize().to_string(), "RefreshToken": user}),
            ),
        ),
        None => envelope(102145, "user not found", None),
    }
}

/// The fault a call meets, acted on where nothing is applied first: Some(answer) ends the
/// call; a latency is waited out; a fault of a make is left to `make`.
async fn pre_fault(state: &State, path: &str, data: &Value) -> Option<HttpResponse> {
    let fault = state.fault(path, data)?;
    before_apply(fault).await.err()
}

/// Acts on a fault before applying: Err(answer) ends the call, Ok(fault) is for after.
async fn before_apply(fault: Fault) -> Result<Fault, HttpResponse> {
    match fault {
        Fault::Down => Err(HttpResponse::ServiceUnavailable().finish()),
        Fault::Refuse { code } => Err(envelope(code, "refused", None)),
        Fault::Hang { ms, apply: false } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Err(HttpResponse::ServiceUnavailable().finish())
        }
        Fault::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Fault::Latency { ms: 0 })
        }
        other => Ok(other),
    }
}

async fn make(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    let after = match state.fault("payments/make", &data) {
        Some(fault) => match before_apply(fault).await {
            Ok(after) => Some(after),
            Err(answer) => return answer,
        },
        None => None,
    };
    if let Some(Fault::AcceptLater { delay_ms }) = after {
        let state = state.into_inner();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let (code, value) = state.apply(&data);
            state.send_accept(&data, code, &value).await;
        });
        return envelope(202, "accepted", None);
    }
    let (code, value) = state.apply(&data);
    match after {
        Some(Fault::Hang { ms, .. }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return HttpResponse::ServiceUnavailable().finish();
        }
        Some(Fault::ErrorAfterApply { status }) => {
            return HttpResponse::build(
                actix_web::http::StatusCode::from_u16(status)
                    .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
            )
            .finish();
        }
        _ => {}
    }
    let message = if code == 200 { "Success" } else { "refused" };
    envelope(code, message, (code == 200 || code == 409).then_some(value))
}

async fn make_list(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    let Some(items) = data["Transactions"].as_array() else {
        return envelope(102823, "no Transactions", None);
    };
    let results: Vec<Value> = items
        .iter()
        .map(|item| {
            let (code, value) = state.apply(item);
            json!({"BetId": item["BetId"], "TransactionType": item["TransactionType"],
                   "ErrorCode": code, "PartnerTransactionId": value["PartnerTransactionId"],
                   "Balance": value["Balance"]})
        })
        .collect();
    envelope(200, "Success", Some(json!({ "Results": results })))
}

async fn info(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    if let Some(answer) = pre_fault(&state, "payments/info", &data).await {
        return answer;
    }
    let bet = data["BetId"].as_i64().unwrap_or(-1);
    let books = lock(&state.books);
    let listed: Vec<Value> = books
        .movements
        .range((bet, i64::MIN)..=(bet, i64::MAX))
        .filter(|(_, m)| m.error_code == 200)
        .map(|(_, m)| {
            json!({"BetId": m.bet_id, "TransactionType": m.transaction_type,
                   "Amount": m.amount.normalize().to_string(),
                   "PartnerTransactionId": m.partner_transaction_id, "CreatedAt": m.created_at})
        })
        .collect();
    if listed.is_empty() {
        return envelope(404, "transaction not found", None);
    }
    envelope(200, "Success", Some(json!({ "Transactions": listed })))
}

async fn close(body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let data = match state.data(&body).await {
        Ok(data) => data,
        Err(refused) => return refused,
    };
    if let Some(answer) = pre_fault(&state, "payments/close", &data).await {
        return answer;
    }
    let bet = data["BetId"].as_i64().unwrap_or(-1);
    let closed = data["Closed"].as_bool().unwrap_or(true);
    lock(&state.books).closed.insert(bet, closed);
    envelope(200, "Success", None)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NewPlayer {
    partner_user_id: String,
    balance: String,
    #[serde(default)]
    currency_code: Option<String>,
    #[serde(default)]
    blocked: bool,
}

async fn add_player(body: web::Json<NewPlayer>, state: web::Data<State>) -> HttpResponse {
    let Ok(balance) = Decimal::from_str(&body.balance) else {
        return HttpResponse::BadRequest().body("Balance must be a decimal string");
    };
    lock(&state.books).players.insert(
        body.partner_user_id.clone(),
        Player {
            balance,
            currency_code: body
                .currency_code
                .clone()
                .unwrap_or_else(|| state.config.currency.clone()),
            blocked: body.blocked,
        },
    );
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn set_faults(body: web::Json<Vec<FaultRule>>, state: web::Data<State>) -> HttpResponse {
    *lock(&state.faults) = body.into_inner();
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn ledger(state: web::Data<State>) -> HttpResponse {
    let books = lock(&state.books);
    HttpResponse::Ok().json(json!({
        "players": books.players,
        "movements": books.movements.values().collect::<Vec<_>>(),
        "closed": books.closed.keys().collect::<Vec<_>>(),
        "badJwts": *lock(&state.bad_jwts),
    }))
}
