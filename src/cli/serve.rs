//! `croupier serve`: the HTTP server on its database, until Ctrl-C or SIGTERM.

use crate::config::{DatabaseSettings, ServerSettings};
use crate::db::Database;
use crate::startup::{Application, Pools, ServerConfig};

/// Runs the server. Whatever fails once the database is open (a listener that cannot bind,
/// the demo data, the server itself), the embedded cluster is stopped before the error is
/// returned: a server that could not start must not leave a PostgreSQL running.
pub async fn serve(database: &DatabaseSettings, settings: &ServerSettings) -> anyhow::Result<()> {
    // Settings first: a bad one is refused before any cluster starts.
    let config = settings.server(&database.data_dir)?;
    let db = Database::open(database, settings.db_pool_size).await?;
    let served = serve_on(&db, &config, settings).await;
    // A server that ran owns the cluster it ran on (even one a crashed run left); one that
    // could not start stops only a cluster it started itself, never a running server's.
    let closed = db.close(served.is_ok()).await;
    if let (Err(_), Err(e)) = (&served, &closed) {
        tracing::error!(error = %format!("{e:#}"), "cannot close the database");
    }
    served.and(closed)
}

/// Serves on an open database until a shutdown signal, then drains requests in flight.
async fn serve_on(
    db: &Database,
    config: &ServerConfig,
    settings: &ServerSettings,
) -> anyhow::Result<()> {
    if db.is_embedded() {
        load_demo_fixtures(db).await?;
    }
    // The crypto and seamless work have connections of their own: a slow provider or casino
    // never starves the bets.
    let pools = Pools::beside(db.pool.clone(), db.url(), config)?;
    let app = Application::build(config, pools.clone())?;
    // The signing keys are ready (made on an installation's first start) before any call.
    app.seamless().keys.reload().await?;
    let watcher = app.watch_changes(db.url().to_string());
    let jobs = app.start_jobs();
    // The demo's casino wallet, for the seamless demo operator.
    let casino = if db.is_embedded() {
        Some(start_demo_casino(db, config, app.port()).await?)
    } else {
        None
    };
    let handle = app.handle();
    let listen = config
        .listen
        .rsplit_once(':')
        .map(|(host, _)| format!("{host}:{}", app.port()))
        .unwrap_or_else(|| config.listen.clone());
    tracing::info!(
        listen = %listen,
        workers = settings.workers,
        pool = settings.db_pool_size,
        batching = ?config.batching,
        approver = ?app.approver_port(),
        "croupier is serving"
    );
    if let Some(casino) = &casino {
        print_demo_request(&listen, casino.port);
    }
    let server = tokio::spawn(app.run_until_stopped());
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    handle.stop(true).await;
    let stopped = server.await;
    watcher.abort();
    for job in jobs {
        job.abort();
    }
    if let Some(casino) = casino {
        casino.stop().await;
    }
    pools.close_jobs();
    stopped??;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// Loads `fixtures/demo.sql` into an empty embedded database.
async fn load_demo_fixtures(db: &Database) -> anyhow::Result<()> {
    let client = db.connect().await?;
    let empty = client
        .query_one("SELECT NOT EXISTS (SELECT 1 FROM counterparties)", &[])
        .await?
        .try_get::<_, bool>(0)?;
    if empty {
        client
            .batch_execute(include_str!("../../fixtures/demo.sql"))
            .await?;
        tracing::info!("loaded the demo data (fixtures/demo.sql)");
    }
    Ok(())
}

const DEMO_PROVIDER: &str = "933a215f-a9e6-4f88-9d91-52a87cd50499";
const DEMO_SECRET: &str = "demo-provider-secret";
const DEMO_SESSION: &str = "01900000-0000-7000-8000-0000000000a1";
const DEMO_OPERATOR: &str = "5c2f4b1e-8d3a-4c6f-9e7b-1a2b3c4d5e6f";
const DEMO_OPERATOR_SECRET: &str = "demo-operator-secret";
const DEMO_SEAMLESS_OPERATOR: &str = "8e4d2c1b-6f5a-4b3c-9d8e-7f6a5b4c3d2e";
const DEMO_SEAMLESS_SECRET: &str = "demo-seamless-secret";
const DEMO_SEAMLESS_SESSION: &str = "01900000-0000-7000-8000-0000000000a3";

/// Starts the demo casino wallet on a free local port, with carol's USD 1000, and points the
/// demo seamless operator at it (loading the seamless demo data on first need).
async fn start_demo_casino(
    db: &Database,
    config: &ServerConfig,
    port: u16,
) -> anyhow::Result<crate::demo_casino::Casino> {
    let host = config
        .listen
        .rsplit_once(':')
        .map_or("127.0.0.1", |(host, _)| host);
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    let casino = crate::demo_casino::Casino::start(crate::demo_casino::CasinoConfig {
        listen: "127.0.0.1:0".into(),
        jwks_url: format!("http://{host}:{port}/mis-api/api/v2/auth/jwks"),
        issuer: Some(config.seamless.signing.issuer.clone()),
        auto_players: None,
        currency: "USD".into(),
        accept: Some(crate::demo_casino::AcceptTarget {
            croupier_url: format!("http://{host}:{port}"),
            client_id: DEMO_SEAMLESS_OPERATOR.into(),
            secret: DEMO_SEAMLESS_SECRET.into(),
        }),
        workers: 1,
    })?;
    casino.set_player("carol", rust_decimal::Decimal::from(1000), "USD");
    let client = db.connect().await?;
    let missing = client
        .query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM counterparties WHERE id = $1)",
            &[&DEMO_SEAMLESS_OPERATOR],
        )
        .await?
        .try_get::<_, bool>(0)?;
    if missing {
        client
            .batch_execute(include_str!("../../fixtures/demo_seamless.sql"))
            .await?;
        tracing::info!("loaded the seamless demo data (fixtures/demo_seamless.sql)");
    }
    client
        .execute(
            "UPDATE seamless_operators SET wallet_url = $2, updated_at = now()
              WHERE operator_id = $1",
            &[&DEMO_SEAMLESS_OPERATOR, &casino.url()],
        )
        .await?;
    Ok(casino)
}

