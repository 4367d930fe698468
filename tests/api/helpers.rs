//! Test harness: one private PostgreSQL cluster per test run, one fresh database per test
//! (cloned from a migrated template), a server on a free port, and a typed client that signs
//! every call like a game provider.

use std::str::FromStr;
use std::sync::OnceLock;

use croupier::admin::{Admin, Credentials};
use croupier::db::testing::TestCluster;
use croupier::db::DbPool;
use croupier::ledger::BatchSettings;
use croupier::money::{Amount, Currency};
use croupier::startup::{Application, Pools, ServerConfig};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use serde_json::Value;
use uuid::Uuid;

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();

fn cluster() -> &'static TestCluster {
    CLUSTER.get_or_init(|| {
        TestCluster::start("croupier-test").expect("the test PostgreSQL cluster starts")
    })
}

#[ctor::dtor]
fn stop_cluster() {
    if let Some(c) = CLUSTER.get() {
        c.stop();
    }
}

/// A fresh, migrated, empty database. Returns its URL.
pub async fn fresh_database() -> String {
    cluster()
        .fresh_database()
        .await
        .expect("a fresh test database")
}

pub struct TestApp {
    pub base: String,
    /// The private listener (Remote Approver callback, crypto status).
    pub private_base: String,
    pub crypto: std::sync::Arc<croupier::crypto::Crypto>,
    pub seamless: std::sync::Arc<croupier::seamless::Seamless>,
    pub config: ServerConfig,
    pub database_url: String,
    pub pool: DbPool,
    pub admin: Admin,
    pub http: reqwest::Client,
    pub provider: Credentials,
    pub operator: Credentials,
}

/// A player with a funded wallet and an open session of the app's provider.
#[derive(Debug, Clone)]
pub struct Player {
    pub external_id: String,
    pub currency: Currency,
    pub session: Uuid,
}

/// What the server answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub json: Value,
}

impl Reply {
    pub fn code(&self) -> i64 {
        self.json["_responseCode"].as_i64().unwrap_or(-1)
    }

    /// The `balance` field, read exactly from the JSON text.
    pub fn balance(&self) -> Option<Decimal> {
        #[derive(serde::Deserialize)]
        struct B<'a> {
            #[serde(borrow)]
            balance: Option<&'a RawValue>,
        }
        let b: B = serde_json::from_str(&self.body).ok()?;
        b.balance
            .map(|raw| Decimal::from_str(raw.get()).expect("balance is a plain number"))
    }

    pub fn str(&self, field: &str) -> Option<String> {
        self.json[field].as_str().map(str::to_string)
    }

    /// Asserts the code and its HTTP status.
    #[track_caller]
    pub fn expect(&self, code: i64, status: u16) -> &Self {
        assert_eq!(
            (self.code(), self.status),
            (code, status),
            "unexpected answer: {}",
            self.body
        );
        self
    }
}

/// A request to build and send; every part can be altered to test refusals.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: reqwest::Method,
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub counterparty: String,
    pub secret: String,
    pub timestamp: String,
    pub request_id: String,
    pub sign: Option<String>,
    pub omit: Vec<&'static str>,
}

impl Req {
    /// A request stamped now with a fresh request id, to be signed with `signer`'s secret.
    pub fn signed_by(
        signer: &Signer,
        method: reqwest::Method,
        path: String,
        body: Option<&str>,
    ) -> Self {
        Self {
            method,
            path,
            body: body.map(|b| b.as_bytes().to_vec()),
            counterparty: signer.id.clone(),
            secret: signer.secret.clone(),
            timestamp: now_ms().to_string(),
            request_id: nonce(),
            sign: None,
            omit: vec![],
        }
    }

    pub fn sign_now(&self) -> String {
        croupier::auth::sign(
            self.secret.as_bytes(),
            self.body.as_deref(),
            &self.counterparty,
            &self.timestamp,
            &self.request_id,
        )
    }
}

/// The suite runs in both ledger modes: group commit on (default) or, with
/// `CROUPIER_BATCHING=off`, each bet in its own transaction.
pub fn batching() -> Option<BatchSettings> {
    match std::env::var("CROUPIER_BATCHING").as_deref() {
        Ok("off") => None,
        _ => Some(BatchSettings::default()),
    }
}

pub fn now_ms() -> u64 {
    croupier::auth::now_ms()
}

pub fn nonce() -> String {
    Uuid::new_v4().simple().to_string()
}

