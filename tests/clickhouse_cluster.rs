//! The ClickHouse cluster variant (docs/RELIABILITY.md, "ClickHouse cluster"): a real local
//! cluster of 2 shards × 2 replicas with ZooKeeper, migrated `ON CLUSTER`, takes clicks through
//! the edge (the built worker in workerd) and the origin, and every analytics dashboard it
//! answers, per link and per account, before and after the rollups, equals the answer of a
//! single server holding the same clicks. One replica of each shard is then killed: answers
//! and inserts keep working; once they are back, both replicas of each shard hold the same
//! rows, and no click is lost.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use smo1_core::click::ClickEvent;
use smo1_origin::analytics::rollup;
use smo1_origin::clickhouse::{migrate, ClickHouse};
use smo1_testkit::cluster::{ClickHouseCluster, REPLICAS, SHARDS};
use smo1_testkit::{self as testkit, RunningServer, TestDb};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::{WorkerTargets, Workerd};

/// Nodes killed while answers and inserts must keep working: the second replica of shard 1
/// and the first of shard 2 (index order: s1r1, s1r2, s2r1, s2r2). Node 0 is the one the origin
/// and the edge talk to.
const KILLED: [usize; 2] = [1, 2];

/// Every table of the cluster layout whose replicas must converge.
const REPLICATED: [&str; 9] = [
    "schema_migrations",
    "link_clicks",
    "link_clicks_daily",
    "link_clicks_arrivals",
    "link_clicks_rollups",
    "link_clicks_rollup_hours",
    "link_clicks_rollup_values",
    "link_clicks_recent",
    "link_clicks_recent_v2",
];

const AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
];
const COUNTRIES: [&str; 3] = ["DE", "US", "FR"];

struct Owner {
    id: uuid::Uuid,
    key: String,
    /// (link id, slug)
    links: Vec<(String, String)>,
}

struct Suite {
    db: TestDb,
    cluster: ClickHouseCluster,
    cluster_ch: ClickHouse,
    origin: RunningServer,
    workerd: Workerd,
    _bridge: RunningServer,
    http: reqwest::Client,
    owners: Vec<Owner>,
    /// Clicks sent so far, each a distinct click.
    sent: u64,
    round: u64,
}

/// Origin settings of both the cluster's origin and the single server's.
fn origin_config(db: &TestDb) -> smo1_origin::config::OriginConfig {
    let mut config = testkit::origin_config(db, &testkit::redis_prefix());
    config.rate_limits.free_per_minute = 100_000;
    config
}

