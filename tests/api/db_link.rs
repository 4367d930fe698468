//! The link to PostgreSQL goes quiet for good on every open connection (a dead peer, a
//! failover behind a moved address: no bytes and no reset): every bet call is still answered
//! within the deadline, and decided again on fresh connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

use crate::helpers::*;

/// A TCP proxy to PostgreSQL that can freeze every connection open at that moment: it keeps
/// their sockets open and forwards nothing more, either way. Connections made afterwards
/// work. It keeps a copy of everything sent to PostgreSQL.
pub struct FreezingProxy {
    pub port: u16,
    freezes: watch::Sender<u64>,
    sent: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl FreezingProxy {
    /// Listens on a free local port and forwards to `target` (`host:port`). Needs a running
    /// Tokio runtime.
    pub fn start(target: String) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let listener = TcpListener::from_std(listener).unwrap();
        let (freezes, watch) = watch::channel(0u64);
        let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
        let copy = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                let born = *watch.borrow();
                let (client_in, client_out) = client.into_split();
                let (server_in, server_out) = server.into_split();
                let up = Some(copy.clone());
                tokio::spawn(forward(client_in, server_out, born, watch.clone(), up));
                tokio::spawn(forward(server_in, client_out, born, watch.clone(), None));
            }
        });
        Self {
            port,
            freezes,
            sent,
        }
    }

    /// Whether `text` has been sent to PostgreSQL (as a query parameter, say).
    pub fn has_sent(&self, text: &str) -> bool {
        let sent = self.sent.lock().unwrap();
        sent.windows(text.len()).any(|w| w == text.as_bytes())
    }

    /// Freezes every connection open now.
    pub fn freeze(&self) {
        self.freezes.send_modify(|n| *n += 1);
    }
}

async fn forward(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    born: u64,
    freezes: watch::Receiver<u64>,
    copy: Option<Arc<std::sync::Mutex<Vec<u8>>>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if *freezes.borrow() > born {
            // Frozen: both sockets stay open, and nothing more gets through.
            let _hold = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        if let Some(copy) = &copy {
            copy.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The URL's `host:port`.
pub fn host_port(url: &str) -> String {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("the test cluster listens on TCP, not {other:?}"),
    };
    format!("{host}:{}", config.get_ports()[0])
}

/// One bet call of the load: when it was sent (since the start), how long its answer took,
/// and the answer's code.
struct Call {
    player: usize,
    bet: String,
    sent: Duration,
    took: Duration,
    code: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_link_answers_99_within_the_deadline_and_recovers() {
    const CLIENTS: usize = 12;
    let mut config = croupier::startup::ServerConfig::local(batching());
    config.db_timeout = Duration::from_millis(1_000);
    config.bet_deadline = Duration::from_millis(1_500);
    // What a call may take: the deadline, and what the rest of the path adds on a loaded
    // test machine (a lookup outside the ledger waits at most the answer deadline, 2 s).
    let bound = Duration::from_millis(3_500);

    let (app, proxy) = app_through_proxy(config).await;
    let mut players = Vec::new();
    for _ in 0..CLIENTS {
        players.push(app.player("USD", "1000.00").await);
    }
    let app = Arc::new(app);
    let players = Arc::new(players);

    // Twelve providers play PayInOut (stake 1, win 0.50) for 12 s; the link freezes at 2 s.
    let start = Instant::now();
    let (freeze_at, stop_at) = (Duration::from_secs(2), Duration::from_secs(12));
    let mut clients = Vec::new();
    for player in 0..CLIENTS {
        let (app, players) = (app.clone(), players.clone());
        clients.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            for i in 0.. {
                let sent = start.elapsed();
                if sent > stop_at {
                    break;
                }
                let bet = format!("frozen-{player}-{i}");
                let reply = tokio::time::timeout(
                    Duration::from_secs(30),
                    app.pay_in_out(&players[player], &bet, "1.00", "0.50"),
                )
                .await
                .unwrap_or_else(|_| panic!("bet {bet} sent at {sent:?} was not answered in 30 s"));
                calls.push(Call {
                    player,
                    bet,
                    sent,
                    took: start.elapsed() - sent,
                    code: reply.code(),
                });
            }
            calls
        }));
    }
    tokio::time::sleep_until((start + freeze_at).into()).await;
    proxy.freeze();
    let mut calls = Vec::new();
    for client in clients {
        calls.extend(client.await.unwrap());
    }

    // Every call was answered within the bound, 1 or 99.
    for c in &calls {
        assert!(
            c.took <= bound,
            "bet {} sent at {:?} took {:?}",
            c.bet,
            c.sent,
            c.took
        );
        assert!(
            c.code == 1 || c.code == 99,
            "bet {} answered {}",
            c.bet,
            c.code
        );
    }
    let unconfirmed: Vec<&Call> = calls.iter().filter(|c| c.code == 99).collect();
    assert!(
        !unconfirmed.is_empty(),
        "the freeze caught no call in flight: the test proved nothing"
    );
    assert!(
        calls.iter().any(|c| c.code == 1 && c.sent < freeze_at),
        "calls before the freeze were confirmed"
    );
    // Decided again on fresh connections: the calls sent a little after the freeze (the
    // answer deadline, and the deadline of the calls queued behind it) are confirmed.
    let recovered = freeze_at + Duration::from_secs(6);
    let late: Vec<&Call> = calls.iter().filter(|c| c.sent > recovered).collect();
    assert!(!late.is_empty(), "the load went on after the freeze");
    for c in &late {
        assert_eq!(
            c.code, 1,
            "bet {} sent at {:?} after the recovery",
            c.bet, c.sent
        );
    }

    // Every unconfirmed call, repeated, is now decided: applied (104, it had been) or applied
    // now (1). Then every bet was applied exactly once: each player is down 0.50 a bet.
    for c in &unconfirmed {
        let again = app
            .pay_in_out(&players[c.player], &c.bet, "1.00", "0.50")
            .await;
        assert!(
            again.code() == 1 || again.code() == 104,
            "bet {} repeated: {}",
            c.bet,
            again.body
        );
    }
    for (i, p) in players.iter().enumerate() {
        let bets = calls.iter().filter(|c| c.player == i).count();
        let expected = dec("1000.00") - dec("0.50") * Decimal::from(bets);
        assert_eq!(
            app.wallet(p).await.0,
            expected,
            "player {i} after {bets} bets"
        );
    }
    app.assert_books_balance().await;
}