pub fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal literal")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(batching()).await
}

/// An app with the given group-commit settings (None: one transaction per bet).
pub async fn spawn_app_with(batching: Option<BatchSettings>) -> TestApp {
    spawn_app_configured(ServerConfig::local(batching)).await
}

/// The server's warnings and errors go to the test's captured output (shown when it fails);
/// `RUST_LOG` picks other levels.
fn log_to_test_output() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("croupier=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// An app with the given configuration (its crypto jobs not started).
pub async fn spawn_app_configured(config: ServerConfig) -> TestApp {
    spawn_app_routed(config, str::to_string).await
}

/// An app whose server reaches its database at `route(url)` (through a proxy, say); the
/// test's own pool and admin use `url`.
pub async fn spawn_app_routed(config: ServerConfig, route: impl FnOnce(&str) -> String) -> TestApp {
    spawn_app_on(config, fresh_database().await, route).await
}

/// An app on `database_url`, a fresh migrated database (of a cluster of the test's own, say),
/// whose server reaches it at `route(url)`.
pub async fn spawn_app_on(
    config: ServerConfig,
    database_url: String,
    route: impl FnOnce(&str) -> String,
) -> TestApp {
    log_to_test_output();
    let server_url = route(&database_url);
    let bets = croupier::db::pool(&server_url, 16, config.db_limits()).expect("pool");
    let pools = Pools::beside(bets.clone(), &server_url, &config).expect("pools");
    let pool = if server_url == database_url {
        bets
    } else {
        croupier::db::pool(&database_url, 4, croupier::db::Limits::unlimited()).expect("pool")
    };
    let app = Application::build(&config, pools).expect("app builds");
    app.watch_changes(server_url);
    let base = format!("http://127.0.0.1:{}", app.port());
    let private_base = format!(
        "http://127.0.0.1:{}",
        app.approver_port().expect("the private listener runs")
    );
    let crypto = app.crypto();
    let seamless = app.seamless();
    tokio::spawn(app.run_until_stopped());
    let admin = Admin::new(pool.clone());
    let provider = admin
        .provider_add("Test Games", true)
        .await
        .expect("provider");
    let operator = admin.operator_add("Test Casino").await.expect("operator");
    TestApp {
        base,
        private_base,
        crypto,
        seamless,
        config,
        database_url,
        pool,
        admin,
        http: reqwest::Client::new(),
        provider,
        operator,
    }
}

impl TestApp {
    /// Another croupier on the same database, with the same counterparties: a second
    /// instance, or this one restarted (its memory is new).
    pub async fn another_server(&self) -> TestApp {
        let bets =
            croupier::db::pool(&self.database_url, 16, self.config.db_limits()).expect("pool");
        let pools = Pools::beside(bets, &self.database_url, &self.config).expect("pools");
        let app = Application::build(&self.config, pools).expect("app builds");
        app.watch_changes(self.database_url.clone());
        let base = format!("http://127.0.0.1:{}", app.port());
        let private_base = format!(
            "http://127.0.0.1:{}",
            app.approver_port().expect("the private listener runs")
        );
        let (crypto, seamless) = (app.crypto(), app.seamless());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            private_base,
            crypto,
            seamless,
            config: self.config.clone(),
            database_url: self.database_url.clone(),
            pool: self.pool.clone(),
            admin: Admin::new(self.pool.clone()),
            http: self.http.clone(),
            provider: self.provider.clone(),
            operator: self.operator.clone(),
        }
    }

    /// A player of the app's operator, funded with `funds`, with an open session.
    pub async fn player(&self, currency: &str, funds: &str) -> Player {
        let currency = Currency::parse(currency).expect("currency");
        let external_id = format!("player-{}", Uuid::new_v4().simple());
        self.admin
            .player_add(&self.operator.id, &external_id, currency)
            .await
            .expect("player");
        let amount = Amount::parse(funds, currency).expect("funds");
        if !amount.value().is_zero() {
            self.admin
                .wallet_credit(&self.operator.id, &external_id, amount, &nonce())
                .await
                .expect("credit");
        }
        let session = self
            .admin
            .session_open(
                &self.provider.id,
                &self.operator.id,
                &external_id,
                currency,
                "test-game",
                60,
            )
            .await
            .expect("session");
        Player {
            external_id,
            currency,
            session: session.0,
        }
    }

    /// A correctly signed request of the app's provider. `op` is `balance`, or a bet call
    /// (`pay-in`, `pay-out`, `pay-in-out`, `refund`) with its JSON body.
    pub fn req(&self, session: Uuid, op: &str, body: Option<&str>) -> Req {
        let (method, path) = if op == "balance" {
            (
                reqwest::Method::GET,
                format!("/v1/sessions/{session}/balance"),
            )
        } else {
            (
                reqwest::Method::POST,
                format!("/v1/sessions/{session}/bets/{op}"),
            )
        };
        Req::signed_by(&Signer::from(&self.provider), method, path, body)
    }

    pub async fn send(&self, r: Req) -> Reply {
        send_to(&self.http, &self.base, r).await
    }

    pub async fn call(&self, p: &Player, op: &str, body: &str) -> Reply {
        self.send(self.req(p.session, op, Some(body))).await
    }

    pub async fn pay_in(&self, p: &Player, bet: &str, amount: &str) -> Reply {
        self.call(
            p,
            "pay-in",
            &format!(r#"{{"betId":"{bet}","betAmount":{amount}}}"#),
        )
        .await
    }

    pub async fn pay_out(&self, p: &Player, bet: &str, win: &str) -> Reply {
        self.call(
            p,
            "pay-out",
            &format!(r#"{{"betId":"{bet}","winAmount":{win}}}"#),
        )
        .await
    }

    pub async fn pay_in_out(&self, p: &Player, bet: &str, amount: &str, win: &str) -> Reply {
        self.call(
            p,
            "pay-in-out",
            &format!(r#"{{"betId":"{bet}","betAmount":{amount},"winAmount":{win}}}"#),
        )
        .await
    }

    pub async fn refund(&self, p: &Player, bet: &str) -> Reply {
        self.call(p, "refund", &format!(r#"{{"betId":"{bet}"}}"#))
            .await
    }

    pub async fn balance(&self, p: &Player) -> Reply {
        self.send(self.req(p.session, "balance", None)).await
    }

    /// The player's wallet as stored: balance and number of journal rows.
    pub async fn wallet(&self, p: &Player) -> (Decimal, i64) {
        let client = self.pool.get().await.expect("db");
        let row = client
            .query_one(
                "SELECT w.balance, (SELECT count(*) FROM journal j WHERE j.wallet_id = w.id)
                   FROM players pl JOIN wallets w ON w.player_id = pl.id
                  WHERE pl.external_id = $1 AND w.currency = $2 AND pl.operator_id = $3",
                &[&p.external_id, &p.currency.code(), &self.operator.id],
            )
            .await
            .expect("wallet row");
        (row.get(0), row.get(1))
    }

    /// The bet's state, or None when no row exists.
    pub async fn bet_state(&self, bet: &str) -> Option<String> {
        let client = self.pool.get().await.expect("db");
        client
            .query_opt(
                "SELECT state FROM bets WHERE provider_id = $1 AND bet_id = $2",
                &[&self.provider.id, &bet],
            )
            .await
            .expect("bet query")
            .map(|r| r.get(0))
    }

    pub async fn sql(&self, statement: &str) {
        let client = self.pool.get().await.expect("db");
        client.batch_execute(statement).await.expect("sql");
    }

    /// Takes the database away under the running server (its connections are cut).
    pub async fn drop_database(&self) {
        let (cluster_url, db) = self.database_url.rsplit_once('/').expect("url with a db");
        let db = db.split('?').next().expect("a database name");
        let (client, conn) =
            tokio_postgres::connect(&format!("{cluster_url}/postgres"), tokio_postgres::NoTls)
                .await
                .expect("connect");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
            .await
            .expect("drop database");
    }

    /// `croupier admin reconcile` finds nothing wrong.
    pub async fn assert_books_balance(&self) {
        let report = self.admin.reconcile().await.expect("reconcile runs");
        assert!(report.ok, "reconcile found mismatches: {report:?}");
    }
}

/// An operator API answer: `{"code", "message", "data"}`.
#[derive(Debug)]
pub struct OpReply {
    pub status: u16,
    pub body: String,
    pub json: Value,
}

impl OpReply {
    pub fn code(&self) -> i64 {
        self.json["code"].as_i64().unwrap_or(-1)
    }

    pub fn data(&self) -> &Value {
        &self.json["data"]
    }

    /// A decimal field of `data`, read exactly from the JSON text.
    pub fn amount(&self, field: &str) -> Decimal {
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            data: std::collections::HashMap<String, &'a RawValue>,
        }
        let e: Envelope = serde_json::from_str(&self.body).expect("data object");
        Decimal::from_str(e.data.get(field).expect("field present").get()).expect("plain number")
    }

    /// Asserts the code and its HTTP status (200 for 0, 202 for refusals, 500 internal).
    #[track_caller]
    pub fn expect(&self, code: i64) -> &Self {
        let status = match code {
            0 => 200,
            1 => 500,
            _ => 202,
        };
        assert_eq!(
            (self.code(), self.status),
            (code, status),
            "unexpected answer: {}",
            self.body
        );
        self
    }
}

/// Credentials to sign an operator call with.
#[derive(Debug, Clone)]
pub struct Signer {
    pub id: String,
    pub secret: String,
}

impl From<&Credentials> for Signer {
    fn from(c: &Credentials) -> Self {
        Self {
            id: c.id.clone(),
            secret: c.secret.clone(),
        }
    }
}

impl TestApp {
    /// A signed operator request (POST with a body, GET without).
    pub fn op_req(&self, signer: &Signer, path: &str, body: Option<&str>) -> Req {
        let method = if body.is_some() {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        Req::signed_by(signer, method, path.to_string(), body)
    }

    pub async fn op_send(&self, r: Req) -> OpReply {
        let reply = self.send(r).await;
        OpReply {
            status: reply.status,
            body: reply.body,
            json: reply.json,
        }
    }

    /// POST as the app's operator.
    pub async fn op_post(&self, path: &str, body: &str) -> OpReply {
        let signer = Signer::from(&self.operator);
        self.op_send(self.op_req(&signer, path, Some(body))).await
    }

    /// GET as the app's operator.
    pub async fn op_get(&self, path: &str) -> OpReply {
        let signer = Signer::from(&self.operator);
        self.op_send(self.op_req(&signer, path, None)).await
    }

    pub async fn deposit(&self, player: &str, currency: &str, amount: &str, tx: &str) -> OpReply {
        self.op_post(
            "/v1/player/wallet/deposit",
            &format!(
                r#"{{"playerExternalId":"{player}","currency":"{currency}","amount":{amount},"transactionId":"{tx}"}}"#
            ),
        )
        .await
    }

    pub async fn withdraw(&self, player: &str, currency: &str, amount: &str, tx: &str) -> OpReply {
        self.op_post(
            "/v1/player/wallet/withdraw",
            &format!(
                r#"{{"playerExternalId":"{player}","currency":"{currency}","amount":{amount},"transactionId":"{tx}"}}"#
            ),
        )
        .await
    }

    pub async fn create_player(&self, player: &str, currency: &str) -> OpReply {
        self.op_post(
            "/v1/player/create",
            &format!(r#"{{"playerExternalId":"{player}","currency":"{currency}"}}"#),
        )
        .await
    }

    /// The wallet of `player` (of the app's operator) in `currency`: balance, journal rows.
    pub async fn wallet_of(&self, player: &str, currency: &str) -> (Decimal, i64) {
        self.wallet(&Player {
            external_id: player.to_string(),
            currency: Currency::parse(currency).expect("currency"),
            session: Uuid::nil(),
        })
        .await
    }
}

/// Sends `r` to the server at `base`, signed as `r` says.
pub async fn send_to(http: &reqwest::Client, base: &str, r: Req) -> Reply {
    let sign = r.sign.clone().unwrap_or_else(|| r.sign_now());
    let mut builder = http.request(r.method.clone(), format!("{base}{}", r.path));
    for (name, value) in [
        ("X-Counterparty-Id", r.counterparty.as_str()),
        ("X-Timestamp", r.timestamp.as_str()),
        ("X-Request-Id", r.request_id.as_str()),
        ("X-Sign", sign.as_str()),
    ] {
        if !r.omit.contains(&name) {
            builder = builder.header(name, value);
        }
    }
    if let Some(body) = r.body {
        builder = builder
            .header("Content-Type", "application/json")
            .body(body);
    }
    let response = builder.send().await.expect("request sent");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Reply { status, body, json }
}

/// Sends SIGINT to a server process (as Ctrl-C would): it finishes what is in flight and
/// stops.
pub fn interrupt(child: &std::process::Child) {
    let sent = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(sent.success(), "SIGINT not delivered");
}