impl Suite {
    async fn start() -> Self {
        let db = TestDb::new().await;
        let cluster = ClickHouseCluster::start().await;
        let cluster_ch = ClickHouse::new(cluster.config(0, &db.name));
        let started = Instant::now();
        let applied = migrate::run(&cluster_ch).await.expect("migrate ON CLUSTER");
        assert_eq!(applied.len(), migrate::MIGRATIONS.len());
        eprintln!(
            "cluster: migrations applied ON CLUSTER in {:?}",
            started.elapsed()
        );
        assert!(
            migrate::run(&cluster_ch).await.unwrap().is_empty(),
            "the bookkeeping table records every migration on the cluster"
        );
        for (index, (shard, replica)) in cluster.nodes().into_iter().enumerate() {
            let engines = cluster
                .query(
                    index,
                    &format!(
                        "SELECT name, engine FROM system.tables WHERE database = '{}' \
                         AND name IN ('link_clicks', 'link_clicks_local', 'link_clicks_buffer') \
                         ORDER BY name",
                        db.name
                    ),
                )
                .await
                .unwrap();
            assert_eq!(
                engines,
                "link_clicks\tDistributed\nlink_clicks_buffer\tBuffer\n\
                 link_clicks_local\tReplicatedReplacingMergeTree",
                "shard {shard} replica {replica}"
            );
        }

        let mut config = origin_config(&db);
        config.data.clickhouse = cluster.config(0, &db.name);
        let (state, origin) = testkit::start_origin(config).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // One account on each shard (rows are sharded by cityHash64(user_id) modulo 2).
        let mut owners: Vec<Owner> = Vec::new();
        let mut shards_taken = BTreeSet::new();
        for n in 0.. {
            if shards_taken.len() == SHARDS {
                break;
            }
            let (user, key) = smo1_origin::api_keys::bootstrap_user(
                &state.db,
                &format!("owner{n}@example.com"),
                None,
                smo1_origin::users::SubscriptionTier::Free,
            )
            .await
            .unwrap()
            .unwrap();
            let shard = cluster
                .query(0, &format!("SELECT cityHash64('{}') % {SHARDS}", user.id))
                .await
                .unwrap();
            if !shards_taken.insert(shard) {
                continue;
            }
            let mut links = Vec::new();
            for n in 0..2 {
                let link: Value = http
                    .post(format!("{}/v1/links", origin.url()))
                    .bearer_auth(&key)
                    .json(&json!({"destination": format!("https://example.com/{n}")}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                links.push((
                    link["id"].as_str().unwrap().to_owned(),
                    link["slug"].as_str().unwrap().to_owned(),
                ));
            }
            owners.push(Owner {
                id: user.id,
                key,
                links,
            });
        }
        let prefix = state.config.data.redis_key_prefix.clone();
        let bridge = testkit::start_bridge_to(&testkit::redis_url()).await;
        let workerd = Workerd::start(
            testkit::reserve_port(),
            WorkerTargets {
                upstash_url: &bridge.url(),
                origin_url: &origin.url(),
                prefix: &prefix,
                clickhouse_url: &cluster.url(0),
                clickhouse_database: &db.name,
                clicks: true,
                vars: &[],
            },
        )
        .await;
        Self {
            db,
            cluster,
            cluster_ch,
            origin,
            workerd,
            _bridge: bridge,
            http,
            owners,
            sent: 0,
            round: 0,
        }
    }

    /// One round of clicks on every link: `per_link` redirects through the edge and as many
    /// through the origin's own `GET /{slug}` (browsers, a phone and a bot, QR scans, several
    /// countries and referrers), and clicks of four past days (the last old enough for the
    /// rollup to drop it from `link_clicks_recent`) through the origin's `POST /internal/clicks`,
    /// one of them sent twice.
    async fn click_round(&mut self, per_link: usize) {
        self.round += 1;
        let round = self.round;
        let mut past = Vec::new();
        for owner in &self.owners {
            for (link_id, slug) in &owner.links {
                for n in 0..per_link {
                    let qr = if n % 4 == 0 { "?qr=1" } else { "" };
                    for base in [&self.workerd.url, &self.origin.url()] {
                        let response = self
                            .http
                            .get(format!("{base}/{slug}{qr}"))
                            .header("user-agent", AGENTS[n % AGENTS.len()])
                            .header("cf-ipcountry", COUNTRIES[n % COUNTRIES.len()])
                            .header("referer", format!("https://ref{}.example.org/", n % 2))
                            .header("cf-connecting-ip", format!("203.0.113.{}", n % 5))
                            .send()
                            .await
                            .unwrap();
                        assert!(response.status().is_redirection(), "{base}/{slug}");
                        self.sent += 1;
                    }
                }
                for day in [1_u32, 2, 3, 5] {
                    let at = chrono::Utc::now().timestamp() - i64::from(day) * 86_400;
                    for n in 0..per_link {
                        let bot = n % 5 == 4;
                        past.push(ClickEvent {
                            click_id: format!("past-{round}-{link_id}-{day}-{n}"),
                            clicked_at: u32::try_from(at).unwrap() + u32::try_from(n).unwrap(),
                            link_id: link_id.clone(),
                            user_id: owner.id.to_string(),
                            slug: slug.clone(),
                            destination: "https://example.com/".into(),
                            visitor_id: format!("v{day}-{}", n % 3),
                            country: COUNTRIES[n % COUNTRIES.len()].into(),
                            region: String::new(),
                            city: String::new(),
                            device_type: if bot { "bot" } else { "desktop" }.into(),
                            browser: "Firefox".into(),
                            browser_version: "133.0".into(),
                            os: "Linux".into(),
                            os_version: String::new(),
                            referrer: String::new(),
                            referrer_domain: format!("ref{}.example.org", n % 2),
                            utm_source: if n % 2 == 0 { "news" } else { "" }.into(),
                            utm_medium: String::new(),
                            utm_campaign: String::new(),
                            utm_term: String::new(),
                            utm_content: String::new(),
                            method: "GET".into(),
                            is_qr: u8::from(n % 4 == 0),
                            is_bot: u8::from(bot),
                            bot_reason: if bot { "crawler" } else { "" }.into(),
                            rule_id: String::new(),
                        });
                        self.sent += 1;
                    }
                }
            }
        }
        // A retry: the same click again is still one click.
        past.push(past[0].clone());
        let response = self
            .http
            .post(format!("{}/internal/clicks", self.origin.url()))
            .bearer_auth(testkit::TEST_INTERNAL_SECRET)
            .json(&past)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// Waits until the cluster holds every click sent and has counted each as received (the
    /// edge's Buffer flushes within 10 s).
    async fn wait_for_clicks(&self) -> u64 {
        let sent = self.sent;
        testkit::within(
            Duration::from_secs(60),
            &format!("{sent} clicks in the cluster"),
            || async {
                distinct_clicks(&self.cluster_ch).await == sent
                    && received(&self.cluster_ch).await >= sent
            },
        )
        .await;
        distinct_clicks(&self.cluster_ch).await
    }

    /// Copies the cluster's rows the single server does not have yet into it.
    async fn copy_to_single_server(&self) {
        let single = self.db.clickhouse();
        let have: BTreeSet<String> = single
            .query::<Value>("SELECT DISTINCT click_id FROM link_clicks")
            .await
            .unwrap()
            .into_iter()
            .map(|row| row["click_id"].as_str().unwrap().to_owned())
            .collect();
        let rows = self
            .cluster_ch
            .execute("SELECT * FROM link_clicks FORMAT JSONEachRow")
            .await
            .unwrap();
        let mut body = Vec::new();
        for line in rows.lines() {
            let row: Value = serde_json::from_str(line).unwrap();
            if !have.contains(row["click_id"].as_str().unwrap()) {
                body.extend_from_slice(line.as_bytes());
                body.push(b'\n');
            }
        }
        single
            .insert_json_rows("link_clicks", &[], body)
            .await
            .unwrap();
    }

    /// Every dashboard an owner can ask for: per link and per account, over the last week and
    /// over an hour-cut range in another time zone with bots included.
    fn dashboards(&self) -> Vec<(usize, String)> {
        let now = chrono::Utc::now();
        let from = (now - chrono::Duration::days(7)).format("%Y-%m-%dT00:00:00Z");
        let to = (now + chrono::Duration::days(1)).format("%Y-%m-%dT00:00:00Z");
        let hours_from = (now - chrono::Duration::days(3)).format("%Y-%m-%dT%H:00:00Z");
        let ranges = [
            format!("from={from}&to={to}"),
            format!(
                "from={hours_from}&to={to}&tz=America/New_York&include_bots=true&interval=hour"
            ),
        ];
        let mut paths = Vec::new();
        for (index, owner) in self.owners.iter().enumerate() {
            let mut bases = vec!["/v1/analytics".to_owned()];
            for (link_id, _) in &owner.links {
                bases.push(format!("/v1/links/{link_id}/analytics"));
            }
            for base in bases {
                for range in &ranges {
                    paths.push((
                        index,
                        format!("{base}/dashboard?{range}&limit=20&clicks_limit=50"),
                    ));
                }
            }
        }
        paths
    }

    async fn answers(&self, origin: &RunningServer) -> Vec<Value> {
        let mut answers = Vec::new();
        for (owner, path) in self.dashboards() {
            let response = self
                .http
                .request(Method::GET, format!("{}{path}", origin.url()))
                .bearer_auth(&self.owners[owner].key)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            answers.push(response.json().await.unwrap());
        }
        answers
    }

    /// Asserts the cluster's origin answers every dashboard as a single server with the same
    /// clicks does (an origin over the same PostgreSQL, started for the comparison).
    async fn assert_answers_equal(&self, what: &str) {
        let (_, single) = testkit::start_origin(origin_config(&self.db)).await;
        let expected = self.answers(&single).await;
        let actual = self.answers(&self.origin).await;
        single.stop().await;
        for ((_, path), (expected, actual)) in
            self.dashboards().iter().zip(expected.iter().zip(&actual))
        {
            assert_eq!(actual, expected, "{what}: {path}");
        }
        let clicks: u64 = expected
            .iter()
            .map(|answer| answer["summary"]["clicks"].as_u64().unwrap_or_default())
            .sum();
        assert!(clicks > 0, "{what}: the dashboards count clicks");
        eprintln!("cluster: {} dashboards equal {what}", expected.len());
    }

    /// Rolls the finished days on the cluster (returns how many) and on the single server (whose
    /// comparison origins also roll when they start); afterwards the same days are current.
    async fn roll(&self) -> u64 {
        let now = chrono::Utc::now();
        let single = self.db.clickhouse();
        let rolled = rollup::roll_settled_days(&self.cluster_ch, now)
            .await
            .expect("rollup on the cluster");
        rollup::roll_settled_days(&single, now).await.unwrap();
        let current = rollup::current_days(&self.cluster_ch, None).await.unwrap();
        assert_eq!(current, rollup::current_days(&single, None).await.unwrap());
        assert!(current.len() >= 4, "the past days are current: {current:?}");
        let live = self.cluster.live_nodes();
        for index in live {
            let old = self
                .cluster
                .query(
                    index,
                    &format!(
                        "SELECT count() FROM {}.link_clicks_recent_local \
                         WHERE clicked_at < toStartOfDay(now() - 3 * 86400)",
                        self.db.name
                    ),
                )
                .await
                .unwrap();
            assert_eq!(
                old, "0",
                "node {index} dropped the old days of link_clicks_recent"
            );
        }
        rolled
    }

    /// Rows of `table`'s local table on node `index`.
    async fn local_rows(&self, index: usize, table: &str) -> Option<u64> {
        self.cluster
            .query(
                index,
                &format!("SELECT count() FROM {}.{table}_local", self.db.name),
            )
            .await
            .ok()?
            .parse()
            .ok()
    }

    /// Whether both replicas of every shard hold the same rows of every replicated table.
    async fn replicas_agree(&self) -> bool {
        for table in REPLICATED {
            for shard in 0..SHARDS {
                let first = self.local_rows(shard * REPLICAS, table).await;
                for replica in 1..REPLICAS {
                    let other = self.local_rows(shard * REPLICAS + replica, table).await;
                    if first.is_none() || other != first {
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// One number from the cluster: `aggregate` over `table`.
async fn number(ch: &ClickHouse, aggregate: &str, table: &str) -> u64 {
    let rows: Vec<Value> = ch
        .query(&format!("SELECT toString({aggregate}) AS n FROM {table}"))
        .await
        .unwrap_or_default();
    rows.first()
        .and_then(|row| row["n"].as_str()?.parse().ok())
        .unwrap_or_default()
}

async fn distinct_clicks(ch: &ClickHouse) -> u64 {
    number(ch, "uniqExact(click_id)", "link_clicks").await
}

/// Rows received, every delivery counted.
async fn received(ch: &ClickHouse) -> u64 {
    number(ch, "sum(received)", "link_clicks_arrivals").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_two_by_two_cluster_answers_as_one_server_through_replica_failures() {
    let started = Instant::now();
    let mut suite = Suite::start().await;

    suite.click_round(6).await;
    let stored = suite.wait_for_clicks().await;
    suite.copy_to_single_server().await;
    suite.assert_answers_equal("before the rollups").await;
    let rolled = suite.roll().await;
    assert!(
        rolled >= 4,
        "the past days are rolled on the cluster: {rolled}"
    );
    suite.assert_answers_equal("after the rollups").await;
    eprintln!(
        "cluster: {stored} clicks stored of {} sent, {rolled} days rolled",
        suite.sent
    );

    for index in KILLED {
        suite.cluster.stop_node(index).await;
    }
    suite
        .assert_answers_equal("with one replica of each shard down")
        .await;
    suite.click_round(4).await;
    let stored = suite.wait_for_clicks().await;
    suite.copy_to_single_server().await;
    suite
        .assert_answers_equal("with one replica of each shard down, after inserts")
        .await;
    let rolled = suite.roll().await;
    assert!(
        rolled >= 4,
        "the past days reopened by new clicks are rolled again: {rolled}"
    );
    suite
        .assert_answers_equal("with one replica of each shard down, after the rollups")
        .await;
    eprintln!(
        "cluster: {stored} clicks stored of {} sent with replicas down",
        suite.sent
    );

    for index in KILLED {
        suite.cluster.start_node(index).await;
    }
    let back = Instant::now();
    testkit::within(
        Duration::from_secs(120),
        "both replicas of each shard hold the same rows",
        || suite.replicas_agree(),
    )
    .await;
    eprintln!(
        "cluster: replicas caught up {:?} after restarting",
        back.elapsed()
    );
    for index in 0..suite.cluster.nodes().len() {
        assert!(suite.local_rows(index, "link_clicks").await.unwrap() > 0);
    }
    suite
        .assert_answers_equal("after the replicas caught up")
        .await;
    assert_eq!(
        distinct_clicks(&suite.cluster_ch).await,
        suite.sent,
        "clicks lost: 0"
    );
    eprintln!(
        "cluster: clicks sent {}, stored {}, lost 0; whole suite {:?}",
        suite.sent,
        distinct_clicks(&suite.cluster_ch).await,
        started.elapsed()
    );
}
