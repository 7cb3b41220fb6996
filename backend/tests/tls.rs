//! The origin binary over TLS, as an operator runs it against managed services: PostgreSQL with
//! `sslmode=verify-full` (as `DATABASE_URL` and as `DATABASE_READ_URL`), Redis at `rediss://`,
//! ClickHouse at `https://`. Each service sits behind
//! a local TLS endpoint whose certificate is signed by a CA generated here; the origin trusts that
//! CA only through `SSL_CERT_FILE`, the way a private CA is added in production, and refuses the
//! endpoints without it.

use rcgen::{CertificateParams, CertifiedIssuer, KeyPair};
use smo1_testkit::{self as testkit, TestDb};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

#[derive(serde::Deserialize)]
struct Count {
    #[serde(deserialize_with = "smo1_origin::clickhouse::uint64")]
    n: u64,
}

/// PostgreSQL's `SSLRequest`: length 8, then the code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];

/// A CA written to `ca.pem` in a directory of its own, and a TLS acceptor for `localhost` signed by it.
struct Pki {
    dir: tempfile::TempDir,
    acceptor: TlsAcceptor,
}

impl Pki {
    fn generate() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "smo1 test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");

        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("server params")
            .signed_by(&server_key, &ca)
            .expect("server certificate");

        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write ca.pem");

        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![server.der().clone(), ca.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .expect("server TLS config");
        Self {
            dir,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// Terminates TLS on a free port and forwards the plaintext to `target`. For PostgreSQL
/// (`postgres: true`) it first answers the client's `SSLRequest` with `S`, as the server does.
async fn tls_endpoint(acceptor: TlsAcceptor, target: SocketAddr, postgres: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if postgres {
                    let mut request = [0; 8];
                    if inbound.read_exact(&mut request).await.is_err() || request != SSL_REQUEST {
                        return;
                    }
                    if inbound.write_all(b"S").await.is_err() {
                        return;
                    }
                }
                let Ok(mut tls) = acceptor.accept(inbound).await else {
                    return;
                };
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound).await;
            });
        }
    });
    addr
}

/// The three services behind TLS endpoints, as URLs that ask for verified TLS.
struct TlsServices {
    database_url: String,
    redis_url: String,
    clickhouse_url: String,
}

impl TlsServices {
    async fn start(pki: &Pki, db: &TestDb) -> Self {
        let postgres =
            tls_endpoint(pki.acceptor.clone(), testkit::socket_addr(&db.url), true).await;
        let redis = tls_endpoint(
            pki.acceptor.clone(),
            testkit::socket_addr(&testkit::redis_url()),
            false,
        )
        .await;
        let clickhouse = tls_endpoint(
            pki.acceptor.clone(),
            testkit::socket_addr(&testkit::clickhouse_url()),
            false,
        )
        .await;
        let user = reqwest::Url::parse(&db.url).expect("database URL");
        Self {
            database_url: format!(
                "postgres://{}@localhost:{}/{}?sslmode=verify-full",
                user.username(),
                postgres.port(),
                db.name
            ),
            redis_url: format!("rediss://localhost:{}", redis.port()),
            clickhouse_url: format!("https://localhost:{}", clickhouse.port()),
        }
    }
}

/// `smo1-origin` over the TLS URLs, trusting `ca_file` (or, with `None`, the system store only).
fn origin(services: &TlsServices, db: &TestDb, ca_file: Option<&Path>, args: &[&str]) -> Command {
    let mut command = testkit::origin_process(
        env!("CARGO_BIN_EXE_smo1-origin"),
        &services.database_url,
        &services.redis_url,
        &services.clickhouse_url,
        &db.name,
    );
    // The primary doubles as the read replica: lookups take the same TLS path through the
    // replica's own pool.
    command.env("DATABASE_READ_URL", &services.database_url);
    command.args(args);
    if let Some(ca_file) = ca_file {
        command.env("SSL_CERT_FILE", ca_file);
    }
    command
}

async fn run(command: &mut Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("finishes within a minute")
        .expect("runs smo1-origin")
}

fn log_of(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The origin's `/readyz` with each dependency's state (the operator token shows them).
async fn readyz(addr: SocketAddr) -> serde_json::Value {
    testkit::operator_get(&format!("http://{addr}/readyz"))
        .await
        .json()
        .await
        .expect("readyz JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_migrates_serves_and_records_clicks_over_verified_tls() {
    let pki = Pki::generate();
    let db = TestDb::new().await;
    let services = TlsServices::start(&pki, &db).await;
    let ca = pki.ca_file();

    for args in [
        &["migrate"][..],
        &[
            "seed",
            "--slug",
            "tls",
            "--destination",
            "https://example.com/tls",
        ],
    ] {
        let output = run(&mut origin(&services, &db, Some(&ca), args)).await;
        assert!(
            output.status.success(),
            "{args:?} over TLS:\n{}",
            log_of(&output)
        );
    }

    let (mut child, addr) =
        testkit::spawn_serve(origin(&services, &db, Some(&ca), &["serve"])).await;
    let ready = readyz(addr).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    assert_eq!(
        ready["status"], "ready",
        "every dependency over TLS: {ready}"
    );

    let redirect = http
        .get(format!("http://{addr}/tls"))
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        )
        .send()
        .await
        .expect("redirect");
    assert_eq!(redirect.status(), 302);
    assert_eq!(redirect.headers()["location"], "https://example.com/tls");
    assert_eq!(
        ready["postgres_read_replica"]["status"], "up",
        "the read replica over TLS: {ready}"
    );
    let metrics = testkit::operator_get(&format!("http://{addr}/metrics"))
        .await
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("smo1_read_replica_reads_total{outcome=\"replica\"} 1\n"),
        "the redirect's lookup was read through the replica's pool:\n{metrics}"
    );

    let ch = db.clickhouse();
    testkit::eventually("the click reaches ClickHouse through TLS", || async {
        ch.query::<Count>("SELECT count() AS n FROM link_clicks_buffer")
            .await
            .is_ok_and(|rows| rows.first().map(|row| row.n) == Some(1))
    })
    .await;
    child.kill().await.expect("stops serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_refuses_endpoints_its_trust_store_does_not_vouch_for() {
    let pki = Pki::generate();
    let db = TestDb::new().await;
    let services = TlsServices::start(&pki, &db).await;

    let migrate = run(&mut origin(&services, &db, None, &["migrate"])).await;
    assert!(!migrate.status.success(), "migrate trusted an unknown CA");
    assert!(
        log_of(&migrate).contains("certificate"),
        "the error names the certificate:\n{}",
        log_of(&migrate)
    );

    let (mut child, addr) = testkit::spawn_serve(origin(&services, &db, None, &["serve"])).await;
    let ready = readyz(addr).await;
    for dependency in ["postgres", "redis", "clickhouse", "postgres_read_replica"] {
        assert_eq!(ready[dependency]["status"], "down", "{dependency}: {ready}");
    }
    child.kill().await.expect("stops serve");
}
