//! The monitoring that ships in `deploy/`: Prometheus accepts its config, every alert rule passes
//! its unit tests (fires on its failure, quiet otherwise), the Grafana dashboard is valid JSON
//! whose panels all query Prometheus, and every metric the rules and the dashboard name is
//! exported by a running origin's `/metrics` from its first scrape.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

/// `promtool` (Debian's `prometheus` package; `scripts/test` installs it) with `args` in
/// `deploy/prometheus`, which must succeed.
fn promtool(args: &[&str]) {
    promtool_in(&deploy("prometheus"), args);
}

fn promtool_in(dir: &Path, args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is installed (apt-get install prometheus; scripts/test does it)");
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn prometheus_accepts_the_config_and_its_rules() {
    // As deployed: the config beside its rules and the metrics token file it names.
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["prometheus.yml", "alerts.yml"] {
        std::fs::copy(deploy("prometheus").join(file), dir.path().join(file)).expect("copy");
    }
    std::fs::write(dir.path().join("metrics-token"), "token").expect("token file");
    promtool_in(dir.path(), &["check", "config", "prometheus.yml"]);
}

#[test]
fn every_alert_fires_on_its_failure_and_stays_quiet_otherwise() {
    promtool(&["test", "rules", "alerts.test.yml"]);
}

#[test]
fn grafana_dashboard_panels_query_prometheus() {
    let text = std::fs::read_to_string(deploy("grafana/smo1-origin.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
        for target in targets {
            assert_eq!(
                target["datasource"]["type"], "prometheus",
                "{}",
                panel["title"]
            );
            assert!(
                target["expr"]
                    .as_str()
                    .is_some_and(|e| e.contains("smo1_") || e.contains("up{")),
                "{}: {}",
                panel["title"],
                target["expr"]
            );
        }
    }
}

/// The `smo1_*` metric names in `text` (PromQL in rules or dashboard), histogram series
/// (`_bucket`, `_sum`, `_count`) under their histogram's name.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("smo1_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(name.to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_rules_and_dashboard_name_is_exported() {
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).expect("rules");
    let dashboard = std::fs::read_to_string(deploy("grafana/smo1-origin.json")).expect("dashboard");
    let named: std::collections::BTreeSet<String> = metric_names(&rules)
        .into_iter()
        .chain(metric_names(&dashboard))
        .collect();
    assert!(named.contains("smo1_clicks_lost_total"), "{named:?}");

    let db = smo1_testkit::TestDb::new().await;
    let prefix = smo1_testkit::redis_prefix();
    let (_state, origin) =
        smo1_testkit::start_origin(smo1_testkit::origin_config(&db, &prefix)).await;
    let http = reqwest::Client::new();
    // One request, so the per-request metrics (labelled by what happened) have a series.
    http.get(format!("{}/healthz", origin.url()))
        .send()
        .await
        .expect("healthz");
    let exported = smo1_testkit::operator_get(&format!("{}/metrics", origin.url()))
        .await
        .text()
        .await
        .expect("metrics text");
    let exported = metric_names(&exported);
    let missing: Vec<&String> = named.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "named in deploy/ but not exported: {missing:?}"
    );
}
