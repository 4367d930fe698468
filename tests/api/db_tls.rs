//! TLS on the link to PostgreSQL. A cluster of the test's own presents a certificate for
//! `localhost` signed by a private CA made here, and accepts TLS connections only: a
//! connection that works at all went over TLS, and `pg_stat_ssl` says so as well.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use croupier::db::embedded::ServerTls;
use croupier::db::link;
use croupier::db::testing::TestCluster;
use croupier::db::Limits;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::db_link::{host_port, FreezingProxy};
use crate::helpers::*;

/// The TLS-only cluster, the private CA that signed its certificate, and a CA that did not.
struct TlsCluster {
    cluster: TestCluster,
    ca: PathBuf,
    other_ca: PathBuf,
}

static TLS_CLUSTER: OnceLock<TlsCluster> = OnceLock::new();

fn tls_cluster() -> &'static TlsCluster {
    TLS_CLUSTER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("croupier-tls-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca_pem, ca) = certificate_authority("croupier test CA");
        let server_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server_cert = params.signed_by(&server_key, &ca).unwrap();
        let (ca_file, other_ca_file) = (dir.join("ca.pem"), dir.join("other-ca.pem"));
        std::fs::write(&ca_file, ca_pem).unwrap();
        std::fs::write(&other_ca_file, certificate_authority("another CA").0).unwrap();
        let tls = ServerTls {
            cert_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
        };
        TlsCluster {
            cluster: TestCluster::start_with_tls("croupier-tls-test", Some(tls))
                .expect("the TLS test cluster starts"),
            ca: ca_file,
            other_ca: other_ca_file,
        }
    })
}

/// A self-signed CA certificate (PEM) and the issuer that signs with its key.
fn certificate_authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(params, key))
}

#[ctor::dtor]
fn stop_tls_cluster() {
    if let Some(c) = TLS_CLUSTER.get() {
        c.cluster.stop();
        if let Some(dir) = c.ca.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh database on the TLS cluster; its URL ends in `?sslmode=require`.
async fn tls_database() -> String {
    let url = tls_cluster()
        .cluster
        .fresh_database()
        .await
        .expect("a fresh database on the TLS cluster");
    assert!(
        url.ends_with("?sslmode=require"),
        "the TLS cluster's URL asks for TLS"
    );
    url
}

/// `url` with `params` in place of `sslmode=require`, and `host` in place of 127.0.0.1.
fn variant(url: &str, host: &str, params: &str) -> String {
    url.replace("@127.0.0.1:", &format!("@{host}:"))
        .replace("?sslmode=require", &format!("?{params}"))
}

fn password(url: &str) -> String {
    let config = croupier::db::tls::parse(url).unwrap().config;
    String::from_utf8(config.get_password().unwrap().to_vec()).unwrap()
}

/// Whether the connection of `client` uses TLS, by the server's own account.
async fn server_says_tls(client: &tokio_postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Connects to `url` (one connection, then through a pool); panics unless both use TLS.
async fn connects_over_tls(url: &str) {
    let (client, connection) = link::connect(url, Limits::unlimited())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    tokio::spawn(connection);
    assert!(server_says_tls(&client).await);
    let pool = croupier::db::pool(url, 1, Limits::server(Duration::from_secs(2))).unwrap();
    let pooled = pool.get().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(server_says_tls(&pooled).await);
}

/// The error of connecting to `url`, one connection and through a pool: the same refusal,
/// mentioning `expected`, and never the password.
async fn refusal(url: &str, expected: &str) -> String {
    let error = match link::connect(url, Limits::unlimited()).await {
        Ok(_) => panic!("connected, but {expected} was expected"),
        Err(e) => format!("{e:#}"),
    };
    let pool = croupier::db::pool(url, 1, Limits::server(Duration::from_secs(2))).unwrap();
    let pooled = match pool.get().await {
        Ok(_) => panic!("the pool connected, but {expected} was expected"),
        Err(e) => chain(&e),
    };
    let secret = password(url);
    for e in [&error, &pooled] {
        assert!(e.contains(expected), "{expected:?} not in: {e}");
        assert!(!e.contains(&secret), "the password is in: {e}");
    }
    error
}

/// An error and its causes, as a log line shows them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(&format!(": {e}"));
        cause = e.source();
    }
    text
}

#[tokio::test]
async fn a_server_on_sslmode_require_takes_bets_over_tls() {
    let url = tls_database().await;
    let app = spawn_app_on(
        croupier::startup::ServerConfig::local(batching()),
        url,
        str::to_string,
    )
    .await;
    let p = app.player("USD", "100.00").await;
    let reply = app.pay_in(&p, "tls-1", "2.50").await;
    reply.expect(1, 200);
    assert_eq!(reply.balance(), Some(dec("97.50")));
    assert_eq!(
        app.wallet(&p).await,
        (dec("97.50"), 2),
        "the credit and the stake"
    );
    app.assert_books_balance().await;

    // Every connection to the database (the bet pools, the change listener, the test's
    // own) is encrypted, by the server's account.
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl AND s.version LIKE 'TLSv1._')
               FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE a.datname = current_database() AND a.backend_type = 'client backend'",
            &[],
        )
        .await
        .unwrap();
    let (all, tls): (i64, i64) = (row.get(0), row.get(1));
    assert!(
        all >= 2,
        "the server and the listener are connected ({all})"
    );
    assert_eq!(tls, all, "every connection uses TLS 1.2 or 1.3");
}