/// Prints a signed PayIn ready to paste (it signs at paste time, so it never expires), and
/// one on the seamless demo session.
fn print_demo_request(listen: &str, casino_port: u16) {
    println!(
        r#"
Demo operator {DEMO_OPERATOR} (secret {DEMO_OPERATOR_SECRET}), players alice (USD 1000), bob (EUR 500).
Demo provider {DEMO_PROVIDER}, session {DEMO_SESSION} (player alice, USD).
A signed PayIn of 1.50, ready to paste (needs curl and openssl):

CP={DEMO_PROVIDER}; SECRET={DEMO_SECRET}; SESSION={DEMO_SESSION}
TS=$(date +%s%3N); RID=$(openssl rand -hex 16); BODY="{{\"betId\":\"demo-$RID\",\"betAmount\":1.50}}"
SIGN=$(printf '%s' "$BODY.$CP.$TS.$RID" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
curl -s -X POST "http://{listen}/v1/sessions/$SESSION/bets/pay-in" -H "Content-Type: application/json" \
  -H "X-Counterparty-Id: $CP" -H "X-Timestamp: $TS" -H "X-Request-Id: $RID" -H "X-Sign: $SIGN" -d "$BODY"; echo

Seamless demo: operator {DEMO_SEAMLESS_OPERATOR} (secret {DEMO_SEAMLESS_SECRET}) keeps its
players' money in the demo casino wallet at http://127.0.0.1:{casino_port} (carol, USD 1000; its
ledger: curl http://127.0.0.1:{casino_port}/ledger). The same PayIn on carol's session goes to
that wallet as a signed payments/make:

CP={DEMO_PROVIDER}; SECRET={DEMO_SECRET}; SESSION={DEMO_SEAMLESS_SESSION}
TS=$(date +%s%3N); RID=$(openssl rand -hex 16); BODY="{{\"betId\":\"demo-$RID\",\"betAmount\":1.50}}"
SIGN=$(printf '%s' "$BODY.$CP.$TS.$RID" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
curl -s -X POST "http://{listen}/v1/sessions/$SESSION/bets/pay-in" -H "Content-Type: application/json" \
  -H "X-Counterparty-Id: $CP" -H "X-Timestamp: $TS" -H "X-Request-Id: $RID" -H "X-Sign: $SIGN" -d "$BODY"; echo
"#
    );
}
