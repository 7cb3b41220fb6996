//! The commands and files of `docs/DEPLOY.md` that can run on one machine: the systemd unit
//! (verified, and its sandboxing scored), the container health check (`smo1-origin health`),
//! and backup and restore of PostgreSQL (`pg_dump` / `pg_restore`) and of ClickHouse's clicks
//! (Native format over HTTP with `curl`), each exactly as the guide writes it.

use smo1_testkit::{self as testkit, TestDb};
use std::path::Path;
use std::process::Command;

const ORIGIN: &str = env!("CARGO_BIN_EXE_smo1-origin");

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Runs `script` with `sh -c` (the guide's shell line) in `dir` with `env`, which must succeed.
fn sh(dir: &Path, env: &[(&str, &str)], script: &str) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .expect("runs sh");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{script}\n{log}");
    log
}

#[test]
fn systemd_unit_is_valid_and_sandboxed() {
    let unit = std::fs::read_to_string(repo("deploy/systemd/smo1-origin.service")).expect("unit");
    assert!(unit.contains("ExecStart=/opt/smo1/bin/smo1-origin serve"));
    // `verify` checks that ExecStart exists: point it at this build's binary.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("smo1-origin.service"),
        unit.replace("/opt/smo1/bin/smo1-origin", ORIGIN),
    )
    .expect("write unit");
    sh(
        dir.path(),
        &[],
        "systemd-analyze verify ./smo1-origin.service",
    );
    // Exposure 0 (locked down) to 10 (unprotected); the guide promises "OK", at most 2.0.
    sh(
        dir.path(),
        &[],
        "systemd-analyze security --offline=true --threshold=20 ./smo1-origin.service",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_command_answers_for_a_running_origin_and_fails_without_one() {
    let db = TestDb::new().await;
    let mut command = testkit::origin_process_for(ORIGIN, &db);
    command.arg("serve");
    let (mut serve, addr) = testkit::spawn_serve(command).await;
    let health = |bind: String| {
        Command::new(ORIGIN)
            .arg("health")
            .env_clear()
            .env("ORIGIN_BIND", bind)
            .output()
            .expect("runs health")
    };
    assert!(health(addr.to_string()).status.success());
    assert!(health(format!("0.0.0.0:{}", addr.port())).status.success());
    serve.kill().await.expect("stops serve");
    serve.wait().await.expect("stopped");
    let down = health(addr.to_string());
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("no answer from"));
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_backup_restores_into_an_empty_database() {
    let source = TestDb::new().await;
    let env = |db: &TestDb| testkit::origin_process_for(ORIGIN, db);
    let seeded = env(&source)
        .args([
            "seed",
            "--slug",
            "backed-up",
            "--destination",
            "https://example.com/b",
        ])
        .output()
        .await
        .expect("seed");
    assert!(seeded.status.success(), "{seeded:?}");
    let target = TestDb::new().await;
    let dir = tempfile::tempdir().expect("temp dir");

    sh(
        dir.path(),
        &[("DATABASE_URL", &source.url)],
        r#"pg_dump --format=custom --file=smo1.dump "$DATABASE_URL""#,
    );
    sh(
        dir.path(),
        &[("DATABASE_URL", &target.url)],
        r#"pg_restore --clean --if-exists --no-owner --dbname="$DATABASE_URL" smo1.dump"#,
    );

    let pool = sqlx::PgPool::connect(&target.url).await.expect("connect");
    let restored: Option<String> =
        sqlx::query_scalar("SELECT destination FROM links WHERE custom_slug = 'backed-up'")
            .fetch_optional(&pool)
            .await
            .expect("query");
    assert_eq!(restored.as_deref(), Some("https://example.com/b"));
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_clicks_export_and_import_in_native_format() {
    let source = TestDb::new().await;
    let target = TestDb::new().await;
    let ch = source.clickhouse();
    ch.execute(
        "INSERT INTO link_clicks (click_id, clicked_at, link_id, user_id, slug) \
         SELECT toString(number), now(), 'link', 'user', 'backed-up' FROM system.numbers LIMIT 1000",
    )
    .await
    .expect("insert clicks");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = testkit::clickhouse_url();

    sh(
        dir.path(),
        &[
            ("CLICKHOUSE_URL", &url),
            ("CLICKHOUSE_DATABASE", &source.name),
        ],
        r#"curl -sSf "$CLICKHOUSE_URL/?database=$CLICKHOUSE_DATABASE" --data-binary 'SELECT * FROM link_clicks FORMAT Native' > link_clicks.native"#,
    );
    sh(
        dir.path(),
        &[
            ("CLICKHOUSE_URL", &url),
            ("CLICKHOUSE_DATABASE", &target.name),
        ],
        r#"curl -sSf "$CLICKHOUSE_URL/?database=$CLICKHOUSE_DATABASE&query=INSERT%20INTO%20link_clicks%20FORMAT%20Native" --data-binary @link_clicks.native"#,
    );

    let count = |db: &TestDb| {
        let ch = db.clickhouse();
        async move {
            let rows: Vec<serde_json::Value> = ch
                .query("SELECT toString(count()) AS n, toString(uniqExact(click_id)) AS d FROM link_clicks")
                .await
                .expect("count");
            (rows[0]["n"].clone(), rows[0]["d"].clone())
        }
    };
    assert_eq!(count(&target).await, count(&source).await);
    assert_eq!(count(&target).await.0, "1000");
}

/// `wrangler deploy --dry-run` over `wrangler.toml` for `env` (None: the top level), bundling the
/// worker already in `build/` (the config's `[build]` step is left out, so concurrent tests never
/// see `build/` rewritten); returns the names of the vars it would bind.
fn wrangler_dry_run(env: Option<&str>) -> std::collections::BTreeSet<String> {
    let config = std::fs::read_to_string(repo("wrangler.toml")).expect("wrangler.toml");
    let (before, after) = config.split_once("[build]\n").expect("a [build] section");
    let after = after.split_once("\n\n").map_or("", |(_, rest)| rest);
    let main = repo("build/index.js");
    assert!(main.exists(), "build the worker first (scripts/test does)");
    let config = format!("{before}{after}").replace(
        "main = \"build/index.js\"",
        &format!("main = {:?}", main.display().to_string()),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("wrangler.toml"), config).expect("write config");
    // The wrangler that `npm ci` installed (the guide's `npx wrangler` finds the same one).
    let wrangler = repo("node_modules/.bin/wrangler");
    let mut script = format!(
        "{} deploy --dry-run --config wrangler.toml --outdir out",
        wrangler.display()
    );
    if let Some(env) = env {
        script.push_str(&format!(" --env {env}"));
    }
    let log = sh(dir.path(), &[("WRANGLER_SEND_METRICS", "false")], &script);
    assert!(dir.path().join("out/index.js").exists(), "bundled:\n{log}");
    log.lines()
        .filter_map(|line| line.trim().strip_prefix("env."))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn wrangler_production_environment_bundles_and_sets_every_var() {
    let local = wrangler_dry_run(None);
    let production = wrangler_dry_run(Some("production"));
    assert!(local.contains("ORIGIN_URL"), "{local:?}");
    assert_eq!(
        production, local,
        "[env.production.vars] must set every var of [vars] (wrangler does not inherit them)"
    );
}
