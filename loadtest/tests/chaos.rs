//! The parts of `loadtest chaos` that decide a verdict: the proxy breaks a link the way it
//! says, and the books check catches a balance or a bet that differs from the players' model.
//! (The whole command, with the server binary killed and PostgreSQL crashed, runs in CI.)
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use croupier::db::testing::TestCluster;
use croupier::ledger::BatchSettings;
use croupier::startup::{Application, Pools, ServerConfig};
use loadtest::chaos::play::{BetState, Book, PlayConfig, Provider, Shared};
use loadtest::chaos::proxy::Proxy;
use rust_decimal::Decimal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();

#[ctor::dtor]
fn stop_cluster() {
    if let Some(c) = CLUSTER.get() {
        c.stop();
    }
}

/// A TCP server that sends back what it reads, prefixed with `tag`.
async fn echo(tag: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(tag.as_bytes()).await.is_err() {
                        return;
                    }
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Sends `text` and waits up to `wait` for an answer: Ok(Some) the answer, Ok(None) nothing
/// came, Err the connection failed (or closed).
async fn ask(s: &mut TcpStream, text: &str, wait: Duration) -> Result<Option<String>, String> {
    s.write_all(text.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    read(s, wait).await
}

async fn read(s: &mut TcpStream, wait: Duration) -> Result<Option<String>, String> {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(wait, s.read(&mut buf)).await {
        Err(_) => Ok(None),
        Ok(Ok(0)) => Err("closed".into()),
        Ok(Ok(n)) => Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned())),
        Ok(Err(e)) => Err(e.kind().to_string()),
    }
}

const QUIET: Duration = Duration::from_millis(300);
const ANSWER: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_frozen_link_holds_its_open_connections_and_lets_new_ones_through() {
    let proxy = Proxy::start(echo("a:").await).await.unwrap();
    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(ask(&mut old, "1", ANSWER).await, Ok(Some("a:1".into())));

    proxy.freeze();
    assert_eq!(
        ask(&mut old, "2", QUIET).await,
        Ok(None),
        "a frozen connection moves nothing"
    );
    let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(ask(&mut new, "3", ANSWER).await, Ok(Some("a:3".into())));

    proxy.thaw();
    assert_eq!(
        read(&mut old, ANSWER).await,
        Ok(Some("a:2".into())),
        "held, then delivered"
    );
}

#[tokio::test]
async fn a_blackhole_drops_everything_then_resets_the_torn_connections() {
    let proxy = Proxy::start(echo("a:").await).await.unwrap();
    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(ask(&mut old, "1", ANSWER).await, Ok(Some("a:1".into())));

    proxy.blackhole(true);
    assert_eq!(ask(&mut old, "2", QUIET).await, Ok(None));
    let mut born_in_it = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(ask(&mut born_in_it, "3", QUIET).await, Ok(None));
    assert!(proxy.counts().bytes_dropped.load(Ordering::Relaxed) >= 2);

    proxy.blackhole(false);
    for s in [&mut old, &mut born_in_it] {
        assert_eq!(read(s, ANSWER).await, Err("connection reset".into()));
    }
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(ask(&mut after, "4", ANSWER).await, Ok(Some("a:4".into())));
}

#[tokio::test]
async fn a_reset_closes_the_open_connections_and_a_moved_upstream_is_followed() {
    let proxy = Proxy::start(echo("a:").await).await.unwrap();
    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(ask(&mut old, "1", ANSWER).await, Ok(Some("a:1".into())));

    proxy.reset();
    assert_eq!(read(&mut old, ANSWER).await, Err("connection reset".into()));

    proxy.set_upstream(echo("b:").await);
    let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(ask(&mut new, "2", ANSWER).await, Ok(Some("b:2".into())));
}

async fn server() -> (SocketAddr, String) {
    let cluster = CLUSTER.get_or_init(|| TestCluster::start("loadtest-chaos").unwrap());
    let url = cluster.fresh_database().await.unwrap();
    let pool = croupier::db::pool(&url, 8, croupier::db::Limits::unlimited()).unwrap();
    let config = ServerConfig::local(Some(BatchSettings::default()));
    let pools = Pools::beside(pool, &url, &config).unwrap();
    let app = Application::build(&config, pools).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", app.port()).parse().unwrap();
    tokio::spawn(app.run_until_stopped());
    (addr, url)
}

/// Providers play for a moment; their model matches the books. Then the books are changed
/// behind the model's back, and the check says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_books_check_finds_what_differs_from_the_model() {
    let (addr, url) = server().await;
    let fixture = loadtest::seed(&url, 12, "1000").await.unwrap();
    let sessions = Arc::new(fixture.sessions);
    let shared = Arc::new(Shared::default());
    let config = PlayConfig {
        addr,
        signer: fixture.provider.clone(),
        sessions: sessions.clone(),
        providers: 4,
        funds: Decimal::from(1000),
        seed: 1,
        attempt_timeout: Duration::from_secs(10),
        answer_bound: Duration::from_secs(10),
        start: tokio::time::Instant::now(),
        drain: Duration::from_secs(10),
    };
    let providers: Vec<_> = (0..4)
        .map(|n| tokio::spawn(Provider::new(config.clone(), shared.clone(), n).play()))
        .collect();
    // Until 100 calls are decided (a few seconds at most on a busy machine).
    for _ in 0..600 {
        if shared.decided.load(Ordering::Relaxed) >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    let mut book = Book::default();
    for p in providers {
        let (b, tally) = p.await.unwrap();
        assert_eq!(tally.unexpected + tally.balance_off, 0, "{tally:?}");
        book.absorb(b);
    }
    let id = fixture.provider.id.clone();
    let check = |book: Book| {
        let (url, id, sessions) = (url.clone(), id.clone(), sessions.clone());
        async move {
            loadtest::chaos::check::verify(&url, &id, &sessions, &book)
                .await
                .unwrap()
        }
    };
    let clean = check(book.clone()).await;
    assert!(
        clean.bets_checked > 50 && clean.acknowledged_calls > 50,
        "{clean:?}"
    );
    assert_eq!(clean.balances_checked, 12);
    assert_eq!(clean.mismatches(), 0, "{clean:?}");

    // A bet the model holds acknowledged that the server never saw.
    let mut wrong = book.clone();
    wrong.bets.insert(
        "never-sent".into(),
        BetState::Open {
            stake: Decimal::ONE,
        },
    );
    wrong.acknowledged.push("never-sent".into());
    let found = check(wrong).await;
    assert_eq!(
        (found.bet_mismatches, found.missing_from_journal),
        (1, 1),
        "{found:?}"
    );

    // A balance changed behind the ledger's back: off the model, and off its journal.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute(
            "UPDATE wallets SET balance = balance + 1
              WHERE id = (SELECT wallet_id FROM sessions WHERE id = $1::text::uuid)",
            &[&sessions[3]],
        )
        .await
        .unwrap();
    let found = check(book).await;
    assert_eq!(found.balance_mismatches, 1, "{found:?}");
    assert!(!found.reconcile_ok, "{found:?}");
}
