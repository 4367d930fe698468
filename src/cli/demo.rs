//! The demo: public demo counterparties and data in the embedded database, a demo casino
//! wallet for the seamless demo operator, and signed requests to paste. Their secrets are
//! printed in the README, so they are active only on a server nobody else can reach that
//! pays out nothing real.

use crate::db::Database;
use crate::startup::ServerConfig;

/// Whether the demo runs on this server, after making sure that demo data is active only
/// where it is safe: on the embedded database of a safe server, the demo data is loaded (on
/// first start) and the demo runs. On an unsafe one, the start is refused while any demo
/// counterparty is active.
pub(super) async fn prepare(db: &Database, config: &ServerConfig) -> anyhow::Result<bool> {
    match unsafe_because(config) {
        None if db.is_embedded() => {
            load_fixtures(db).await?;
            Ok(true)
        }
        None => Ok(false),
        Some(reason) => {
            let active = active_demo_counterparties(db).await?;
            if active.is_empty() {
                return Ok(false);
            }
            let commands: Vec<String> = active
                .iter()
                .map(|id| format!("croupier admin counterparty disable --id {id}"))
                .collect();
            anyhow::bail!(
                "the demo counterparties ({}) are active, and their secrets are public; this \
                 server {reason}. Disable them before serving: {}",
                active.join(", "),
                commands.join("; ")
            )
        }
    }
}

/// Why demo data must not be active on a server with `config`: a listener beyond loopback
/// (anyone could play or deposit as the demo counterparties), or a crypto payout rail (their
/// credit could be cashed out as real coins). None: safe.
pub fn unsafe_because(config: &ServerConfig) -> Option<String> {
    let listeners = std::iter::once(&config.listen).chain(config.approver_listen.as_ref());
    for listen in listeners {
        if !is_loopback(listen) {
            return Some(format!("listens on {listen}, beyond loopback"));
        }
    }
    let rails = config.crypto.payout_rails();
    (!rails.is_empty()).then(|| format!("pays out in crypto ({})", rails.join(", ")))
}

/// Whether `host:port` is a loopback address (`127.0.0.0/8`, `[::1]`, `localhost`).
fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The demo counterparties (of `fixtures/`) that are active in the database.
async fn active_demo_counterparties(db: &Database) -> anyhow::Result<Vec<String>> {
    let client = db.connect().await?;
    let ids = [DEMO_PROVIDER, DEMO_OPERATOR, DEMO_SEAMLESS_OPERATOR];
    Ok(client
        .query(
            "SELECT id FROM counterparties WHERE id = ANY($1) AND status = 'active' ORDER BY id",
            &[&&ids[..]],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// Loads `fixtures/demo.sql` into an empty embedded database.
async fn load_fixtures(db: &Database) -> anyhow::Result<()> {
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
pub(super) async fn start_casino(
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
pub(super) fn print_requests(listen: &str, casino_port: u16) {
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