#[tokio::test]
async fn verify_full_connects_with_the_private_ca_and_the_host_it_names() {
    let url = tls_database().await;
    let ca = tls_cluster().ca.display().to_string();
    connects_over_tls(&variant(
        &url,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    // verify-ca checks the chain, not the name: 127.0.0.1 is not in the certificate.
    connects_over_tls(&variant(
        &url,
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .await;
    // No sslmode: libpq's `prefer`, which takes the TLS the server offers.
    connects_over_tls(&variant(&url, "127.0.0.1", "application_name=prefer")).await;
}

#[tokio::test]
async fn verify_full_refuses_an_unknown_ca_or_a_host_the_certificate_does_not_name() {
    let url = tls_database().await;
    let (ca, other) = (tls_cluster().ca.display(), tls_cluster().other_ca.display());
    // Without sslrootcert, the public CAs: none of them signed the certificate.
    refusal(
        &variant(&url, "localhost", "sslmode=verify-full"),
        "invalid peer certificate: UnknownIssuer",
    )
    .await;
    refusal(
        &variant(
            &url,
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={other}"),
        ),
        "invalid peer certificate: UnknownIssuer",
    )
    .await;
    let e = refusal(
        &variant(
            &url,
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        "certificate not valid for name \"127.0.0.1\"",
    )
    .await;
    assert!(e.contains("sslmode=verify-full"), "{e}");
    // As in libpq, `require` with a root file checks the chain too.
    refusal(
        &variant(
            &url,
            "localhost",
            &format!("sslmode=require&sslrootcert={other}"),
        ),
        "invalid peer certificate: UnknownIssuer",
    )
    .await;
}

#[tokio::test]
async fn a_plain_connection_is_refused_by_a_cluster_that_wants_tls() {
    let url = tls_database().await;
    let e = refusal(
        &variant(&url, "127.0.0.1", "sslmode=disable"),
        "no encryption",
    )
    .await;
    assert!(e.contains("pg_hba.conf"), "{e}");
    // The same URL with TLS connects: the refusal was the missing TLS.
    connects_over_tls(&variant(&url, "127.0.0.1", "sslmode=require")).await;
}

/// The answer deadline still closes a connection whose link goes quiet under TLS, and
/// what crosses the link is unreadable.
#[tokio::test]
async fn the_answer_deadline_holds_over_tls() {
    let url = tls_database().await;
    let proxy = FreezingProxy::start(host_port(&url));
    let port = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_once('/'))
        .unwrap()
        .0
        .to_string();
    let routed = url.replace(&format!(":{port}/"), &format!(":{}/", proxy.port));
    let limits = Limits::server(Duration::from_millis(500));
    let pool = croupier::db::pool(&routed, 1, limits).unwrap();
    let client = pool.get().await.unwrap();
    let canary: String = client
        .query_one("SELECT 'tls-canary-' || 'answer'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(canary, "tls-canary-answer");
    assert!(
        !proxy.has_sent("tls-canary-"),
        "the query crossed the link in clear"
    );

    proxy.freeze();
    let started = Instant::now();
    let frozen = tokio::time::timeout(Duration::from_secs(10), client.query_one("SELECT 1", &[]))
        .await
        .expect("the answer deadline fired");
    let took = started.elapsed();
    assert!(frozen.is_err(), "a frozen link answered");
    assert!(
        took >= Duration::from_millis(1_400) && took < Duration::from_secs(4),
        "the answer deadline (1.5 s) fired after {took:?}"
    );
    drop(client);
    // The next call goes to a fresh connection, over TLS again.
    let fresh = pool.get().await.unwrap();
    assert!(server_says_tls(&fresh).await);
}
