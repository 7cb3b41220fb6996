//! The `smo1-origin` binary's subcommands as an operator runs them: only `serve` starts the
//! background work (click pipeline, total_clicks sync, rollup, sign-in token pruning); `migrate`
//! and `seed` do their job and start nothing; `admin` prints sign-in links and invites.

use smo1_origin::app;
use smo1_testkit::{self as testkit, eventually, ProxyMode, TcpProxy, TestDb};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The binary with the environment of `db`, logging at info (to stdout).
fn origin(db: &TestDb, args: &[&str]) -> Command {
    let mut command = testkit::origin_process_for(env!("CARGO_BIN_EXE_smo1-origin"), db);
    command.args(args);
    command
}

async fn run(db: &TestDb, args: &[&str]) -> String {
    let output = origin(db, args).output().await.expect("runs smo1-origin");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{args:?} failed:\n{log}");
    log
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_and_seed_start_no_background_task_and_serve_does() {
    let db = TestDb::new().await;
    for args in [
        &["migrate"][..],
        &[
            "seed",
            "--slug",
            "cli-demo",
            "--destination",
            "https://example.com/",
        ],
    ] {
        let log = run(&db, args).await;
        assert!(
            !log.contains(app::STARTED),
            "{args:?} started background tasks:\n{log}"
        );
    }

    let mut serve = origin(&db, &["serve"]).spawn().expect("starts serve");
    let mut lines = BufReader::new(serve.stdout.take().expect("stdout")).lines();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("reads the log") {
            if line.contains(app::STARTED) {
                return true;
            }
        }
        false
    })
    .await;
    serve.kill().await.expect("stops serve");
    assert_eq!(started, Ok(true), "serve logs that it started its tasks");
}

/// `migrate` against a ClickHouse that closes connections before answering (as a cluster node
/// may while it starts): its first statement, `CREATE DATABASE IF NOT EXISTS`, is sent three
/// times, then the command fails saying why; when ClickHouse answers the second time, it succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_sends_a_create_again_when_clickhouse_closes_the_connection() {
    let db = TestDb::new().await;
    let target = testkit::clickhouse_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = TcpProxy::start(target).await;
    let migrate = || {
        let mut command = testkit::origin_process(
            env!("CARGO_BIN_EXE_smo1-origin"),
            &db.url,
            &testkit::redis_url(),
            &proxy.url(),
            &db.name,
        );
        command.arg("migrate");
        command
    };

    proxy.set_mode(ProxyMode::Close);
    let output = migrate().output().await.expect("runs smo1-origin");
    let log = String::from_utf8_lossy(&output.stdout);
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{log}");
    assert!(
        error.contains("applying ClickHouse migrations")
            && error.contains("clickhouse unreachable"),
        "{error}"
    );
    assert_eq!(proxy.accepted(), 3, "{log}");

    let child = migrate().spawn().expect("runs smo1-origin");
    eventually("migrate's first connection", || async {
        proxy.accepted() == 4
    })
    .await;
    proxy.set_mode(ProxyMode::Forward);
    let output = child.wait_with_output().await.expect("migrate ends");
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("sending it again"), "{log}");
    assert!(log.contains("migrations applied"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_print_sign_in_links_and_invite_emails() {
    let db = TestDb::new().await;
    run(&db, &["admin", "create-user", "--email", "ann@example.com"]).await;

    let output = origin(
        &db,
        &["admin", "sign-in-link", "--email", "Ann@Example.com"],
    )
    .env("PUBLIC_URL", "https://links.example.com/")
    .output()
    .await
    .expect("runs smo1-origin");
    assert!(output.status.success(), "{output:?}");
    let link = String::from_utf8(output.stdout).expect("UTF-8");
    let token = link
        .trim()
        .strip_prefix("https://links.example.com/dashboard/sign-in/confirm?token=")
        .unwrap_or_else(|| panic!("a confirm link under PUBLIC_URL on stdout: {link:?}"));
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let user =
        smo1_origin::sign_in::redeem(&pool, smo1_origin::config::Registration::Closed, token)
            .await
            .expect("the printed link signs in");
    let ann = smo1_origin::sign_in::repo::find_user_id(&pool, "ann@example.com")
        .await
        .unwrap();
    assert_eq!(Some(user), ann);

    let unknown = origin(
        &db,
        &["admin", "sign-in-link", "--email", "bob@example.com"],
    )
    .output()
    .await
    .expect("runs smo1-origin");
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("no user has email bob@example.com; create one with `admin create-user`"),
        "{unknown:?}"
    );

    let invite = ["admin", "invite", "--email", "cy@example.com"];
    assert!(run(&db, &invite).await.contains("invited cy@example.com"));
    assert!(run(&db, &invite)
        .await
        .contains("cy@example.com was already invited"));
}