fn url_port(url: &str) -> u16 {
    let config: tokio_postgres::Config = url.parse().unwrap();
    config.get_ports()[0]
}

/// An app whose server reaches PostgreSQL through a `FreezingProxy`.
async fn app_through_proxy(config: croupier::startup::ServerConfig) -> (TestApp, FreezingProxy) {
    let slot = Arc::new(std::sync::Mutex::new(None));
    let app = {
        let slot = slot.clone();
        spawn_app_routed(config, move |url| {
            let proxy = FreezingProxy::start(host_port(url));
            let routed = url.replace(
                &format!(":{}/", url_port(url)),
                &format!(":{}/", proxy.port),
            );
            *slot.lock().unwrap() = Some(proxy);
            routed
        })
        .await
    };
    let proxy = slot.lock().unwrap().take().expect("the proxy started");
    (app, proxy)
}

/// A flood of made-up counterparty ids: each id is looked up once at most (an unknown id is
/// remembered), and all of them together at most a bounded number of times a second; what
/// goes beyond is answered "busy, retry" without any database work.
#[tokio::test]
async fn made_up_counterparty_ids_cost_bounded_database_work() {
    let (app, proxy) = app_through_proxy(croupier::startup::ServerConfig::local(batching())).await;
    let p = app.player("USD", "100").await;
    let send = |id: String| {
        let mut r = app.req(p.session, "pay-in", Some(r#"{"betId":"x","betAmount":1}"#));
        r.counterparty = id;
        app.send(r)
    };
    // One made-up id, many times: looked up once.
    let repeated = Uuid::new_v4().to_string();
    for _ in 0..20 {
        let reply = send(repeated.clone()).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    let sent = proxy.sent.lock().unwrap().clone();
    let looked_up = sent
        .windows(repeated.len())
        .filter(|w| *w == repeated.as_bytes())
        .count();
    assert_eq!(
        looked_up, 1,
        "the same unknown id was looked up {looked_up} times"
    );

    // 600 different ones, as fast as they come: a burst of 200 lookups, then 50 a second.
    let started = Instant::now();
    let ids: Vec<String> = (0..600).map(|_| Uuid::new_v4().to_string()).collect();
    let mut busy = 0;
    for id in &ids {
        let reply = send(id.clone()).await;
        match reply.status {
            401 => {}
            503 => busy += 1,
            other => panic!("{other}: {}", reply.body),
        }
    }
    let allowed = 200 + 50 * (started.elapsed().as_secs() as usize + 1);
    let looked_up = ids.iter().filter(|id| proxy.has_sent(id)).count();
    assert!(
        looked_up <= allowed,
        "{looked_up} of 600 made-up ids were looked up (at most {allowed})"
    );
    assert_eq!(looked_up + busy, 600, "each id looked up or answered busy");
    // The known provider still gets through.
    let r = app.req(
        p.session,
        "pay-in",
        Some(r#"{"betId":"real","betAmount":1}"#),
    );
    app.send(r).await.expect(1, 200);
}
